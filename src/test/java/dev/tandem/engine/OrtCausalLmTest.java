package dev.tandem.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The ONNX Runtime engine on a real pretrained model (stories260K, Optimum layout). */
@RequiresSharedModels
class OrtCausalLmTest {
    static ModelDirectory dir;
    static CausalLm lm;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void load() {
        dir = ModelDirectory.open(SharedModels.stories260kHf());
        lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
        tokenizer = TextTokenizer.load(dir);
    }

    @AfterAll
    static void close() {
        lm.close();
        tokenizer.close();
    }

    @Test
    void discoversTheShapeFromGraphAndConfig() {
        ModelShape s = lm.shape();
        assertEquals(new ModelShape(512, 512, 5, 4, 8, 4), s);
        assertEquals(2L * 5 * 4 * 8 * 4, s.kvBytesPerToken());
    }

    @Test
    void greedyFromBosReproducesTheKnownGoodTextThroughTheEngine() {
        int[] tokens = new int[61];
        tokens[0] = 1;
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, 1);
            for (int step = 1; step <= 60; step++) {
                float[] row = logits.row(logits.rows() - 1);
                int best = 0;
                for (int i = 1; i < row.length; i++) {
                    if (row[i] > row[best]) {
                        best = i;
                    }
                }
                tokens[step] = best;
                if (step < 60) {
                    logits = lm.forward(cache, best);
                }
            }
            assertEquals(60, cache.length(), "the prompt is never re-run: one position per fed token");
        }
        assertEquals(SharedModels.STORIES_GREEDY_60, tokenizer.decode(tokens));
    }

    @Test
    void greedyFromBosReproducesTheKnownGoodTextThroughTheDecoder() {
        PlainDecoder decoder = new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds());
        GenerationResult r = decoder.generate(new GenerationRequest(tokenizer.encodePrompt(""), SamplingParams.greedy(),
                60, List.of(), -1, false));
        assertEquals(SharedModels.STORIES_GREEDY_60, r.text());
        assertEquals(60, r.completionTokens());
        assertEquals(FinishReason.LENGTH, r.finishReason());
    }

    @Test
    void fourTokensInOneStepEqualFourSingleSteps() {
        int[] text = tokenizer.encodePrompt("Once upon a time, there was a little girl named Lily who loved cats.");
        assertTrue(text.length >= 14, "prompt too short: " + text.length);
        float[][] batched = new float[4][];
        float[][] single = new float[4][];
        try (KvCache a = lm.newCache(); KvCache b = lm.newCache()) {
            lm.forward(a, text, 0, 10);
            Logits four = lm.forward(a, text, 10, 4);
            assertEquals(4, four.rows());
            for (int i = 0; i < 4; i++) {
                batched[i] = four.row(i);
            }
            lm.forward(b, text, 0, 10);
            for (int i = 0; i < 4; i++) {
                single[i] = lm.forward(b, text, 10 + i, 1).row(0);
            }
            assertEquals(14, a.length());
            assertEquals(14, b.length());
        }
        for (int i = 0; i < 4; i++) {
            assertClose(single[i], batched[i], 1e-4, "position " + (10 + i));
        }
    }

    @Test
    void truncatingAndRefeedingEqualsAFreshPrefill() {
        int[] text = tokenizer.encodePrompt("Once upon a time, there was a little girl named Lily who loved cats.");
        int[] other = tokenizer.encode(" The dog ran away");
        try (KvCache cache = lm.newCache(); KvCache fresh = lm.newCache()) {
            lm.forward(cache, text, 0, 14);
            cache.truncate(10);
            assertEquals(10, cache.length());
            float[] rolledBack = lm.forward(cache, other).row(other.length - 1);

            int[] expected = Arrays.copyOf(text, 10 + other.length);
            System.arraycopy(other, 0, expected, 10, other.length);
            float[] prefill = lm.forward(fresh, expected).row(expected.length - 1);
            assertClose(prefill, rolledBack, 1e-4, "after rollback");
        }
    }

    @Test
    void rollbackWorksAcrossCacheGrowthAndToEmpty() {
        int[] text = tokenizer.encodePrompt("Once upon a time ".repeat(30));
        assertTrue(text.length > 100);
        try (KvCache cache = lm.newCache(); KvCache fresh = lm.newCache()) {
            lm.forward(cache, text, 0, 5);
            for (int i = 5; i < 100; i++) {  // grows the cache several times, one token a step
                lm.forward(cache, text, i, 1);
            }
            cache.truncate(70);
            float[] resumed = lm.forward(cache, text, 70, 3).row(2);
            float[] prefill = lm.forward(fresh, text, 0, 73).row(72);
            assertClose(prefill, resumed, 1e-4, "after growth and rollback");

            cache.truncate(0);
            float[] again = lm.forward(cache, text, 0, 73).row(72);
            assertClose(prefill, again, 1e-4, "after truncating to empty");
        }
    }

    @Test
    void refusesWhatTheModelCannotHold() {
        try (KvCache cache = lm.newCache()) {
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, new int[513]));
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, 512));
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, -1));
            assertThrows(IllegalArgumentException.class, () -> cache.truncate(1));
            assertEquals(0, cache.length(), "a refused step leaves the cache as it was");
            lm.forward(cache, 1, 2, 3);
            assertEquals(3, cache.length());
        }
        KvCache closed = lm.newCache();
        closed.close();
        closed.close();
        assertThrows(IllegalStateException.class, () -> lm.forward(closed, 1));
    }

    static void assertClose(float[] expected, float[] actual, double tolerance, String where) {
        assertEquals(expected.length, actual.length);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(worst <= tolerance, where + ": max abs difference " + worst + " > " + tolerance);
    }
}
