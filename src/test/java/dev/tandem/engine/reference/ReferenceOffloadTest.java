package dev.tandem.engine.reference;

import dev.tandem.model.Llama2cTokenizer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The offload (layered) mode against the normal reference mode: bit-identical logits (prefills,
 * several tokens after a past, single steps, after a rollback), so identical greedy text, which is
 * also checked against ONNX Runtime; products computed from the mapped bytes equal the decoded
 * ones; a piece is unmapped once closed.
 */
class ReferenceOffloadTest {
    static final List<String> PROMPTS = List.of("", "And God said", "The LORD is my shepherd;",
            "In the beginning God created the heaven and the earth.");

    /** Feeds {@code ids} to both models in the same steps (a prefill, then 3, 1, 4, 2, ... tokens) and asserts every logit equal. */
    static void assertSameLogits(CausalLm normal, CausalLm offload, int[] ids, String what) {
        try (KvCache a = normal.newCache(); KvCache b = offload.newCache()) {
            int head = Math.max(1, ids.length / 2);
            assertRowsEqual(normal.forward(a, ids, 0, head), offload.forward(b, ids, 0, head), what + " prefill");
            int[] sizes = {3, 1, 4, 2};
            for (int at = head, k = 0; at < ids.length; k++) {
                int n = Math.min(sizes[k % sizes.length], ids.length - at);
                assertRowsEqual(normal.forward(a, ids, at, n), offload.forward(b, ids, at, n), what + " at " + at);
                at += n;
            }
            a.truncate(head);
            b.truncate(head);
            assertRowsEqual(normal.forward(a, ids, head, 1), offload.forward(b, ids, head, 1), what + " after rollback");
        }
    }

    static void assertRowsEqual(Logits x, Logits y, String what) {
        assertEquals(x.rows(), y.rows(), what);
        for (int r = 0; r < x.rows(); r++) {
            float[] u = x.row(r);
            float[] v = y.row(r);
            for (int i = 0; i < u.length; i++) {
                // bit for bit (equal floats, NaN included)
                if (Float.floatToRawIntBits(u[i]) != Float.floatToRawIntBits(v[i])) {
                    throw new AssertionError(what + ", row " + r + ", logit " + i + ": " + u[i] + " vs " + v[i]);
                }
            }
        }
    }

    static void compareOnModelDirectory(Path graph, boolean againstOnnxRuntime) {
        ModelDirectory dir = ModelDirectory.open(graph.getParent());
        Path config = graph.resolveSibling("config.json");
        try (ReferenceCausalLm normal = ReferenceCausalLm.openOnnx(graph, config);
             ReferenceCausalLm offload = ReferenceCausalLm.openOnnx(graph, config, true);
             TextTokenizer tokenizer = TextTokenizer.load(dir)) {
            assertFalse(normal.offloaded());
            assertTrue(offload.offloaded());
            assertEquals(normal.shape(), offload.shape());
            assertEquals(normal.config(), offload.config());
            for (String p : PROMPTS) {
                int[] ids = tokenizer.encodePrompt(p + " and it was so, and the evening and the morning were the day.");
                assertSameLogits(normal, offload, ids, graph + " '" + p + "'");
            }
            try (CausalLm ort = againstOnnxRuntime ? OrtCausalLm.open(graph, dir.config().shape(),
                    OnnxRuntimeOptions.defaults()) : null) {
                for (String p : PROMPTS.subList(0, 3)) {
                    int[] prompt = tokenizer.encodePrompt(p);
                    int[] expected = ReferenceVsOnnxRuntimeTest.greedy(normal, prompt, 32);
                    assertArrayEquals(expected, ReferenceVsOnnxRuntimeTest.greedy(offload, prompt, 32), graph + " '" + p + "'");
                    if (ort != null) {
                        ReferenceVsOnnxRuntimeTest.assertGreedyAgrees(ort, normal, prompt, 32,
                                graph + " '" + p + "' against ONNX Runtime", tokenizer);
                    }
                }
            }
        }
    }

    @Test
    void kjvTargetInt8OffloadIsBitIdenticalToTheNormalModeAndGreedyTextMatchesOnnxRuntime() {
        compareOnModelDirectory(Path.of("models/kjv-target/model.onnx"), true);
    }

    @Test
    void kjvDraftInt8AndFloat32OffloadAreBitIdenticalToTheNormalMode() {
        compareOnModelDirectory(Path.of("models/kjv-draft/model.onnx"), true);
        compareOnModelDirectory(Path.of("models/kjv-draft/model_fp32.onnx"), false);
    }

    @Test
    @RequiresSharedModels
    void stories260kOnnxOffloadIsBitIdenticalToTheNormalMode() {
        compareOnModelDirectory(SharedModels.stories260kHf().resolve("model.onnx"), true);
    }

    @Test
    @RequiresSharedModels
    void stories260kLlama2cOffloadIsBitIdenticalAndGivesTheKnownGoodText() {
        Path bin = SharedModels.stories260kBin();
        try (ReferenceCausalLm normal = ReferenceCausalLm.openLlama2c(bin);
             ReferenceCausalLm offload = ReferenceCausalLm.openLlama2c(bin, true)) {
            assertEquals(normal.config(), offload.config());
            Llama2cTokenizer tokenizer = Llama2cTokenizer.load(SharedModels.stories260kTokenizerBin(),
                    normal.shape().vocabSize());
            int[] ids = tokenizer.encode("Once upon a time, there was a little girl named Lily who loved cats. She had a red ball.");
            int[] withBos = new int[ids.length + 1];
            withBos[0] = Llama2cTokenizer.BOS;
            System.arraycopy(ids, 0, withBos, 1, ids.length);
            assertSameLogits(normal, offload, withBos, "stories260K.bin");
            int[] greedy = ReferenceVsOnnxRuntimeTest.greedy(offload, new int[] {Llama2cTokenizer.BOS}, 60);
            assertArrayEquals(ReferenceVsOnnxRuntimeTest.greedy(normal, new int[] {Llama2cTokenizer.BOS}, 60), greedy);
            int[] text = new int[61];
            text[0] = Llama2cTokenizer.BOS;
            System.arraycopy(greedy, 0, text, 1, 60);
            assertEquals(SharedModels.STORIES_GREEDY_60, tokenizer.decode(text));
        }
    }

    @Test
    void aLayerIsMappedForItsUseComputesInPlaceAsTheNormalModeAndIsUnmappedAfter() {
        Path graph = Path.of("models/kjv-target/model.onnx");
        try (ReferenceCausalLm normal = ReferenceCausalLm.openOnnx(graph, graph.resolveSibling("config.json"));
             LayeredWeights layered = OnnxLlama.offload(graph, graph.resolveSibling("config.json"))) {
            LlamaWeights.Layer n = normal.weights().layers()[3];
            java.util.Random random = new java.util.Random(7);
            float[] x = new float[normal.config().hiddenDim()];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextGaussian();
            }
            Matrix kept;
            try (LayeredWeights.Loaded<LlamaWeights.Layer> loaded = layered.layer(3)) {
                LlamaWeights.Layer a = loaded.value();
                assertTrue(a.w1() instanceof Matrix.U8InOut, "int8 products are computed from the mapped bytes");
                assertArrayEquals(n.attnNorm(), a.attnNorm());
                for (Matrix[] pair : new Matrix[][] {{n.wq(), a.wq()}, {n.wk(), a.wk()}, {n.wo(), a.wo()},
                        {n.w1(), a.w1()}, {n.w2(), a.w2()}, {n.w3(), a.w3()}}) {
                    float[] expected = new float[pair[0].rows()];
                    float[] actual = new float[pair[1].rows()];
                    pair[0].multiply(x, expected);
                    pair[1].multiply(x, actual);
                    assertArrayEquals(expected, actual);
                }
                kept = a.w1();
            }
            Matrix gone = kept;
            assertThrows(IllegalStateException.class, () -> gone.multiply(x, new float[gone.rows()]),
                    "closing the piece unmaps it");
            try (LayeredWeights.Loaded<LayeredWeights.Head> h = layered.head()) {
                float[] expected = new float[normal.config().vocabSize()];
                float[] actual = new float[normal.config().vocabSize()];
                normal.weights().classifier().multiply(x, expected);
                h.value().classifier().multiply(x, actual);
                assertArrayEquals(expected, actual);
            }
            float[] e = new float[normal.config().dim()];
            float[] y = new float[normal.config().dim()];
            for (int token : new int[] {0, 1, 17, normal.config().vocabSize() - 1}) {
                normal.weights().embedding().lookup(token, e);
                layered.embed(token, y);
                assertArrayEquals(e, y, "embedding row " + token);
            }
            assertThrows(IllegalArgumentException.class, () -> layered.embed(normal.config().vocabSize(), y));
            ReferenceCausalLm offload = new ReferenceCausalLm(layered);
            assertThrows(IllegalStateException.class, offload::weights);
        }
    }

    @Test
    void float32ProductsAreComputedInPlaceBitIdentically() {
        Path graph = Path.of("models/kjv-draft/model_fp32.onnx");
        try (ReferenceCausalLm normal = ReferenceCausalLm.openOnnx(graph, graph.resolveSibling("config.json"));
             LayeredWeights layered = OnnxLlama.offload(graph, graph.resolveSibling("config.json"));
             LayeredWeights.Loaded<LlamaWeights.Layer> loaded = layered.layer(1)) {
            assertTrue(loaded.value().w2() instanceof Matrix.F32InOut);
            float[] x = new float[normal.config().hiddenDim()];
            java.util.Random random = new java.util.Random(3);
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextGaussian();
            }
            float[] expected = new float[normal.config().dim()];
            float[] actual = new float[normal.config().dim()];
            normal.weights().layers()[1].w2().multiply(x, expected);
            loaded.value().w2().multiply(x, actual);
            assertArrayEquals(expected, actual);
        }
    }

    @Test
    void refusesATruncatedCheckpointAndAGraphThatIsNotOnnx(@TempDir Path tmp) throws Exception {
        Path bad = tmp.resolve("bad.onnx");
        Files.write(bad, new byte[] {(byte) 0xFF, (byte) 0xFF, 1, 2, 3});
        assertThrows(IllegalArgumentException.class,
                () -> ReferenceCausalLm.openOnnx(bad, Path.of("models/kjv-draft/config.json"), true));
        Path bin = tmp.resolve("bad.bin");
        java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(28 + 400).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        h.putInt(8).putInt(16).putInt(1).putInt(2).putInt(2).putInt(10).putInt(4);
        Files.write(bin, h.array());
        var e = assertThrows(IllegalArgumentException.class, () -> ReferenceCausalLm.openLlama2c(bin, true));
        assertTrue(e.getMessage().contains("float32 values after it"), e.getMessage());
    }
}
