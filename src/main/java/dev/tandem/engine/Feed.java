package dev.tandem.engine;

/**
 * One sequence's share of a batched step ({@link CausalLm#forward(java.util.List)}): feed
 * {@code tokens[offset, offset + length)} after what {@code cache} already holds. One token for a
 * decode step, the last emitted token and k candidates for a verification, a chunk of a prompt for
 * a prefill.
 */
public record Feed(KvCache cache, int[] tokens, int offset, int length) {
    public Feed {
        if (length < 1 || offset < 0 || offset + length > tokens.length) {
            throw new IllegalArgumentException("a feed needs tokens[" + offset + ", " + (offset + length)
                    + ") within an array of " + tokens.length);
        }
    }

    public static Feed of(KvCache cache, int... tokens) {
        return new Feed(cache, tokens, 0, tokens.length);
    }
}
