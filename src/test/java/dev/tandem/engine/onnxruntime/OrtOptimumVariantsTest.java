package dev.tandem.engine.onnxruntime;

import static dev.tandem.testing.TestArrays.argmax;
import static dev.tandem.testing.TestArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.BatchedStepChecks;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Optimum export variants users bring, each a real graph run by the ONNX Runtime engine: the tiny random Llama
 * of slots-tiny (same seed and weights) exported by {@code tools/models/optimum_fixture.py} in Hugging Face
 * Optimum's layout as
 * <ul>
 *   <li>{@code optimum-tiny-nopos}: fp32 without a {@code position_ids} input; its generation_config.json lists
 *       four EOS ids (as Llama 3's does);</li>
 *   <li>{@code optimum-tiny-fp16}: fp16 weights, fp16 past/present and fp16 logits;</li>
 *   <li>{@code optimum-tiny-merged}: {@code decoder_model_merged.onnx}, an If on {@code use_cache_branch} over the
 *       with-past and the without-past graphs.</li>
 * </ul>
 * Each must reproduce the torch greedy ids of its {@code reference.json}, give several tokens in one step the
 * logits of single steps, roll back, serve assisted decoding as plain greedy, and run the batched step.
 *
 * <p>Tolerances: 1e-4 for the fp32 graphs (measured up to 1.6e-5: a step of several tokens sums in another order
 * than single steps). For the fp16 graph {@value #FP16_TOLERANCE}, about five float16 ulps of its logits (in [-16, 16]
 * here, where an ulp is up to 2^-6 = 0.0156): every value is rounded to float16 between operators, so an order of
 * summation that differs in one product moves a value by an ulp, which the layers after it carry on. Measured: 0 (ONNX
 * Runtime 1.29 on x86 has no float16 kernels for most operators and runs them in float32 between inserted Casts, so
 * the step's float32 differences, ~1e-6 relative, vanish in the rounding to float16); a CPU with native float16
 * kernels (ARM) would round inside them too.
 */
class OrtOptimumVariantsTest {
    static final Path MODELS = Path.of("src/test/resources/models");
    static final double FP32_TOLERANCE = 1e-4;
    static final double FP16_TOLERANCE = 0.08;
    static final Map<String, CausalLm> LOADED = new LinkedHashMap<>();
    static final Map<String, ModelDirectory> DIRS = new LinkedHashMap<>();
    static TextTokenizer tokenizer;

    static synchronized ModelDirectory dir(String name) {
        ModelDirectory d = DIRS.computeIfAbsent(name, n -> ModelDirectory.open(MODELS.resolve(n)));
        if (tokenizer == null) {
            tokenizer = TextTokenizer.load(d);  // every fixture has the bundled KJV tokenizer
        }
        return d;
    }

    static synchronized CausalLm lm(String name) {
        ModelDirectory d = dir(name);
        return LOADED.computeIfAbsent(name, n -> OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults()));
    }

    static double tolerance(String name) {
        return name.endsWith("fp16") ? FP16_TOLERANCE : FP32_TOLERANCE;
    }

    static JsonNode reference(String name) {
        try {
            return new ObjectMapper().readTree(MODELS.resolve(name).resolve("reference.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @AfterAll
    static void close() {
        LOADED.values().forEach(CausalLm::close);
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

    static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
        assertEquals(expected.length, actual.length, what);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(worst <= tolerance, what + ": max |diff| " + worst + " > " + tolerance);
    }

    @ParameterizedTest
    @ValueSource(strings = {"optimum-tiny-nopos", "optimum-tiny-fp16", "optimum-tiny-merged"})
    void opensTheVariant(String name) {
        OrtCausalLm lm = (OrtCausalLm) lm(name);
        assertEquals(new ModelShape(4096, 256, 2, 2, 6, name.endsWith("fp16") ? 2 : 4), lm.shape());
        assertEquals(!name.endsWith("merged"), dir(name).graph().getFileName().toString().equals("model.onnx"));
        assertEquals(name.endsWith("merged"), dir(name).graph().getFileName().toString().equals("decoder_model_merged.onnx"));
    }

    /** The prompt in one call, then one token per call: torch's greedy ids (fp32), stopping at any EOS id. */
    @ParameterizedTest
    @ValueSource(strings = {"optimum-tiny-nopos", "optimum-tiny-fp16", "optimum-tiny-merged"})
    void greedyMatchesTheTorchReference(String name) {
        CausalLm lm = lm(name);
        JsonNode ref = reference(name);
        Set<Integer> eos = new HashSet<>(dir(name).config().eosTokenIds());
        for (JsonNode p : ref.get("prompts")) {
            int[] expected = ints(p.get("greedy_ids"));
            int[] got = new int[ref.get("max_new").asInt()];
            int n = 0;
            try (KvCache cache = lm.newCache()) {
                Logits l = lm.forward(cache, ints(p.get("prompt_ids")));
                while (n < got.length) {
                    got[n] = argmax(l.row(l.rows() - 1));
                    if (eos.contains(got[n++]) || n == got.length) {
                        break;
                    }
                    l = lm.forward(cache, got[n - 1]);
                }
            }
            assertArrayEquals(expected, Arrays.copyOf(got, n), name + " '" + p.get("prompt").asText() + "'");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"optimum-tiny-nopos", "optimum-tiny-fp16", "optimum-tiny-merged"})
    void fourTokensInOneStepEqualFourSingleSteps(String name) {
        CausalLm lm = lm(name);
        int[] text = text();
        for (int past : new int[] {0, 10, 62}) {
            try (KvCache a = lm.newCache(); KvCache b = lm.newCache()) {
                if (past > 0) {
                    lm.forward(a, text, 0, past);
                    lm.forward(b, text, 0, past);
                }
                Logits four = lm.forward(a, text, past, 4);
                float[][] batched = new float[4][];
                for (int i = 0; i < 4; i++) {
                    batched[i] = four.row(i);
                }
                for (int i = 0; i < 4; i++) {
                    assertClose(batched[i], lm.forward(b, text, past + i, 1).row(0), tolerance(name),
                            name + " position " + (past + i));
                }
            }
        }
    }

    /** Rollback is a length change: the rolled-back keys must never be attended to. */
    @ParameterizedTest
    @ValueSource(strings = {"optimum-tiny-nopos", "optimum-tiny-fp16", "optimum-tiny-merged"})
    void truncatingAndRefeedingEqualsAFreshPrefill(String name) {
        CausalLm lm = lm(name);
        int[] text = text();
        int[] other = tokenizer.encode(" and the people wept");
        try (KvCache cache = lm.newCache(); KvCache fresh = lm.newCache(); KvCache third = lm.newCache()) {
            lm.forward(cache, text, 0, 5);
            for (int i = 5; i < 150; i++) {  // past the first capacity steps of 64 and 128
                lm.forward(cache, text, i, 1);
            }
            cache.truncate(70);
            float[] resumed = lm.forward(cache, other).row(other.length - 1);
            int[] expected = Arrays.copyOf(text, 70 + other.length);
            System.arraycopy(other, 0, expected, 70, other.length);
            assertClose(lm.forward(fresh, expected).row(expected.length - 1), resumed, tolerance(name), name + " after rollback");
            cache.truncate(0);
            assertClose(lm.forward(third, text, 0, 73).row(72), lm.forward(cache, text, 0, 73).row(72), tolerance(name),
                    name + " after truncating to empty");
        }
    }

    /**
     * Assisted greedy decoding gives plain greedy's tokens with the variant as the target, drafted by itself and by
     * slots-tiny (the same weights in int8 and the slots layout: a cross-layout pair), and as the draft of slots-tiny.
     */
    @ParameterizedTest
    @ValueSource(strings = {"optimum-tiny-nopos", "optimum-tiny-fp16", "optimum-tiny-merged"})
    void assistedGreedyEqualsPlainGreedy(String name) {
        CausalLm variant = lm(name);
        CausalLm slots = lm("slots-tiny");
        List<Integer> eos = dir(name).config().eosTokenIds();
        for (CausalLm[] pair : List.of(new CausalLm[] {variant, variant}, new CausalLm[] {variant, slots},
                new CausalLm[] {slots, variant})) {
            PlainDecoder plain = new PlainDecoder(pair[0], tokenizer, eos);
            AssistedDecoder assisted = new AssistedDecoder(pair[0], pair[1], tokenizer, eos);
            String which = name + (pair[0] == slots ? " drafting for slots-tiny" : pair[1] == slots ? " drafted by slots-tiny" : " drafting for itself");
            for (String p : List.of("", "And he said unto them,", "In the beginning God created")) {
                GenerationRequest req = new GenerationRequest(tokenizer.encodePrompt(p), SamplingParams.greedy(), 60,
                        List.of(), -1, false);
                int[] expected = plain.generate(req).tokens();
                for (AssistOptions.Assistant a : AssistOptions.Assistant.values()) {
                    GenerationResult r = assisted.generate(req, new AssistOptions(a, 4, AssistOptions.Schedule.CONSTANT, 0, 3));
                    assertArrayEquals(expected, r.tokens(), which + " " + a + " '" + p + "'");
                }
            }
        }
    }

    /** An Optimum graph's batched step is concurrent single forwards: each row bit for bit its single forward. */
    @ParameterizedTest
    @ValueSource(strings = {"optimum-tiny-nopos", "optimum-tiny-fp16", "optimum-tiny-merged"})
    void batchedStepEqualsSingleForwards(String name) {
        BatchedStepChecks.check(lm(name), text(), 0);
    }

    /**
     * generation_config.json's list of EOS ids (Llama 3 style; config.json has the single id 2): generation stops at
     * each of them, plain and assisted. The fixture's extra ids were picked so that three of the reference prompts
     * stop at a different one and the fourth runs to the token limit.
     */
    @Test
    void generationStopsAtEachOfSeveralEosIds() {
        String name = "optimum-tiny-nopos";
        List<Integer> eos = dir(name).config().eosTokenIds();
        JsonNode ref = reference(name);
        assertEquals(List.of(2, 3447, 2691, 3941), eos, "generation_config.json's eos_token_id list, in order");
        assertArrayEquals(ints(ref.get("eos_token_ids")), eos.stream().mapToInt(Integer::intValue).toArray());
        PlainDecoder plain = new PlainDecoder(lm(name), tokenizer, eos);
        AssistedDecoder assisted = new AssistedDecoder(lm(name), lm("slots-tiny"), tokenizer, eos);
        Set<Integer> stoppedAt = new HashSet<>();
        int ranToTheLimit = 0;
        for (JsonNode p : ref.get("prompts")) {
            int[] expected = ints(p.get("greedy_ids"));
            int max = ref.get("max_new").asInt();
            GenerationRequest req = new GenerationRequest(ints(p.get("prompt_ids")), SamplingParams.greedy(), max, List.of(),
                    -1, false);
            GenerationResult r = plain.generate(req);
            GenerationResult a = assisted.generate(req, new AssistOptions(AssistOptions.Assistant.DRAFT, 4,
                    AssistOptions.Schedule.CONSTANT, 0, 3));
            assertArrayEquals(expected, r.tokens(), "plain '" + p.get("prompt").asText() + "'");
            assertArrayEquals(expected, a.tokens(), "assisted '" + p.get("prompt").asText() + "'");
            int last = expected[expected.length - 1];
            if (eos.contains(last)) {
                assertEquals(FinishReason.STOP, r.finishReason());
                assertEquals(FinishReason.STOP, a.finishReason());
                stoppedAt.add(last);
            } else {
                assertEquals(max, expected.length);
                assertEquals(FinishReason.LENGTH, r.finishReason());
                ranToTheLimit++;
            }
        }
        assertEquals(Set.of(3447, 2691, 3941), stoppedAt, "every extra EOS id ends one of the reference prompts");
        assertEquals(1, ranToTheLimit);
    }
}
