package dev.tandem.generation;

/** A round's proposed tokens and, when they were sampled, the distribution each was drawn from. Reused across rounds. */
final class Candidates {
    final int[] tokens;
    /** Tokens proposed this round: tokens[0..count). */
    int count;
    private final float[][] q;
    private final boolean[] hasQ;
    private final int vocab;

    Candidates(int max, int vocab) {
        this.tokens = new int[max];
        this.q = new float[max][];
        this.hasQ = new boolean[max];
        this.vocab = vocab;
    }

    /** Appends a deterministic (one-hot) candidate. */
    void add(int token) {
        tokens[count++] = token;
    }

    /** The buffer for candidate {@code i}'s distribution; marks it as present. */
    float[] distribution(int i) {
        if (q[i] == null) {
            q[i] = new float[vocab];
        }
        hasQ[i] = true;
        return q[i];
    }

    /** Candidate {@code i}'s distribution, or null when it was proposed deterministically (one-hot). */
    float[] q(int i) {
        return hasQ[i] ? q[i] : null;
    }

    void clear() {
        count = 0;
        java.util.Arrays.fill(hasQ, false);
    }
}
