package dev.tandem.engine.reference;

import dev.tandem.model.Llama2cTokenizer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reference engine on stories260K as llama2.c ships it ({@code stories260K.bin} and
 * {@code tok512.bin}): the known-good text, its tokenizer against the Hugging Face one of the same
 * vocabulary, and the llama2.c layout (pairwise rotary) against the Optimum ONNX layout (half
 * rotation, permuted wq/wk rows) of the same weights.
 */
@RequiresSharedModels
class Llama2cReferenceTest {
    static ReferenceCausalLm lm;
    static Llama2cTokenizer tokenizer;

    /** Strings whose ids were checked against tokenizer.json (DJL / HF tokenizers) before being asserted here. */
    static final List<String> TEXTS = List.of(
            "Once upon a time, there was a little girl named Lily who loved cats.", "Hello world", " leading space",
            "double  spaces   here", "trailing ", "naïve café — 東京 🙂", "Tom said: \"Let's go!\"\n\nThe end.",
            "1234567890", "a", "The quick brown fox jumps over the lazy dog; zzz qqq xyzzy.", "\t tab");

    @BeforeAll
    static void load() {
        lm = ReferenceCausalLm.openLlama2c(SharedModels.stories260kBin());
        tokenizer = Llama2cTokenizer.load(SharedModels.stories260kTokenizerBin(), lm.shape().vocabSize());
    }

    @Test
    void readsTheHeader() {
        assertEquals(new ModelShape(512, 512, 5, 4, 8, 4), lm.shape());
        LlamaConfig c = lm.weights().config();
        assertEquals(64, c.dim());
        assertEquals(172, c.hiddenDim());
        assertEquals(8, c.heads());
        assertEquals(LlamaConfig.Rotary.PAIRWISE, c.rotary());
        assertTrue(lm.weights().classifier() instanceof Matrix.F32 cls
                && cls.w() == ((Embedding.F32) lm.weights().embedding()).table(), "tied classifier shares the embedding");
    }

    @Test
    void greedyFromBosReproducesTheKnownGoodText() {
        int[] tokens = greedy(lm, new int[] {Llama2cTokenizer.BOS}, 60);
        assertEquals(SharedModels.STORIES_GREEDY_60, tokenizer.decode(tokens));
        assertEquals(" Once", new String(tokenizer.piece(tokens[1]), java.nio.charset.StandardCharsets.UTF_8),
                "the raw first piece keeps its space; decode drops it after BOS");
    }

    @Test
    void tokenizerMatchesTheHuggingFaceTokenizerOfTheSameVocabulary() {
        try (TextTokenizer hf = TextTokenizer.load(ModelDirectory.open(SharedModels.stories260kHf()))) {
            for (String text : TEXTS) {
                int[] ids = tokenizer.encode(text);
                assertArrayEquals(hf.encode(text), ids, "'" + text + "'");
                int[] withBos = new int[ids.length + 1];
                withBos[0] = Llama2cTokenizer.BOS;
                System.arraycopy(ids, 0, withBos, 1, ids.length);
                assertEquals(text, tokenizer.decode(withBos), "round trip");
                assertEquals(hf.decode(withBos), tokenizer.decode(withBos));
            }
        }
        assertEquals(0, tokenizer.encode("").length);
        assertArrayEquals(new int[] {403, 407, 261, 378}, tokenizer.encode("Once upon a time"));
    }

    @Test
    void pairwiseLlama2cAndHalfRotationOnnxLayoutsGiveTheSameLogits() {
        Path hf = SharedModels.stories260kHf();
        ReferenceCausalLm onnx = ReferenceCausalLm.openOnnx(hf.resolve("model.onnx"), hf.resolve("config.json"));
        assertEquals(LlamaConfig.Rotary.HALF, onnx.weights().config().rotary());
        int[] text = prompt("Once upon a time, there was a little girl named Lily who loved cats. She had a red ball.");
        try (KvCache a = lm.newCache(); KvCache b = onnx.newCache()) {
            Logits x = lm.forward(a, text);
            Logits y = onnx.forward(b, text);
            double worst = 0;
            for (int r = 0; r < text.length; r++) {
                for (int i = 0; i < x.vocabSize(); i++) {
                    worst = Math.max(worst, Math.abs(x.get(r, i) - y.get(r, i)));
                }
            }
            assertTrue(worst < 1e-4, "max abs difference " + worst);
        }
    }

    @Test
    void severalTokensInOneStepAreBitIdenticalToSingleSteps() {
        int[] text = prompt("Tom and Sue went to the park to play with the big dog.");
        try (KvCache a = lm.newCache(); KvCache b = lm.newCache()) {
            lm.forward(a, text, 0, 5);
            Logits four = lm.forward(a, text, 5, 4);
            float[][] rows = {four.row(0), four.row(1), four.row(2), four.row(3)};
            lm.forward(b, text, 0, 5);
            for (int i = 0; i < 4; i++) {
                assertArrayEquals(rows[i], lm.forward(b, text, 5 + i, 1).row(0), "position " + (5 + i));
            }
            a.truncate(6);
            assertArrayEquals(rows[1], lm.forward(a, text, 6, 1).row(0), "after rollback");
        }
    }

    @Test
    void refusesFilesThatAreNotCheckpointsOrTokenizers(@TempDir Path tmp) throws Exception {
        Path bad = tmp.resolve("bad.bin");
        Files.write(bad, new byte[] {1, 2, 3});
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Llama2cCheckpoint.load(bad)).getMessage()
                .contains("not a llama2.c checkpoint"));
        Path truncated = tmp.resolve("truncated.bin");
        Files.write(truncated, java.util.Arrays.copyOf(Files.readAllBytes(SharedModels.stories260kBin()), 100_000));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Llama2cCheckpoint.load(truncated)).getMessage()
                .contains("float32 values after it"));
        assertThrows(IllegalArgumentException.class, () -> Llama2cTokenizer.load(SharedModels.stories260kTokenizerBin(), 600));
    }

    static int[] prompt(String text) {
        int[] ids = tokenizer.encode(text);
        int[] out = new int[ids.length + 1];
        out[0] = Llama2cTokenizer.BOS;
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    static int[] greedy(ReferenceCausalLm model, int[] prompt, int steps) {
        int[] out = java.util.Arrays.copyOf(prompt, prompt.length + steps);
        try (KvCache cache = model.newCache()) {
            Logits logits = model.forward(cache, prompt);
            for (int s = 0; s < steps; s++) {
                float[] row = logits.row(logits.rows() - 1);
                int best = 0;
                for (int i = 1; i < row.length; i++) {
                    if (row[i] > row[best]) {
                        best = i;
                    }
                }
                out[prompt.length + s] = best;
                if (s < steps - 1) {
                    logits = model.forward(cache, best);
                }
            }
        }
        return out;
    }
}
