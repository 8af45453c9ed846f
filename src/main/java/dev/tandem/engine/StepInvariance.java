package dev.tandem.engine;

import java.util.List;

/**
 * Whether a model, on this processor, gives a token the same logits bit for bit however it is fed: alone, inside a
 * block of tokens (a verification of draft tokens, a prompt chunk) or beside another sequence in a batched step.
 * Greedy assisted decoding reproduces plain decoding to the bit only on such a model: the verifier reads the target's
 * logits of a block where plain decoding reads them one step at a time, and a last-bit difference at a near-tie
 * picks another token.
 *
 * <p>It is a property of the graph and of the kernels the runtime picks on the processor it runs on, not of the
 * weights alone: ONNX Runtime's MatMulNBits with 4-bit weights takes another kernel for one row than for several on
 * an AVX2-only processor (the bundled {@code model_optimized.onnx} then moves a token's logits by up to 0.07), where
 * on AVX-512 machines the same graph is invariant; float32 MatMul graphs differ in the last bits (GEMV against GEMM).
 * So the service probes each model when it loads it ({@link #probe}): a handful of forward calls.
 */
public final class StepInvariance {
    private StepInvariance() {
    }

    /**
     * What a probe found.
     *
     * @param holds         every probed row was bit for bit the same fed alone, in a block and in a batch
     * @param rowsDiffering probed rows that were not (of {@code rowsProbed})
     * @param worst         the largest difference of a logit between the ways of feeding
     */
    public record Result(boolean holds, int rowsDiffering, int rowsProbed, float worst) {
        @Override
        public String toString() {
            if (rowsProbed == 0) {
                return "not probed (a context too short for a block of tokens after a past)";
            }
            return holds ? "step-invariant (" + rowsProbed + " rows bit for bit equal fed alone, in a block and batched)"
                    : "not step-invariant: " + rowsDiffering + " of " + rowsProbed + " rows differ by up to " + worst
                    + " between being fed alone and in a block or batch";
        }
    }

    /** Tokens of the probe: a block of this many after a one-token past, the same tokens one at a time. */
    static final int BLOCK = 8;

    /**
     * Feeds {@link #BLOCK} + 1 fixed tokens three ways and compares the logits bit for bit: one at a time into one
     * cache (the reference); the first alone, then the other {@link #BLOCK} as one block (a verification); and, two
     * caches stepped together, each row of a batched step against the same row fed alone. Opens and closes its own
     * caches; the model is otherwise untouched.
     */
    public static Result probe(CausalLm lm) {
        ModelShape shape = lm.shape();
        int n = Math.min(BLOCK + 1, shape.maxContext());
        if (n < 3) {  // a model served with a context of 1 or 2 tokens: no block after a past to compare (nothing to probe)
            return new Result(true, 0, 0, 0);
        }
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = 3 + (int) ((i * 2654435761L) % Math.max(1, shape.vocabSize() - 3));  // spread, fixed
        }
        float[][] alone = new float[n][];
        try (KvCache c = lm.newCache()) {
            for (int i = 0; i < n; i++) {
                alone[i] = lm.forward(c, tokens, i, 1).row(0);
            }
        }
        int differing = 0;
        int probed = 0;
        float worst = 0;
        try (KvCache c = lm.newCache()) {
            lm.forward(c, tokens, 0, 1);
            Logits block = lm.forward(c, tokens, 1, n - 1);
            for (int r = 0; r < n - 1; r++) {
                float d = difference(alone[r + 1], block.row(r));
                differing += d != 0 || !sameBits(alone[r + 1], block.row(r)) ? 1 : 0;
                worst = Math.max(worst, d);
                probed++;
            }
        }
        try (KvCache a = lm.newCache(); KvCache b = lm.newCache()) {
            lm.forward(a, tokens, 0, 1);
            lm.forward(b, tokens, 0, 1);
            for (int i = 1; i < n; i++) {
                List<Logits> out = lm.forward(List.of(Feed.of(a, tokens[i]), Feed.of(b, tokens[i])));
                for (Logits l : out) {
                    float d = difference(alone[i], l.row(0));
                    differing += d != 0 || !sameBits(alone[i], l.row(0)) ? 1 : 0;
                    worst = Math.max(worst, d);
                    probed++;
                }
            }
        }
        return new Result(differing == 0, differing, probed, worst);
    }

    /**
     * How a model can be served step-invariant.
     *
     * @param invariant the model itself when its probe holds; else the model padded ({@link PaddedSteps}) when that
     *                  holds; else null
     * @param probe     the model's probe
     * @param padded    the padded model's probe, or null when not tried (the model is invariant, cannot roll back, or
     *                  has no room for the copy)
     */
    public record Choice(CausalLm invariant, Result probe, Result padded) {
        public boolean holds() {
            return invariant != null;
        }

        public boolean isPadded() {
            return invariant instanceof PaddedSteps;
        }
    }

    /**
     * Probes {@code lm} and, if it is not invariant, the same model padded so that no step computes a single row
     * ({@link PaddedSteps}): measured on an AVX2-only processor, ONNX Runtime's 4-bit MatMulNBits differs only in its
     * one-row kernel, and padded, the bundled target is invariant. Nothing to close: a padded model not chosen holds
     * nothing of its own.
     */
    public static Choice choose(CausalLm lm) {
        Result probe = probe(lm);
        if (probe.holds()) {
            return new Choice(lm, probe, null);
        }
        if (!lm.supportsRollback() || lm.shape().maxContext() < 2) {
            return new Choice(null, probe, null);
        }
        PaddedSteps padded = PaddedSteps.of(lm);
        Result again = probe(padded);
        return new Choice(again.holds() ? padded : null, probe, again);
    }

    private static float difference(float[] x, float[] y) {
        float worst = 0;
        for (int i = 0; i < x.length; i++) {
            worst = Math.max(worst, Math.abs(x[i] - y[i]));
        }
        return worst;
    }

    /** Bit for bit (a NaN or -0.0 where the other has +0.0 counts as a difference). */
    private static boolean sameBits(float[] x, float[] y) {
        for (int i = 0; i < x.length; i++) {
            if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
                return false;
            }
        }
        return true;
    }
}
