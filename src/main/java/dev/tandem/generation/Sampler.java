package dev.tandem.generation;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Chooses tokens from logits for one sequence: penalties, then greedy argmax, or temperature,
 * softmax, top-k, top-p and min-p filtering and a draw from the seeded random stream.
 *
 * <p>Every row is checked before a token is chosen: a NaN or infinite logit (from the model; request
 * parameters are range-checked so that penalties keep finite logits finite) fails with
 * {@link InvalidLogitsException} instead of turning the softmax into NaNs and the draw into an
 * invalid id.
 *
 * <p>{@link #distribution} exposes the exact distribution a draw is made from, so that a
 * speculative decoder can compare the target's and the draft's probabilities after the same
 * transforms. Scratch arrays are allocated once per sequence, not per token.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;
    private final int vocab;
    private final int[] generatedCounts;  // occurrences in the generated text (presence/frequency penalty)
    private final boolean[] inPrompt;     // with generatedCounts > 0: "seen" for the repetition penalty
    private final long[] order;           // scratch for sorting (probability bits, token id)

    public Sampler(SamplingParams params, int vocab, int[] prompt) {
        this.params = params;
        this.vocab = vocab;
        this.random = params.seed() != null ? new SplittableRandom(params.seed()) : new SplittableRandom();
        this.generatedCounts = new int[vocab];
        this.inPrompt = new boolean[vocab];
        this.order = new long[vocab];
        for (int t : prompt) {
            inPrompt[t] = true;
        }
    }

    /** Records a token of the output (for penalties). */
    public void accept(int token) {
        generatedCounts[token]++;
    }

    /** Forgets a token recorded by {@link #accept} (a speculative token that was rolled back). */
    public void unaccept(int token) {
        if (generatedCounts[token] == 0) {
            throw new IllegalStateException("token " + token + " was not accepted");
        }
        generatedCounts[token]--;
    }

    /** Chooses the next token from {@code logits}, which it overwrites. */
    public int next(float[] logits) {
        applyPenalties(logits);
        requireFinite(logits);
        if (params.isGreedy()) {
            return argmax(logits);
        }
        toDistribution(logits);
        return draw(logits);
    }

    /**
     * Overwrites {@code logits} with the probabilities a sampled draw uses (zeros for filtered
     * tokens; sums to 1). For greedy params it is one-hot on the argmax.
     */
    public float[] distribution(float[] logits) {
        applyPenalties(logits);
        requireFinite(logits);
        if (params.isGreedy()) {
            int best = argmax(logits);
            Arrays.fill(logits, 0f);
            logits[best] = 1f;
            return logits;
        }
        toDistribution(logits);
        return logits;
    }

    /** A draw from a probability vector (as made by {@link #distribution}). */
    public int draw(float[] probs) {
        double u = random.nextDouble();
        double cumulative = 0;
        int last = -1;
        for (int i = 0; i < vocab; i++) {
            if (probs[i] > 0) {
                cumulative += probs[i];
                last = i;
                if (u < cumulative) {
                    return i;
                }
            }
        }
        if (last < 0) {  // no token has a positive probability: not a distribution
            throw new InvalidLogitsException("no token has a positive probability to draw from");
        }
        return last;  // rounding left u just above the total
    }

    /** A uniform number in [0, 1) from this sequence's stream (for accept/reject tests). */
    public double uniform() {
        return random.nextDouble();
    }

    /**
     * Fails on the first NaN or infinite logit. With finite logits the rest is safe: the softmax
     * subtracts the maximum (so exp never overflows and the maximum contributes exactly 1 to the sum),
     * whatever the temperature (see {@link #toDistribution}).
     */
    private void requireFinite(float[] logits) {
        for (int t = 0; t < vocab; t++) {
            if (!Float.isFinite(logits[t])) {
                throw new InvalidLogitsException("the model produced a non-finite score (" + logits[t] + ") for token "
                        + t + ", so no token can be chosen");
            }
        }
    }

    private void applyPenalties(float[] logits) {
        if (!params.hasPenalties()) {
            return;
        }
        float rep = (float) params.repetitionPenalty();
        float presence = (float) params.presencePenalty();
        float frequency = (float) params.frequencyPenalty();
        for (int t = 0; t < vocab; t++) {
            int c = generatedCounts[t];
            if (rep != 1f && (c > 0 || inPrompt[t])) {
                logits[t] = logits[t] > 0 ? logits[t] / rep : logits[t] * rep;
            }
            if (c > 0) {
                logits[t] -= presence + frequency * c;
            }
        }
    }

    /**
     * Softmax at the temperature, then the filters. The shifted logit is divided by T in double
     * rather than multiplied by 1/T: for a tiny T, 1/T is infinite and the maximum's 0 * inf would be
     * NaN, while 0 / T stays 0 (so the most likely token keeps probability 1 before normalising).
     */
    private void toDistribution(float[] logits) {
        double temperature = params.temperature();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            float p = (float) Math.exp((logits[i] - max) / temperature);
            logits[i] = p;
            sum += p;
        }
        float top = 0;
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) (logits[i] / sum);
            top = Math.max(top, logits[i]);
        }
        boolean filtered = false;
        if (params.minP() > 0) {
            float floor = (float) (params.minP() * top);
            for (int i = 0; i < vocab; i++) {
                if (logits[i] < floor) {
                    logits[i] = 0;
                }
            }
            filtered = true;
        }
        if (params.topK() > 0 && params.topK() < vocab || params.topP() < 1) {
            filterTopKTopP(logits);
            filtered = true;
        }
        if (filtered) {
            double kept = 0;
            for (int i = 0; i < vocab; i++) {
                kept += logits[i];
            }
            for (int i = 0; i < vocab; i++) {
                logits[i] = (float) (logits[i] / kept);
            }
        }
    }

    /** Zeroes every token outside the top k and outside the top-p nucleus (ties broken by id). */
    private void filterTopKTopP(float[] probs) {
        for (int i = 0; i < vocab; i++) {
            // non-negative floats order like their bit patterns; larger ids first among equals after reversal
            order[i] = ((long) Float.floatToRawIntBits(probs[i]) << 32) | (vocab - 1 - i);
        }
        Arrays.sort(order);
        int k = params.topK() > 0 ? Math.min(params.topK(), vocab) : vocab;
        double p = params.topP();
        double cumulative = 0;
        int keep = 0;
        for (int r = vocab - 1; r >= 0 && keep < k; r--) {
            float prob = Float.intBitsToFloat((int) (order[r] >>> 32));
            if (prob == 0 || cumulative >= p) {
                break;
            }
            cumulative += prob;
            keep++;
        }
        for (int r = vocab - 1 - keep; r >= 0; r--) {
            probs[vocab - 1 - (int) (order[r] & 0xffffffffL)] = 0;
        }
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}
