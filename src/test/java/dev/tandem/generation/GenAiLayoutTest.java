package dev.tandem.generation;

import static dev.tandem.testing.TestArrays.argmax;
import static dev.tandem.testing.TestArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ONNX Runtime GenAI layout served by the ONNX Runtime engine, on the fixtures
 * {@code tools/models/genai_fixture.py} writes as {@code onnxruntime_genai.models.builder} does for a CPU Llama
 * (src/test/resources/models/genai-tiny-int4, genai-tiny-int8, and genai-tiny-int4-b128 with blocks of 128):
 * {@code genai_config.json},
 * com.microsoft.GroupQueryAttention with its rotary caches and per-row {@code seqlens_k} /
 * {@code total_sequence_length} computed in the graph from {@code attention_mask}, MatMulNBits int4 (no zero points)
 * and int8 (with zero points) at accuracy_level 4, SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization.
 * The engine keeps the caches as rows of a slot pool, each row's past and present one buffer
 * ({@code past_present_share_buffer}), and runs a batched step as one call (GenAiSharedBufferTest).
 */
class GenAiLayoutTest {
    static final Path INT4 = Path.of("src/test/resources/models/genai-tiny-int4");
    static final Path INT8 = Path.of("src/test/resources/models/genai-tiny-int8");
    /**
     * int4 in blocks of 128 (common in published models), its MLP 256 wide so that the down projection's K spans two
     * blocks; the other K (32) are one block padded with zeros.
     */
    static final Path INT4_B128 = Path.of("src/test/resources/models/genai-tiny-int4-b128");
    /**
     * The same model (seed and sizes of genai-tiny-int4 / -int8) as the builder's {@code -p fp16} writes it, on the
     * CPU too: float16 weights (MatMul), activations, GroupQueryAttention caches and logits.
     */
    static final Path FP16 = Path.of("src/test/resources/models/genai-tiny-fp16");
    /** The same model all float32 (the builder's {@code -p fp32}): no rounding boundaries (GenAiSharedBufferTest). */
    static final Path FP32 = Path.of("src/test/resources/models/genai-tiny-fp32");
    /**
     * How far a token's logits may move between being fed alone and inside a block of tokens. MatMulNBits at
     * accuracy_level 4 rounds activations to int8 per row, so a row's result does not depend on its neighbours, but
     * ONNX Runtime's kernels sum in another order for one row than for several (GEMV vs GEMM) and attention over a
     * block is one call: float rounding (seen: 7.6e-6 and 5.7e-6 at the first differing position of int4 and int8). A cache that is
     * wrong (a position skipped, a rotary angle off by one, stale keys after a rollback) moves them by far more.
     */
    static final float TOLERANCE = 2e-4f;
    /**
     * The same for the float16 graph: every activation is rounded to float16 (11 significant bits) after each operator,
     * so the other summation order of a block moves a logit by a few float16 steps (0.008 at magnitudes 8-16; seen up
     * to 0.023 over 200 positions). A wrong cache moves them by whole units.
     */
    static final float TOLERANCE_FP16 = 0.05f;

    static Model int4;
    static Model int8;
    static Model int4b128;
    static Model fp16;
    static Model fp32;

    record Model(Path path, ModelDirectory dir, OrtCausalLm lm, TextTokenizer tokenizer, JsonNode reference) {
        static Model open(Path path) {
            ModelDirectory dir = ModelDirectory.open(path);
            try {
                return new Model(path, dir, OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults()),
                        TextTokenizer.load(dir), new ObjectMapper().readTree(Files.readString(path.resolve("reference.json"))));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        PlainDecoder plain() {
            return new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds());
        }
    }

    @BeforeAll
    static void open() {
        int4 = Model.open(INT4);
        int8 = Model.open(INT8);
        int4b128 = Model.open(INT4_B128);
        fp16 = Model.open(FP16);
        fp32 = Model.open(FP32);
    }

    @AfterAll
    static void close() {
        for (Model m : List.of(int4, int8, int4b128, fp16, fp32)) {
            m.lm.close();
            m.tokenizer.close();
        }
    }

    /** A fixture by name: int4 and int8 in blocks of 32 (the builder's default), int4-b128, fp16, fp32. */
    static Model model(String name) {
        return switch (name) {
            case "int4" -> int4;
            case "int8" -> int8;
            case "int4-b128" -> int4b128;
            case "fp16" -> fp16;
            case "fp32" -> fp32;
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** The directory is recognised by its genai_config.json: graph file, sizes and context, BOS and EOS from it. */
    @ParameterizedTest
    @ValueSource(strings = {"int4", "int8", "int4-b128", "fp16", "fp32"})
    void theDirectoryIsReadFromItsGenAiConfig(String fixture) {
        Model m = model(fixture);
        assertEquals(m.path.resolve("model.onnx").toAbsolutePath(), m.dir.graph().toAbsolutePath());
        assertEquals(m.path.resolve("genai_config.json").toAbsolutePath(), m.dir.files().configJson().toAbsolutePath());
        var s = m.lm.shape();
        assertEquals(List.of(4096, 256, 2, 1, 16), List.of(s.vocabSize(), s.maxContext(), s.layers(), s.kvHeads(), s.headDim()));
        assertEquals(1, m.dir.config().bosTokenId());
        assertEquals(List.of(2), m.dir.config().eosTokenIds());
        assertTrue(m.lm.slotLayout(), "GroupQueryAttention's past and present one buffer, rows of a slot pool");
        assertEquals(CausalLm.CacheStorage.SLOT_POOL, m.lm.cacheStorage(), "what admission control counts");
        assertEquals(fixture.equals("fp16") ? "float16" : fixture.equals("fp32") ? "float32"
                : fixture.substring(0, 4) + " (MatMulNBits)", m.dir.quantization(),
                "as /v1/models reports it");
    }

    /** Greedy decoding reproduces the torch reference computed from the same dequantised weights. */
    @ParameterizedTest
    @ValueSource(strings = {"int4", "int8", "int4-b128", "fp16", "fp32"})
    void greedyReproducesTheTorchReference(String fixture) {
        Model m = model(fixture);
        for (JsonNode p : m.reference.get("prompts")) {
            int[] prompt = ints(p.get("prompt_ids"));
            assertArrayEquals(prompt, m.tokenizer.encodePrompt(p.get("prompt").asText()), "the tokenizer's ids");
            int[] expected = ints(p.get("greedy_ids"));
            int[] actual = new int[expected.length];
            try (KvCache cache = m.lm.newCache()) {
                Logits logits = m.lm.forward(cache, prompt, 0, prompt.length);
                for (int i = 0; i < expected.length; i++) {
                    actual[i] = argmax(logits.row(logits.rows() - 1));
                    if (i + 1 < expected.length) {
                        logits = m.lm.forward(cache, new int[] {actual[i]}, 0, 1);
                    }
                }
            }
            assertArrayEquals(expected, actual, fixture + " greedy continuation of '" + p.get("prompt").asText() + "'");
        }
    }

    /** A block of tokens fed at once gives each token the logits it gets fed one at a time (after a past, too). */
    @ParameterizedTest
    @ValueSource(strings = {"int4", "int8", "int4-b128", "fp16", "fp32"})
    void aMultiTokenForwardEqualsSingleSteps(String fixture) {
        Model m = model(fixture);
        int[] text = text(m);
        int split = 9;
        try (KvCache block = m.lm.newCache(); KvCache steps = m.lm.newCache()) {
            float[][] blockRows = rows(m.lm.forward(block, text, 0, split));
            Logits rest = m.lm.forward(block, text, split, text.length - split);
            for (int i = 0; i < text.length; i++) {
                float[] single = m.lm.forward(steps, text, i, 1).row(0);
                float[] expected = i < split ? blockRows[i] : rest.row(i - split);
                assertClose(single, expected, m == fp16 ? TOLERANCE_FP16 : TOLERANCE, "position " + i);
            }
            assertEquals(text.length, block.length());
        }
    }

    /**
     * Rolling back (truncating the cache as assisted decoding does with rejected draft tokens) and feeding other
     * tokens gives the logits of a cache that never saw the rejected ones: the graph sees the past by its length.
     */
    @ParameterizedTest
    @ValueSource(strings = {"int4", "int8", "int4-b128", "fp16", "fp32"})
    void rollbackThenRefeedGivesTheSameLogits(String fixture) {
        Model m = model(fixture);
        int[] text = text(m);
        int keep = 12;
        try (KvCache rolled = m.lm.newCache(); KvCache fresh = m.lm.newCache()) {
            m.lm.forward(rolled, text, 0, text.length);
            rolled.truncate(keep);
            int[] other = {500, 501, 502, 503};
            float[][] afterRollback = rows(m.lm.forward(rolled, other, 0, other.length));
            m.lm.forward(fresh, text, 0, keep);
            float[][] expected = rows(m.lm.forward(fresh, other, 0, other.length));
            for (int i = 0; i < other.length; i++) {
                assertArrayEquals(expected[i], afterRollback[i], "the same past and feed give the same bits, row " + i);
            }
            assertEquals(keep + other.length, rolled.length());
        }
    }

    /** Assisted greedy decoding gives plain greedy's tokens with the fixture as target and as draft (the other one). */
    @Test
    void assistedEqualsPlainGreedyAsTargetAndAsDraft() {
        for (Model[] pair : new Model[][] {{int4, int8}, {int8, int4}, {int4b128, int8}, {fp16, int4}, {int4, fp16}}) {
            Model target = pair[0];
            CausalLm draft = pair[1].lm;
            AssistedDecoder assisted = new AssistedDecoder(target.lm, draft, target.tokenizer, target.dir.config().eosTokenIds());
            int drafted = 0;
            int accepted = 0;
            for (JsonNode p : target.reference.get("prompts")) {
                GenerationRequest req = new GenerationRequest(target.tokenizer.encodePrompt(p.get("prompt").asText()),
                        SamplingParams.greedy(), 40, List.of(), -1, false);
                GenerationResult expected = target.plain().generate(req);
                for (Schedule schedule : Schedule.values()) {
                    GenerationResult actual = assisted.generate(req, new AssistOptions(Assistant.DRAFT, 4, schedule, 0, 3));
                    assertArrayEquals(expected.tokens(), actual.tokens(), target.path.getFileName() + " drafted by "
                            + pair[1].path.getFileName() + ", " + schedule + ", prompt '" + p.get("prompt").asText() + "'");
                    assertTrue(actual.stats().assisted());
                    drafted += actual.stats().numDraftTokens();
                    accepted += actual.stats().numAcceptedTokens();
                }
            }
            assertTrue(drafted > 0, "the draft proposed tokens");
            if (target == int4b128) {  // another model (its MLP is wider): every candidate rejected, every round rolled back
                assertTrue(accepted < drafted, "rejections (rollbacks happened): " + accepted + " of " + drafted);
            } else {
                assertTrue(accepted > 0 && accepted < drafted, "some accepted, some rejected (rollbacks happened): "
                        + accepted + " of " + drafted);
            }
        }
    }

    static int[] text(Model m) {
        return m.tokenizer.encodePrompt("And it came to pass, when the king heard the words of the law, that he rent his clothes.");
    }

    static float[][] rows(Logits l) {
        float[][] out = new float[l.rows()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = l.row(i);
        }
        return out;
    }

    static void assertClose(float[] expected, float[] actual, float tolerance, String what) {
        float worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        }
        System.err.println("WORSTL " + tolerance + " " + worst); assertTrue(worst <= tolerance, what + ": logits differ by up to " + worst + " (tolerance " + tolerance + ")");
    }
}
