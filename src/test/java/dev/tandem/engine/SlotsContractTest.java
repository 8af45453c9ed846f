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
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine contract on a graph in the slots layout ({@code tandem.kv_layout=slots}, notes/slots.md): the
 * fixture src/test/resources/models/slots-tiny (a seeded random Llama, int8, in the repository) opened by every
 * engine of {@link EngineContractTest#ENGINES}. Greedy decoding must give the ids torch computed
 * ({@code reference.json}); several tokens in one step, rollback, assisted decoding and the batched step must
 * agree with single steps as on the Optimum model. An engine whose runtime is missing is skipped with the reason.
 *
 * <p>Every check runs twice: on the fixture, and on {@code slots-tiny-external}, the same graph re-saved with its
 * weights in an external data file ({@code model.onnx} + {@code model.onnx_data}, as Optimum writes most exports;
 * {@code tools/models/build.sh slots-tiny-external}), whose logits must be the in-file graph's bit for bit.
 */
class SlotsContractTest {
    static final Path FIXTURE = Path.of("src/test/resources/models/slots-tiny");
    static final Path EXTERNAL = Path.of("src/test/resources/models/slots-tiny-external");
    static final Map<String, Path> FIXTURES = Map.of("in-file", FIXTURE, "external-data", EXTERNAL);
    static final Map<String, Object> LOADED = new LinkedHashMap<>();  // CausalLm, or why it could not load
    static final Map<String, ModelDirectory> DIRS = new LinkedHashMap<>();
    static TextTokenizer tokenizer;

    /** (fixture, engine): every engine on the in-file graph, then on the external-data copy. */
    static Stream<Arguments> engines() {
        return Stream.of("in-file", "external-data")
                .flatMap(f -> EngineContractTest.ENGINES.keySet().stream().map(e -> Arguments.of(f, e)));
    }

    static Stream<String> engineNames() {
        return EngineContractTest.ENGINES.keySet().stream();
    }

    static synchronized ModelDirectory dir(String fixture) {
        ModelDirectory d = DIRS.computeIfAbsent(fixture, f -> ModelDirectory.open(FIXTURES.get(f)));
        if (tokenizer == null) {
            tokenizer = TextTokenizer.load(d);  // both fixtures have the same tokenizer.json
        }
        return d;
    }

    static synchronized CausalLm lm(String fixture, String engine) {
        ModelDirectory dir = dir(fixture);
        Object o = LOADED.computeIfAbsent(fixture + " " + engine, e -> {
            try {
                return EngineContractTest.ENGINES.get(engine).apply(dir);
            } catch (RuntimeException ex) {
                return ex;
            }
        });
        if (o instanceof OpenVinoRuntime.NotAvailableException missing && !"true".equalsIgnoreCase(System.getenv("CI"))) {
            Assumptions.abort(engine + " runtime not available here: " + missing.getMessage());
        }
        if (o instanceof RuntimeException failed) {  // an engine that is there must serve the slots layout
            throw new AssertionError(engine + " did not open the " + fixture + " slots fixture: " + failed.getMessage(), failed);
        }
        return (CausalLm) o;
    }

    /** OpenVINO on the in-file fixture's fp32 graph (the external-data copy leaves the fp32 graph out, to stay small). */
    static CausalLm openVinoFp32() {
        lm("in-file", "openvino");  // skipped as the others when the runtime is missing
        return (CausalLm) LOADED.computeIfAbsent("openvino-fp32", e -> dev.tandem.engine.openvino.OpenVinoCausalLm.open(
                OpenVinoRuntime.load(), FIXTURE.resolve("model_fp32.onnx"), dir("in-file").config().shape(),
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
        DIRS.clear();
        if (tokenizer != null) {
            tokenizer.close();
            tokenizer = null;
        }
    }

    static int[] text() {
        return tokenizer.encodePrompt("And it came to pass, when the king heard the words of the law, that he rent his clothes. "
                .repeat(8));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void discoversTheShape(String fixture, String engine) {
        assertEquals(new ModelShape(4096, 256, 2, 2, 6, 4), lm(fixture, engine).shape());
    }

    /**
     * The external-data copy is the same model: every engine gives it the in-file graph's logits bit for bit (a
     * prompt in one call, then single steps).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engineNames")
    void externalDataGivesTheInFileLogits(String engine) {
        CausalLm inFile = lm("in-file", engine);
        CausalLm external = lm("external-data", engine);
        int[] text = text();
        try (KvCache a = inFile.newCache(); KvCache b = external.newCache()) {
            Logits x = inFile.forward(a, text, 0, 40);
            Logits y = external.forward(b, text, 0, 40);
            for (int r = 0; r < 40; r++) {
                assertArrayEquals(x.row(r), y.row(r), engine + " prompt row " + r);
            }
            for (int i = 40; i < 48; i++) {
                assertArrayEquals(inFile.forward(a, text, i, 1).row(0), external.forward(b, text, i, 1).row(0),
                        engine + " position " + i);
            }
        }
    }

    /**
     * One token per call after the prompt, as the fixture's reference was computed (torch, fp32 weights). OpenVINO
     * runs the fixture's fp32 graph here: on the int8 graph its arithmetic differs from ONNX Runtime's (and the
     * reference engine's, which emulates it exactly) by up to 0.39 in a logit (measured; on the fp32 graph 1e-5),
     * enough to flip a near tie of this random model (prompt 4, token 12: ONNX Runtime's int8 top-2 gap is 0.25).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void greedyMatchesTheTorchReference(String fixture, String engine) throws IOException {
        Assumptions.assumeFalse(engine.equals("openvino") && fixture.equals("external-data"), "OpenVINO is checked against"
                + " torch on the fp32 graph, which the external-data copy leaves out; on the int8 graph its logits equal"
                + " the in-file graph's (externalDataGivesTheInFileLogits)");
        CausalLm lm = engine.equals("openvino") ? openVinoFp32() : lm(fixture, engine);
        JsonNode ref = new ObjectMapper().readTree(FIXTURES.get(fixture).resolve("reference.json").toFile());
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

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void fourTokensInOneStepEqualFourSingleSteps(String fixture, String engine) {
        CausalLm lm = lm(fixture, engine);
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
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void truncatingAndRefeedingEqualsAFreshPrefill(String fixture, String engine) {
        CausalLm lm = lm(fixture, engine);
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

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void assistedGreedyEqualsPlainGreedy(String fixture, String engine) {
        CausalLm lm = lm(fixture, engine);
        PlainDecoder plain = new PlainDecoder(lm, tokenizer, dir(fixture).config().eosTokenIds());
        AssistedDecoder self = new AssistedDecoder(lm, lm, tokenizer, dir(fixture).config().eosTokenIds());
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
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void fillsTheContextAndRefusesMore(String fixture, String engine) {
        CausalLm lm = lm(fixture, engine);
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
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("engines")
    void batchedStepEqualsSingleForwards(String fixture, String engine) {
        BatchedStepChecks.check(lm(fixture, engine), text(), 0);
    }

}
