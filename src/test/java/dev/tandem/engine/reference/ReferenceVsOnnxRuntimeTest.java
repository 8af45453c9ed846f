package dev.tandem.engine.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * The reference engine against the ONNX Runtime engine on the same graphs, logit by logit: every
 * row of a prefill, then steps of several tokens after a past.
 *
 * <p>float32 graphs agree to about 1e-5. The int8 graphs (tools/models/quantize.py: per-token
 * activation quantisation, MatMulInteger) are emulated exactly, so identical inputs give
 * bit-identical logits (the BOS row, where attention is trivial: bit-identical on kjv-target, and on
 * kjv-draft up to the last bit of one sigmoid); but the float parts around them (softmax, attention
 * sums, sigmoid) are computed by ONNX Runtime's vectorised kernels in another order and with other
 * exp/sigmoid approximations, and when such a last-bit difference lands on a rounding boundary of
 * the activation quantisation, one activation moves by a whole quantum: that row's logits then
 * differ by up to ~0.15, and if it happened in a key or value projection, so do the later rows
 * (the cache holds it). Measured and asserted below; greedy text still matches.
 */
class ReferenceVsOnnxRuntimeTest {
    static final Path MODELS = Path.of("models");

    static final List<String> PROMPTS = List.of(
            "In the beginning God created the heaven and the earth.",
            "And God said, Let there be light: and there was light.",
            "Now it came to pass in the days when the judges ruled, that there was a famine in the land.",
            "Blessed are the poor in spirit: for theirs is the kingdom of heaven.",
            "The LORD is my shepherd; I shall not want.",
            "Vanity of vanities, saith the Preacher, vanity of vanities; all is vanity.",
            "And Jesus answering said unto them,",
            "For God so loved the world, that he gave his only begotten Son,");

    /** Largest difference, share of rows within 1e-3 and of rows with the same argmax, over prefills and steps. */
    record Agreement(double maxAbs, int rows, int rowsWithin1e3, int sameArgmax, double bosRowMaxAbs) {
        double withinShare() {
            return (double) rowsWithin1e3 / rows;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "max |diff| %.3g, rows within 1e-3: %d/%d, same argmax: %d/%d, BOS row %.3g",
                    maxAbs, rowsWithin1e3, rows, sameArgmax, rows, bosRowMaxAbs);
        }
    }

    static Agreement compare(Path graph, List<String> prompts) {
        return compare(graph, prompts, () -> ReferenceCausalLm.openOnnx(graph, graph.resolveSibling("config.json")),
                OnnxRuntimeOptions.defaults());
    }

    /** {@code first} against ONNX Runtime with {@code options} on {@code graph}. */
    static Agreement compare(Path graph, List<String> prompts, java.util.function.Supplier<CausalLm> first,
                             OnnxRuntimeOptions options) {
        ModelDirectory dir = ModelDirectory.open(graph.getParent());
        try (CausalLm ort = OrtCausalLm.open(graph, dir.config().shape(), options);
             CausalLm ref = first.get();
             TextTokenizer tokenizer = TextTokenizer.load(dir)) {
            double[] acc = {0, 0, 0, 0, -1};  // max, rows, within, same argmax, BOS row
            for (String p : prompts) {
                int[] ids = tokenizer.encodePrompt(p);
                try (KvCache a = ref.newCache(); KvCache b = ort.newCache()) {
                    accumulate(acc, ref.forward(a, ids), ort.forward(b, ids));
                }
                // several tokens at a time after a past: 3, then 1, 4, 2, ...
                try (KvCache a = ref.newCache(); KvCache b = ort.newCache()) {
                    int at = 0;
                    for (int k = 0; at < ids.length; k++) {
                        int n = Math.min(new int[] {3, 1, 4, 2}[k % 4], ids.length - at);
                        accumulate(acc, ref.forward(a, ids, at, n), ort.forward(b, ids, at, n));
                        at += n;
                    }
                }
            }
            try (KvCache a = ref.newCache(); KvCache b = ort.newCache()) {
                Logits x = ref.forward(a, 1);
                Logits y = ort.forward(b, 1);
                acc[4] = rowDiff(x, y, 0);
            }
            return new Agreement(acc[0], (int) acc[1], (int) acc[2], (int) acc[3], acc[4]);
        }
    }

    private static void accumulate(double[] acc, Logits x, Logits y) {
        assertEquals(y.rows(), x.rows());
        for (int r = 0; r < x.rows(); r++) {
            double d = rowDiff(x, y, r);
            acc[0] = Math.max(acc[0], d);
            acc[1]++;
            acc[2] += d <= 1e-3 ? 1 : 0;
            acc[3] += argmax(x.row(r)) == argmax(y.row(r)) ? 1 : 0;
        }
    }

    private static double rowDiff(Logits x, Logits y, int r) {
        double d = 0;
        for (int i = 0; i < x.vocabSize(); i++) {
            d = Math.max(d, Math.abs(x.get(r, i) - y.get(r, i)));
        }
        return d;
    }

    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    @RequiresSharedModels
    void stories260kFloat32AgreesWithin1e4() {
        Agreement a = compare(SharedModels.stories260kHf().resolve("model.onnx"),
                List.of("", "Once upon a time, there was a little girl named Lily who loved cats.", "Tom and Sue went to the park"));
        System.out.println("stories260K hf (fp32): " + a);
        assertTrue(a.maxAbs() <= 1e-4, a.toString());  // measured 3.9e-5 (1e-3 required)
    }

    @Test
    void kjvDraftFloat32AgreesWithin1e4() {
        Agreement a = compare(MODELS.resolve("kjv-draft/model_fp32.onnx"), PROMPTS);
        System.out.println("kjv-draft model_fp32.onnx: " + a);
        assertTrue(a.maxAbs() <= 1e-4, a.toString());  // measured 1.6e-5 (1e-3 required)
        assertEquals(a.rows(), a.sameArgmax());
    }

    @Test
    void kjvDraftInt8IsExactUntilAnActivationRoundsTheOtherWay() {
        Agreement a = compare(MODELS.resolve("kjv-draft/model.onnx"), PROMPTS);
        System.out.println("kjv-draft model.onnx (int8): " + a);
        // BOS row: bit-identical, or one scale apart by the last bit of a sigmoid (ORT uses a rational approximation)
        assertTrue(a.bosRowMaxAbs() <= 1e-5, a.toString());
        assertTrue(a.withinShare() >= 0.9, a.toString());  // measured 98-99.7% of rows over 40-100 held-out verses
        assertTrue(a.maxAbs() <= 0.25, a.toString());      // measured 0.09-0.15
        assertEquals(a.rows(), a.sameArgmax(), a.toString());
    }

    @Test
    void kjvTargetInt8IsExactUntilAnActivationRoundsTheOtherWay() {
        Agreement a = compare(MODELS.resolve("kjv-target/model.onnx"), PROMPTS.subList(0, 4));
        System.out.println("kjv-target model.onnx (int8): " + a);
        assertTrue(a.bosRowMaxAbs() <= 1e-5, a.toString());  // measured: bit-identical
        assertTrue(a.maxAbs() <= 0.25, a.toString());  // measured 0.15; a flip in k/v persists in later rows
        assertTrue(a.sameArgmax() >= 0.97 * a.rows(), a.toString());  // measured 99.7%
    }

    /**
     * The yardstick for the int8 numbers above: ONNX Runtime against itself, the same graph with its
     * graph optimisations off (no fusions) instead of on. The same amplification of last-bit
     * differences moves its logits as much as the reference engine's (measured over 60 held-out
     * verses: 69% of kjv-target rows beyond 1e-3, max 0.16; the reference engine: 57%, max 0.15).
     */
    @Test
    void onnxRuntimeDisagreesWithItselfAsMuchOnTheInt8TargetWhenOnlyItsGraphOptimisationsChange() {
        Path graph = MODELS.resolve("kjv-target/model.onnx");
        ModelDirectory dir = ModelDirectory.open(graph.getParent());
        Agreement a = compare(graph, PROMPTS.subList(0, 4), () -> OrtCausalLm.open(graph, dir.config().shape(),
                new OnnxRuntimeOptions(2, true, false, "none")), OnnxRuntimeOptions.defaults());
        System.out.println("kjv-target model.onnx (int8), ONNX Runtime optimisations none vs all: " + a);
        assertTrue(a.maxAbs() > 1e-3, "1e-3 is below what the int8 graph's own numerics hold: " + a);
        assertTrue(a.maxAbs() <= 0.25, a.toString());
    }

    @Test
    void greedyTextMatchesOnTheBundledInt8Models() {
        for (String model : List.of("kjv-draft", "kjv-target")) {
            ModelDirectory dir = ModelDirectory.open(MODELS.resolve(model));
            try (CausalLm ort = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
                 CausalLm ref = ReferenceCausalLm.open(dir.files());
                 TextTokenizer tokenizer = TextTokenizer.load(dir)) {
                for (String p : List.of("", "And God said", "The LORD is my shepherd;")) {
                    int[] prompt = tokenizer.encodePrompt(p);
                    assertGreedyAgrees(ort, ref, prompt, 32, model + " '" + p + "'", tokenizer);
                }
            }
        }
    }

    /**
     * The int8 graphs' logits differ between the engines by up to this much (ONNX Runtime's int8 kernels against the
     * reference's exact arithmetic: the bound the comparisons above assert, measured 0.15): a
     * greedy choice whose two best logits are closer than this may go either way.
     */
    static final float NEAR_TIE = 0.25f;

    /**
     * {@code reference} chooses ONNX Runtime's greedy tokens, except that where ONNX Runtime's two best logits were a
     * near tie ({@link #NEAR_TIE}) the two may part: then the texts go their own ways and the comparison ends there.
     * A divergence at a clear margin fails.
     */
    static void assertGreedyAgrees(CausalLm ort, CausalLm reference, int[] prompt, int steps, String what,
                                   dev.tandem.model.TextTokenizer tokenizer) {
        float[] margins = new float[steps];
        int[] expected = greedy(ort, prompt, steps, margins);
        int[] actual = greedy(reference, prompt, steps);
        for (int i = 0; i < steps; i++) {
            if (expected[i] != actual[i]) {
                assertTrue(margins[i] < NEAR_TIE, what + ": token " + i + " differs (" + actual[i] + " for ONNX Runtime's "
                        + expected[i] + ") where ONNX Runtime's margin was " + margins[i] + "; ORT says '"
                        + (tokenizer == null ? java.util.Arrays.toString(expected) : tokenizer.decode(expected)) + "'");
                return;
            }
        }
    }

    static int[] greedy(CausalLm lm, int[] prompt, int steps) {
        return greedy(lm, prompt, steps, null);
    }

    /** Greedy tokens; {@code margins} (if not null) gets each step's gap between the two best logits. */
    static int[] greedy(CausalLm lm, int[] prompt, int steps, float[] margins) {
        List<Integer> out = new ArrayList<>();
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, prompt);
            for (int s = 0; s < steps; s++) {
                float[] row = logits.row(logits.rows() - 1);
                int best = argmax(row);
                if (margins != null) {
                    float second = Float.NEGATIVE_INFINITY;
                    for (int v = 0; v < row.length; v++) {
                        if (v != best) {
                            second = Math.max(second, row[v]);
                        }
                    }
                    margins[s] = row[best] - second;
                }
                out.add(best);
                if (s < steps - 1) {
                    logits = lm.forward(cache, best);
                }
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }
}
