package dev.tandem.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * A model whose forward calls never compute a single row: a step that would feed one token in all (one sequence, one
 * token) feeds it with a companion row, and returns the token's row only. The companion is a copy of the token one
 * position further, forgotten before the sequence goes on; at the last position of the context, where there is no
 * room for it, the sequence's previous token fed again before it (its keys and values are computed again, to the
 * same bits). Everything else passes through.
 *
 * <p>Why: on some processors the runtime computes a one-row product with another kernel than a product of several
 * rows, and the two differ in the last bits (ONNX Runtime's 4-bit MatMulNBits on an AVX2-only processor: up to 0.07 in
 * a logit), where every product of two rows or more gives each row the same bits whatever the other rows are
 * (measured: blocks of 2 to 16 tokens and batches of two sequences, bit for bit). Padded, every token is computed by the
 * same kernel, so the model is step-invariant ({@link StepInvariance}) and greedy assisted decoding reproduces plain
 * decoding. The cost is a second row in steps that had one (one sequence decoding alone, without assistance).
 *
 * <p>The copy's keys and values stay in the inner cache until the sequence's next forward or truncate, which forgets
 * them first (so the last step's logits stay valid as the engine contract says). Each cache keeps the tokens fed (an
 * int per position) for the last position's case. Needs a model that can roll back ({@link CausalLm#supportsRollback()}).
 */
public final class PaddedSteps implements CausalLm {
    private final CausalLm inner;

    private PaddedSteps(CausalLm inner) {
        this.inner = inner;
    }

    /**
     * {@code inner} padded; it is closed with this model.
     *
     * @throws IllegalArgumentException for a model that cannot roll back or has a context under 2 tokens
     */
    public static PaddedSteps of(CausalLm inner) {
        if (!inner.supportsRollback() || inner.shape().maxContext() < 2) {
            throw new IllegalArgumentException("padding single-row steps needs a model that rolls back, with a context of"
                    + " 2 tokens or more");
        }
        return new PaddedSteps(inner);
    }

    /** The model that is padded. */
    public CausalLm inner() {
        return inner;
    }

    /** A sequence's cache: the inner one, which may hold the last step's copy beyond {@link #length()}. */
    private static final class Cache implements KvCache {
        final KvCache inner;
        /** The tokens fed, by position: the previous token is fed again at the context's last position. */
        final int[] fed;
        /** The two tokens of a padded step (reused: no allocation per step). */
        final int[] pair = new int[2];
        int length;

        Cache(KvCache inner, int maxContext) {
            this.inner = inner;
            this.fed = new int[maxContext];
        }

        /** Forgets the last step's copy, if the inner cache holds it. */
        KvCache settled() {
            if (inner.length() != length) {
                inner.truncate(length);
            }
            return inner;
        }

        void fed(int[] tokens, int offset, int n) {
            System.arraycopy(tokens, offset, fed, length, n);
            length += n;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int length) {
            if (length < 0 || length > this.length) {
                throw new IllegalArgumentException("cannot truncate a cache of " + this.length + " tokens to " + length);
            }
            inner.truncate(length);
            this.length = length;
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    private static Cache cache(KvCache c) {
        if (c instanceof Cache p) {
            return p;
        }
        throw new IllegalArgumentException("a cache of another model");
    }

    @Override
    public ModelShape shape() {
        return inner.shape();
    }

    @Override
    public KvCache newCache() {
        return new Cache(inner.newCache(), inner.shape().maxContext());
    }

    @Override
    public Logits forward(KvCache cache, int[] tokens, int offset, int length) {
        GraphChecks.checkStep(shape(), cache.length(), tokens, offset, length);
        Cache c = cache(cache);
        KvCache in = c.settled();
        Logits out;
        if (length > 1) {
            out = inner.forward(in, tokens, offset, length);
        } else if (c.length + 1 < shape().maxContext()) {  // the token, then its copy
            c.pair[0] = tokens[offset];
            c.pair[1] = tokens[offset];
            out = inner.forward(in, c.pair, 0, 2).rows(0, 1);
        } else {  // the last position (of a context of 2 or more): the previous token again, then the token
            in.truncate(c.length - 1);
            c.pair[0] = c.fed[c.length - 1];
            c.pair[1] = tokens[offset];
            out = inner.forward(in, c.pair, 0, 2).rows(1, 1);
        }
        c.fed(tokens, offset, length);
        return out;
    }

    @Override
    public List<Logits> forward(List<Feed> feeds) {
        if (feeds.size() == 1) {
            Feed f = feeds.getFirst();
            return List.of(forward(f.cache(), f.tokens(), f.offset(), f.length()));
        }
        for (Feed f : feeds) {  // validate all before running any, so a bad feed changes nothing
            GraphChecks.checkStep(shape(), f.cache().length(), f.tokens(), f.offset(), f.length());
            cache(f.cache());
        }
        List<Feed> in = new ArrayList<>(feeds.size());
        for (Feed f : feeds) {
            in.add(new Feed(cache(f.cache()).settled(), f.tokens(), f.offset(), f.length()));
        }
        List<Logits> out = inner.forward(in);  // two feeds or more: two rows or more
        for (Feed f : feeds) {
            cache(f.cache()).fed(f.tokens(), f.offset(), f.length());
        }
        return out;
    }

    @Override
    public boolean supportsRollback() {
        return true;
    }

    @Override
    public CacheStorage cacheStorage() {
        return inner.cacheStorage();
    }

    @Override
    public void close() {
        inner.close();
    }

    @Override
    public String toString() {
        return inner + " (single-row steps padded to two rows)";
    }
}
