package dev.tandem.generation;

/** A round's proposed tokens and, when they were sampled, the distribution each was drawn from. Reused across rounds. */
final class Candidates {
    final int[] tokens;
    /** Tokens proposed this round: tokens[0..count). */
    int count;
    private final float[][] q;
    private final boolean[] hasQ;
    private final int vocab;
    /**
     * The shadow judgement ({@link Sequence}): set before a proposal that follows a round which kept all its k
     * candidates. {@code shadowBonus} is the target's own token after them (its bonus; -1: nothing to judge) and
     * {@code shadowP} the distribution the target drew it from (null when greedy). The generator writes into
     * {@code shadowKept} the probability that its candidate k+1 would have been kept, or leaves it NaN.
     */
    int shadowBonus = -1;
    float[] shadowP;
    double shadowKept = Double.NaN;

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

    /** Clears the proposed tokens (not the shadow judgement's inputs: the generator reads them while it proposes). */
    void clear() {
        count = 0;
        java.util.Arrays.fill(hasQ, false);
    }

    /** Sets the shadow judgement's inputs for the coming proposal ({@code bonus} -1: none) and clears its result. */
    void judgeShadow(int bonus, float[] p) {
        shadowBonus = bonus;
        shadowP = p;
        shadowKept = Double.NaN;
    }
}
