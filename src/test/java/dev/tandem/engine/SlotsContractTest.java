package dev.tandem.engine;

import static dev.tandem.testing.TestArrays.ints;
import static dev.tandem.testing.TestArrays.argmax;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.generation.SamplingParams;
import dev.tandem.engine.openvino.OpenVinoRuntime;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine contract on a graph in the slots layout ({@code tandem.kv_layout=slots}, notes/slots.md): the
 * fixture src/test/resources/models/slots-tiny (a seeded random Llama, int8, in the repository) opened by every
 * engine of {@link EngineContractTest#ENGINES}. Greedy decoding must give the ids torch computed
 * ({@code reference.json}); several tokens in one step, rollback, assisted decoding and the batched step must
 * agree with single steps as on the Optimum model. An engine whose runtime is missing is skipped with the reason.
 */
class SlotsContractTest {
    static final Path FIXTURE = Path.of("src/test/resources/models/slots-tiny");
    static final Map<String, Object> LOADED = new LinkedHashMap<>();  // CausalLm, or why it could not load
    static ModelDirectory dir;
    static TextTokenizer tokenizer;

    static Stream<String> engines() {
        return EngineContractTest.ENGINES.keySet().stream();
    }

    static synchronized CausalLm lm(String engine) {
        if (dir == null) {
            dir = ModelDirectory.open(FIXTURE);
            tokenizer = TextTokenizer.load(dir);
        }
        Object o = LOADED.computeIfAbsent(engine, e -> {
            try {
                return EngineContractTest.ENGINES.get(e).apply(dir);
            } catch (RuntimeException ex) {
                return ex;
            }
        });
        if (o instanceof OpenVinoRuntime.NotAvailableException missing && !"true".equalsIgnoreCase(System.getenv("CI"))) {
            Assumptions.abort(engine + " runtime not available here: " + missing.getMessage());
        }
        if (o instanceof RuntimeException failed) {  // an engine that is there must serve the slots layout
            throw new AssertionError(engine + " did not open the slots fixture: " + failed.getMessage(), failed);
        }
        return (CausalLm) o;
    }

    static CausalLm openVinoFp32() {
        lm("openvino");  // skipped as the others when the runtime is missing
        return (CausalLm) LOADED.computeIfAbsent("openvino-fp32", e -> dev.tandem.engine.openvino.OpenVinoCausalLm.open(
                OpenVinoRuntime.load(), FIXTURE.resolve("model_fp32.onnx"), dir.config().shape(),
                dev.tandem.engine.openvino.OpenVinoOptions.defaults()));
    }

    @AfterAll
    static void close() {
        LOADED.values().forEach(o -> {
            if (o instanceof CausalLm lm) {
                lm.close();
            }
        });
        LOADED.clear();
        if (tokenizer != null) {
            tokenizer.close();
        }
    }

    static int[] text() {
        return tokenizer.encodePrompt("And it came to pass, when the king heard the words of the law, that he rent his clothes. "
                .repeat(8));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void discoversTheShape(String engine) {
        assertEquals(new ModelShape(4096, 256, 2, 2, 6, 4), lm(engine).shape());
    }

    /**
     * One token per call after the prompt, as the fixture's reference was computed (torch, fp32 weights). OpenVINO
     * runs the fixture's fp32 graph here: on the int8 graph its arithmetic differs from ONNX Runtime's (and the
     * reference engine's, which emulates it exactly) by up to 0.39 in a logit (measured; on the fp32 graph 1e-5),
     * enough to flip a near tie of this random model (prompt 4, token 12: ONNX Runtime's int8 top-2 gap is 0.25).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void greedyMatchesTheTorchReference(String engine) throws IOException {
        CausalLm lm = engine.equals("openvino") ? openVinoFp32() : lm(engine);
        JsonNode ref = new ObjectMapper().readTree(FIXTURE.resolve("reference.json").toFile());
        assertEquals("slots", ref.get("kv_layout").asText());
        for (JsonNode p : ref.get("prompts")) {
            int[] prompt = ints(p.get("prompt_ids"));
            int[] expected = ints(p.get("greedy_ids"));
            int[] got = new int[expected.length];
            try (KvCache cache = lm.newCache()) {
                Logits l = lm.forward(cache, prompt);
                for (int i = 0; i < expected.length; i++) {
                    got[i] = argmax(l.row(l.rows() - 1));
                    if (i + 1 < expected.length) {
                        l = lm.forward(cache, got[i]);
                    }
                }
            }
            assertArrayEquals(expected, got, engine + " '" + p.get("prompt").asText() + "'");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void fourTokensInOneStepEqualFourSingleSteps(String engine) {
        CausalLm lm = lm(engine);
        int[] text = text();
        for (int past : new int[] {10, 62}) {  // 62: the four cross a width step of 64
            try (KvCache a = lm.newCache(); KvCache b = lm.newCache()) {
                lm.forward(a, text, 0, past);
                Logits four = lm.forward(a, text, past, 4);
                float[][] batched = new float[4][];
                for (int i = 0; i < 4; i++) {
                    batched[i] = four.row(i);
                }
                lm.forward(b, text, 0, past);
                for (int i = 0; i < 4; i++) {
                    EngineContractTest.assertClose(lm.forward(b, text, past + i, 1).row(0), batched[i], 1e-4,
                            "position " + (past + i));
                }
            }
        }
    }

    /** Rollback is a length change: what lies beyond the length (the rolled-back keys) must never be attended to. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void truncatingAndRefeedingEqualsAFreshPrefill(String engine) {
        CausalLm lm = lm(engine);
        int[] text = text();
        int[] other = tokenizer.encode(" and the people wept");
        try (KvCache cache = lm.newCache(); KvCache fresh = lm.newCache(); KvCache third = lm.newCache()) {
            lm.forward(cache, text, 0, 5);
            for (int i = 5; i < 150; i++) {  // past two width steps of 64
                lm.forward(cache, text, i, 1);
            }
            cache.truncate(70);
            float[] resumed = lm.forward(cache, other).row(other.length - 1);
            int[] expected = Arrays.copyOf(text, 70 + other.length);
            System.arraycopy(other, 0, expected, 70, other.length);
            EngineContractTest.assertClose(lm.forward(fresh, expected).row(expected.length - 1), resumed, 1e-4,
                    "after rollback");
            cache.truncate(0);
            EngineContractTest.assertClose(lm.forward(third, text, 0, 73).row(72), lm.forward(cache, text, 0, 73).row(72),
                    1e-4, "after truncating to empty");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void assistedGreedyEqualsPlainGreedy(String engine) {
        CausalLm lm = lm(engine);
        PlainDecoder plain = new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds());
        AssistedDecoder self = new AssistedDecoder(lm, lm, tokenizer, dir.config().eosTokenIds());
        for (String p : List.of("", "And he said unto them,", "In the beginning God created")) {
            GenerationRequest req = new GenerationRequest(tokenizer.encodePrompt(p), SamplingParams.greedy(), 80, List.of(), -1,
                    false);
            int[] expected = plain.generate(req).tokens();
            for (AssistOptions.Assistant a : AssistOptions.Assistant.values()) {
                GenerationResult r = self.generate(req, new AssistOptions(a, 4, AssistOptions.Schedule.CONSTANT, 0, 3));
                assertArrayEquals(expected, r.tokens(), engine + " " + a + " '" + p + "'");
            }
        }
    }

    /** The context (256) is the limit; a sequence may fill it exactly (its positions stay below the graph's tables). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void fillsTheContextAndRefusesMore(String engine) {
        CausalLm lm = lm(engine);
        int[] text = text();
        int max = lm.shape().maxContext();
        int[] full = new int[max];
        for (int i = 0; i < max; i++) {
            full[i] = text[i % 100 + 1];
        }
        full[0] = text[0];
        try (KvCache cache = lm.newCache(); KvCache fresh = lm.newCache()) {
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, new int[max + 1]));
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, 4096));
            assertEquals(0, cache.length(), "a refused step leaves the cache as it was");
            lm.forward(cache, full, 0, max - 3);
            float[] last = lm.forward(cache, full, max - 3, 3).row(2);
            assertEquals(max, cache.length());
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, 1));
            EngineContractTest.assertClose(lm.forward(fresh, full).row(max - 1), last, 1e-4, "the last position");
        }
        KvCache closed = lm.newCache();
        closed.close();
        closed.close();
        assertThrows(IllegalStateException.class, () -> lm.forward(closed, 1));
    }

    /**
     * Bit for bit (the slots layout's purpose, notes/slots.md): ONNX Runtime and OpenVINO run the batch as one call
     * over a pool of rows (padding, rows moving when one leaves); the reference engine loops over single forwards.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void batchedStepEqualsSingleForwards(String engine) {
        BatchedStepChecks.check(lm(engine), text(), 0);
    }

}
