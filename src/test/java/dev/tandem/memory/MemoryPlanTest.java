package dev.tandem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.tandem.testing.OnnxLayouts.onnxRuntimeLayout;

import dev.tandem.engine.ModelShape;
import dev.tandem.generation.AssistOptions;
import dev.tandem.model.ModelDirectory;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The planner's figures against hand arithmetic: stories260K (trained elsewhere) and the two bundled models. */
class MemoryPlanTest {

    /** The service's default prompt chunk: tandem.scheduler.max-batched-tokens 64 (see Sequence.largestPrefillChunk). */
    static final int CHUNK = 64;

    /** The plan of {@code dir} served on ONNX Runtime: the layout its graph declares (as the engine decides it). */
    static MemoryPlan plan(Path dir, MemoryBudget budget) {
        return plan(dir, budget, onnxRuntimeLayout(ModelDirectory.open(dir)));
    }

    static MemoryPlan plan(Path dir, MemoryBudget budget, KvFootprint.Layout layout) {
        ModelDirectory d = ModelDirectory.open(dir);
        ModelShape s = d.config().shape();
        return MemoryPlan.of(d, s, "config.json", s.maxContext(), layout,
                MemoryPlan.maxStepFeed(AssistOptions.MAX_ASSISTANT_TOKENS), CHUNK, budget, null);
    }

    @Test
    @RequiresSharedModels
    void stories260kMatchesHandArithmetic() throws Exception {
        // README: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads (head size 8, kv dim 32), vocab 512, max seq 512, tied.
        long embedding = 512 * 64;
        long perLayer = 64 /* rms_att */ + 64 * 64 /* wq */ + 2 * 32 * 64 /* wk, wv */ + 64 * 64 /* wo */
                + 64 /* rms_ffn */ + 3 * 172 * 64 /* w1, w2, w3 */;
        long parameters = embedding + 5 * perLayer + 64 /* rms_final */;
        assertEquals(260_032, parameters);
        // the llama2.c checkpoint holds 264,128 floats, 4,096 of them rotary tables (not parameters)
        assertEquals(264_128 - 4_096, parameters);

        MemoryPlan p = plan(SharedModels.stories260kHf(), new MemoryBudget(16L << 20, "test"));
        MemoryPlan.Weights w = p.weights();
        assertEquals(parameters, w.parameters());
        assertEquals(parameters, w.parametersFromConfig());
        assertEquals(Map.of("float32", parameters), w.parametersByDtype());
        assertEquals(4 * parameters, w.parameterBytes());
        // the Optimum export stores the tied classifier a second time, transposed ([64, 512] for the logits MatMul):
        // the graph's initializers hold 292,800 floats = 260,032 + 32,768
        assertEquals(4L * 512 * 64, w.tiedCopyBytes());
        assertEquals(4L * 292_800, w.initializerBytes());
        assertEquals(0L, w.quantizationOverheadBytes());
        assertTrue(p.notes().stream().anyMatch(n -> n.contains("tied copy") && n.contains("transposed")), p.notes().toString());
        assertEquals(new MemoryPlan.ByPrecision(4 * parameters, 2 * parameters, parameters, parameters / 2), w.byPrecision());
        assertEquals(Files.size(SharedModels.stories260kHf().resolve("model.onnx")), w.graphFileBytes());

        // KV: 2 (K, V) x 5 layers x 4 kv heads x 8 head dim x 4 bytes (float32)
        MemoryPlan.KvCache kv = p.kvCache();
        assertEquals(2 * 5 * 4 * 8 * 4, kv.bytesPerToken());
        assertEquals(1280, kv.bytesPerToken());
        assertEquals(512, kv.contextTokens());
        assertEquals(1280 * 512, kv.bytesPerFullContext());
        // As allocated (KvBuffers): capacity 64, 128, 256, 512 (the step holding the tokens so far); an outgrown region is
        // freed once copied, so the peak is the last growth's old + new capacity, x2 ping-pong: 256 + 512 tokens, as the
        // prompt is fed in chunks of at most 64 (the first possibly a single token, so every capacity may be grown
        // through). Step buffers: rows max(min(P, 64), 17) (a chunk; assisted verification feeds up to 17), (4 x 512 + 8)
        // bytes each. Worst from P = 64 on:
        assertEquals(64, kv.worstCasePromptTokens());
        assertEquals(2L * 1280 * 768, kv.allocatedKvBufferBytes());
        assertEquals(64L * 2056, kv.allocatedStepBufferBytes());
        assertEquals(1_966_080L + 131_584L, kv.allocatedBytesPerFullContext());
        // plain decoding from a one-token prompt to the full context: 64 -> 128 -> 256 -> 512, peak 256 + 512 tokens twice,
        // 8 step rows
        KvFootprint plain = KvFootprint.of(ModelDirectory.open(SharedModels.stories260kHf()).config().shape(), 1, 512, 1);
        assertEquals(new KvFootprint(2L * 1280 * 768, 8L * 2056), plain);

        // 16 MiB budget: 16,777,216 / 2,097,664 = 7.998; theoretical 16,777,216 / 655,360 = 25.6
        assertEquals(16_777_216L, p.budget().bytes());
        assertEquals(7L, p.budget().maxFullContextSequences());
        assertEquals(25L, p.budget().maxFullContextSequencesTheoretical());
        assertNull(p.budget().maxFullContextSequencesWithDraft());
        assertTrue(p.unavailable().isEmpty(), p.unavailable().toString());
    }

    /**
     * Each bundled directory's model_optimized.onnx (what ONNX Runtime serves) holds the same model as its model.onnx:
     * the same parameters, counted from MatMulNBits' N x K in its bits, and RotaryEmbedding's cos/sin tables (functions
     * of the position) not among them.
     */
    @Test
    void theOptimizedGraphsHoldTheParametersOfThePortableOnes() {
        for (String m : java.util.List.of("models/kjv-target", "models/kjv-draft")) {
            WeightInventory portable = WeightInventory.read(Path.of(m, "model.onnx"), true);
            WeightInventory optimized = WeightInventory.read(Path.of(m, "model_optimized.onnx"), true);
            assertEquals(portable.parameters(), optimized.parameters(), m);
            assertEquals(portable.tiedCopyElements(), optimized.tiedCopyElements(), m);
        }
        // the target's matrices are 4-bit, the draft's 8-bit (its own int8 weights); the embeddings stay uint8 tables
        assertTrue(WeightInventory.read(Path.of("models/kjv-target/model_optimized.onnx"), true).parametersByDtype()
                .containsKey("int4"));
        Map<String, Long> draft = WeightInventory.read(Path.of("models/kjv-draft/model_optimized.onnx"), true).parametersByDtype();
        assertTrue(draft.containsKey("uint8") && !draft.containsKey("int4"), draft.toString());
    }

    @Test
    void kjvDraftMatchesItsModelCard() {
        // MODEL_CARD.md: 893,568 parameters (tied). hidden 128, 2 layers, 4 heads x 32, 2 kv heads, MLP 352, vocab 4096
        long perLayer = 2 * 128 + 128 * 128 + 2 * 128 * 64 + 128 * 128 + 3 * 128 * 352;
        long parameters = 4096L * 128 + 2 * perLayer + 128;
        assertEquals(893_568, parameters);
        MemoryPlan p = plan(Path.of("models/kjv-draft"), MemoryBudget.UNLIMITED);
        assertEquals(parameters, p.weights().parameters());
        assertEquals(parameters, p.weights().parametersFromConfig());
        // int8 (MatMulInteger): matrices and the embedding as uint8, the 5 norms (640 values) as float32
        assertEquals(Map.of("uint8", parameters - 640, "float32", 640L), p.weights().parametersByDtype());
        assertEquals(parameters - 640 + 4 * 640, p.weights().parameterBytes());
        // the output layer is a uint8 copy of the embedding [128, 4096]
        assertEquals(128L * 4096, p.weights().tiedCopyBytes());
        // scales and zero points: per output column of each matrix (float32 scale + uint8 zero point), per embedding
        // row (float32 scale + float32 zero point), and the activations' zero point 128 (one uint8)
        long columns = 2 * (128 + 64 + 64 + 128 + 352 + 352 + 128) + 4096;
        assertEquals(columns * 5 + 4096L * 8 + 1, p.weights().quantizationOverheadBytes());
        assertEquals(2 * 2 * 2 * 32 * 4, p.kvCache().bytesPerToken());
        assertEquals(1024L * 1024, p.kvCache().bytesPerFullContext());  // context 1024
        assertNull(p.budget().bytes());
        assertNull(p.budget().maxFullContextSequences());
    }

    @Test
    void kjvTargetMatchesItsModelCard() {
        // MODEL_CARD.md: 25,698,816 parameters (tied). hidden 512, 8 layers, 8 heads x 64, 4 kv heads, MLP 1408, vocab 4096
        long perLayer = 2 * 512 + 512 * 512 + 2 * 512 * 256 + 512 * 512 + 3 * 512 * 1408;
        long parameters = 4096L * 512 + 8 * perLayer + 512;
        assertEquals(25_698_816, parameters);
        MemoryPlan p = plan(Path.of("models/kjv-target"), new MemoryBudget(384L << 20, "test"));
        assertEquals(parameters, p.weights().parameters());
        assertEquals(parameters, p.weights().parametersFromConfig());
        assertEquals(4096L * 512, p.weights().tiedCopyBytes());
        assertEquals(17 * 512L, p.weights().parametersByDtype().get("float32"));
        assertEquals(new MemoryPlan.ByPrecision(102_795_264, 51_397_632, 25_698_816, 12_849_408), p.weights().byPrecision());
        // KV: 2 x 8 layers x 4 kv heads x 64 x 4 bytes = 16 KiB per token, 16 MiB per 1024-token context
        assertEquals(16_384, p.kvCache().bytesPerToken());
        assertEquals(16L << 20, p.kvCache().bytesPerFullContext());
        // the bundled target is a slots graph: a sequence is counted at one pool row of the full width (1024 positions)
        // whatever its length, plus step buffers, which grow only to the largest feed: a prompt chunk (at most 64
        // tokens), so the worst is any prompt of 64 tokens or more: 64 step rows of 4 x 4096 + 8 + 8 bytes (fed in one
        // call, a 1024-token prompt took 1024 rows: 33,570,816 bytes)
        assertEquals(KvFootprint.Layout.SLOT_POOL, onnxRuntimeLayout(ModelDirectory.open(Path.of("models/kjv-target"))));
        assertEquals(64, p.kvCache().worstCasePromptTokens());
        assertEquals(16_384L * 1024 + 64L * 16_400, p.kvCache().allocatedBytesPerFullContext());
        assertEquals(17_826_816L, p.kvCache().allocatedBytesPerFullContext());
        assertTrue(p.kvCache().allocation().contains("slot pool"), p.kvCache().allocation());
        assertTrue(p.kvCache().allocation().contains("chunks of up to 64 tokens"), p.kvCache().allocation());
        // 384 MiB: 402,653,184 / 17,826,816 = 22.6; theoretical 402,653,184 / 16,777,216 = 24
        assertEquals(22L, p.budget().maxFullContextSequences());
        assertEquals(24L, p.budget().maxFullContextSequencesTheoretical());

        // the same geometry in the Optimum layout (KvBuffers), as the target was served before: capacity 64, ..., 512,
        // then 1024 while the 512 regions still exist (1536 tokens, twice); a chunk's 64 step rows of 4 x 4096 + 8
        MemoryPlan optimum = plan(Path.of("models/kjv-target"), new MemoryBudget(384L << 20, "test"),
                KvFootprint.Layout.KV_BUFFERS);
        assertEquals(64, optimum.kvCache().worstCasePromptTokens());
        assertEquals(2L * 16_384 * 1536 + 64L * 16_392, optimum.kvCache().allocatedBytesPerFullContext());
        // 402,653,184 / 51,380,736 = 7.8
        assertEquals(7L, optimum.budget().maxFullContextSequences());
    }

    @Test
    void configFormulaCountsUntiedHeadsAndBiases() throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var c = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(
                Path.of("models/kjv-draft/config.json").toFile());
        c.put("tie_word_embeddings", false);
        assertEquals(893_568L + 4096 * 128, MemoryPlan.parametersFromConfig(c));
        c.put("attention_bias", true);
        assertEquals(893_568L + 4096 * 128 + 2 * (128 + 2 * 64 + 128), MemoryPlan.parametersFromConfig(c));
        c.put("model_type", "gpt2");
        assertNull(MemoryPlan.parametersFromConfig(c));
    }

    @Test
    void sizesParse() {
        assertEquals(1_048_576, ByteSize.parse("1048576"));
        assertEquals(512L << 20, ByteSize.parse("512M"));
        assertEquals(512L << 20, ByteSize.parse("512Mi"));
        assertEquals(2L << 30, ByteSize.parse("2G"));
        assertEquals(2L << 30, ByteSize.parse("2g"));
        assertEquals(64L << 10, ByteSize.parse("64k"));
        for (String bad : new String[] {"", "2 GB", "500MB", "-1", "1.5G", "lots"}) {
            try {
                ByteSize.parse(bad);
                throw new AssertionError(bad + " parsed");
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().contains("not a memory size"), expected.getMessage());
            }
        }
        assertEquals(MemoryBudget.UNLIMITED, MemoryBudget.resolve("unlimited"));
        MemoryBudget auto = MemoryBudget.resolve("auto");
        assertTrue(auto.source().startsWith("auto"), auto.source());
        assertEquals(384L << 20, MemoryBudget.resolve("384M").bytes());
        assertEquals("79.6 MiB", ByteSize.human(83_492_864));
    }
}
