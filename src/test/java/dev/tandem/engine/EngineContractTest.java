package dev.tandem.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.openvino.OpenVinoCausalLm;
import dev.tandem.engine.openvino.OpenVinoOptions;
import dev.tandem.engine.openvino.OpenVinoRuntime;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistedDecoder;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine contract: every engine runs these same tests on a real pretrained model
 * (stories260K, Optimum layout; the reference engine also on its llama2.c checkpoint). An engine whose runtime is not installed on this machine is
 * reported as skipped, with the reason; run it where the runtime is (see README, "Engines").
 */
@RequiresSharedModels
class EngineContractTest {
    /** Engine name -> how to open a model directory with it (throws when its runtime is missing). */
    static final Map<String, Function<ModelDirectory, CausalLm>> ENGINES = new LinkedHashMap<>();

    static {
        ENGINES.put("onnxruntime", d -> OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults()));
        // skipped with the reason where no OpenVINO runtime is installed (see README, "Engines")
        ENGINES.put("openvino", d -> OpenVinoCausalLm.open(OpenVinoRuntime.load(), d.graph(), d.config().shape(),
                OpenVinoOptions.defaults()));
        // plain Java, weights read from the graph's initializers (engine/reference)
        ENGINES.put("reference", d -> ReferenceCausalLm.open(d.files()));
        // the same, weights left in the file and mapped a layer at a time (offload mode)
        ENGINES.put("reference-offload", d -> ReferenceCausalLm.open(d.files(), true));
    }

    /**
     * The same model as llama2.c ships it (stories260K.bin: pairwise rotary, the header as config), on the engines that
     * read it: both modes of the reference engine. Kept apart from {@link #ENGINES}, which other contract tests open
     * their own fixtures with.
     */
    static final Map<String, java.util.function.Supplier<CausalLm>> LLAMA2C = new LinkedHashMap<>();

    static {
        LLAMA2C.put("reference (llama2.c)", () -> ReferenceCausalLm.open(llama2c().files()));
        LLAMA2C.put("reference-offload (llama2.c)", () -> ReferenceCausalLm.open(llama2c().files(), true));
    }

    /** ../shared/models/stories260K: the checkpoint and tokenizer.bin (its tokenizer gives the ids of the Optimum one). */
    static ModelDirectory llama2c() {
        return ModelDirectory.open(SharedModels.stories260kBin().getParent());
    }

    static final Map<String, Object> LOADED = new LinkedHashMap<>();  // CausalLm, or the reason it could not load
    static ModelDirectory dir;
    static TextTokenizer tokenizer;

    static Stream<String> engines() {
        return Stream.concat(ENGINES.keySet().stream(), LLAMA2C.keySet().stream());
    }

    static synchronized CausalLm lm(String engine) {
        if (dir == null) {
            dir = ModelDirectory.open(SharedModels.stories260kHf());
            tokenizer = TextTokenizer.load(dir);
        }
        Object o = LOADED.computeIfAbsent(engine, e -> {
            try {
                return ENGINES.containsKey(e) ? ENGINES.get(e).apply(dir) : LLAMA2C.get(e).get();
            } catch (RuntimeException ex) {
                return ex.getMessage();
            }
        });
        if (o instanceof String reason) {
            if (engine.equals("openvino") && "true".equalsIgnoreCase(System.getenv("CI"))) {
                // CI has ../shared/openvino (the build points OPENVINO_HOME at it): the engine must run there
                throw new AssertionError("CI=true but the OpenVINO runtime did not load (OPENVINO_HOME="
                        + System.getenv("OPENVINO_HOME") + "): " + reason);
            }
            Assumptions.abort(engine + " runtime not available here: " + reason);
        }
        return (CausalLm) o;
    }

    @AfterAll
    static void close() {
        LOADED.values().forEach(o -> {
            if (o instanceof CausalLm lm) {
                lm.close();
            }
        });
        if (tokenizer != null) {
            tokenizer.close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void discoversTheShapeFromGraphAndConfig(String engine) {
        assertEquals(new ModelShape(512, 512, 5, 4, 8, 4), lm(engine).shape());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void greedyFromBosReproducesTheKnownGoodText(String engine) {
        CausalLm lm = lm(engine);
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

        GenerationResult r = new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds()).generate(
                new GenerationRequest(tokenizer.encodePrompt(""), SamplingParams.greedy(), 60, List.of(), -1, false));
        assertEquals(SharedModels.STORIES_GREEDY_60, r.text());
        assertEquals(FinishReason.LENGTH, r.finishReason());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void fourTokensInOneStepEqualFourSingleSteps(String engine) {
        CausalLm lm = lm(engine);
        int[] text = tokenizer.encodePrompt("Once upon a time, there was a little girl named Lily who loved cats.");
        try (KvCache a = lm.newCache(); KvCache b = lm.newCache()) {
            lm.forward(a, text, 0, 10);
            Logits four = lm.forward(a, text, 10, 4);
            float[][] batched = new float[4][];
            for (int i = 0; i < 4; i++) {
                batched[i] = four.row(i);
            }
            lm.forward(b, text, 0, 10);
            for (int i = 0; i < 4; i++) {
                assertClose(lm.forward(b, text, 10 + i, 1).row(0), batched[i], 1e-4, "position " + (10 + i));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void truncatingAndRefeedingEqualsAFreshPrefill(String engine) {
        CausalLm lm = lm(engine);
        int[] text = tokenizer.encodePrompt("Once upon a time ".repeat(30));
        int[] other = tokenizer.encode(" The dog ran away");
        try (KvCache cache = lm.newCache(); KvCache fresh = lm.newCache(); KvCache third = lm.newCache()) {
            lm.forward(cache, text, 0, 5);
            for (int i = 5; i < 100; i++) {  // grows the cache several times
                lm.forward(cache, text, i, 1);
            }
            cache.truncate(70);
            float[] resumed = lm.forward(cache, other).row(other.length - 1);
            int[] expected = Arrays.copyOf(text, 70 + other.length);
            System.arraycopy(other, 0, expected, 70, other.length);
            assertClose(lm.forward(fresh, expected).row(expected.length - 1), resumed, 1e-4, "after rollback");
            cache.truncate(0);
            assertClose(lm.forward(third, text, 0, 73).row(72), lm.forward(cache, text, 0, 73).row(72), 1e-4,
                    "after truncating to empty");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void assistedGreedyEqualsPlainGreedy(String engine) {
        CausalLm lm = lm(engine);
        PlainDecoder plain = new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds());
        AssistedDecoder self = new AssistedDecoder(lm, lm, tokenizer, dir.config().eosTokenIds());
        for (String p : List.of("", "Once upon a time", "The little dog", "Tom and Sue went to the park")) {
            GenerationRequest req = new GenerationRequest(tokenizer.encodePrompt(p), SamplingParams.greedy(), 64, List.of(), -1, false);
            int[] expected = plain.generate(req).tokens();
            for (AssistOptions.Assistant a : AssistOptions.Assistant.values()) {
                GenerationResult r = self.generate(req, new AssistOptions(a, 4, AssistOptions.Schedule.CONSTANT, 0, 3));
                assertArrayEquals(expected, r.tokens(), engine + " " + a + " '" + p + "'");
                if (a == AssistOptions.Assistant.DRAFT) {
                    assertEquals(r.stats().numDraftTokens(), r.stats().numAcceptedTokens(), "its own draft is always accepted");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void refusesWhatTheModelCannotHold(String engine) {
        CausalLm lm = lm(engine);
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

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void batchedStepEqualsSingleForwards(String engine) {
        CausalLm lm = lm(engine);
        int[] text = tokenizer.encodePrompt("Once upon a time, there was a little girl named Lily who loved cats. ".repeat(8));
        BatchedStepChecks.check(lm, text, 1e-4);
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
