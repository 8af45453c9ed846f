package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.BatchStep;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.InvariantGraphs;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Batch invariance on the pair the service ships: a greedy request gets the same tokens alone and amid
 * concurrent load of mixed plain, assisted (draft and prompt lookup) and sampled requests, decoded by
 * the scheduler with the load-aware policy (so k changes with the load); and greedy assisted still
 * equals greedy plain. A seeded sampled request is reproduced too. On both graphs of the bundled directories (the
 * portable model.onnx, and model_optimized.onnx, which ONNX Runtime serves).
 */
class BundledPairBatchInvarianceTest {
    static final String[] PROMPTS = {
        "Now it came to pass in the days when the judges ruled, that there", "And they said unto",
        "All things are full of labour; man", "And I gave my heart to know", "Better is an handful with",
        "Hear this, ye old men, and give ear,", "Rejoice in the Lord alway:", "I can do all things through Christ",
        "My little children, these things write I unto you,", "Beloved, let us love one another: for love is of God;",
    };
    static CausalLm target;
    static OrtCausalLm draft;
    static TextTokenizer tokenizer;
    static AssistedDecoder decoding;
    static List<Integer> eos;

    static void load(String graph) {
        ModelDirectory td = ModelDirectory.open(Path.of("models/kjv-target"), List.of(), Optional.of(graph));
        ModelDirectory dd = ModelDirectory.open(Path.of("models/kjv-draft"), List.of(), Optional.of(graph));
        target = null;
        draft = null;
        tokenizer = null;
        // as the service serves it (padded where that makes it step-invariant), or the test is skipped
        target = InvariantGraphs.served(OrtCausalLm.open(td.graph(), td.config().shape(), OnnxRuntimeOptions.defaults()), graph);
        draft = OrtCausalLm.open(dd.graph(), dd.config().shape(), OnnxRuntimeOptions.ownThreads(1));
        tokenizer = TextTokenizer.load(td);
        eos = td.config().eosTokenIds();
        decoding = new AssistedDecoder(target, draft, tokenizer, eos);
    }

    @AfterEach
    void close() {
        for (AutoCloseable c : new AutoCloseable[] {target, draft, tokenizer}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    static GenerationRequest greedy(String prompt) {
        return new GenerationRequest(tokenizer.encodePrompt(prompt), SamplingParams.greedy(), 48, List.of(), -1, false, true);
    }

    static GenerationRequest sampled(String prompt, long seed) {
        return new GenerationRequest(tokenizer.encodePrompt(prompt), new SamplingParams(0.8, 0, 0.95, 0, 1.0, 0, 0, seed),
                40, List.of(), -1, false, true);
    }

    @ParameterizedTest
    @ValueSource(strings = {"model.onnx", "model_optimized.onnx"})
    void greedyTokensAreTheSameAloneAndAmidMixedLoad(String graph) throws Exception {
        load(graph);
        DecodingMode draftK = DecodingMode.assisted(new AssistOptions(Assistant.DRAFT, 5, Schedule.HEURISTIC, 0, 3));
        DecodingMode lookup = DecodingMode.assisted(new AssistOptions(Assistant.PROMPT_LOOKUP, 4, Schedule.CONSTANT, 0, 3));
        List<int[]> alone = new ArrayList<>();
        for (String p : PROMPTS) {
            alone.add(decoding.generate(greedy(p), DecodingMode.PLAIN).tokens());
        }
        GenerationResult sampledAlone = decoding.generate(sampled(PROMPTS[0], 42), draftK);

        StepCostModel cost = new StepCostModel();
        AtomicInteger widest = new AtomicInteger();
        try (Scheduler s = new Scheduler("kjv-target", new BatchStep(target), 64, new PrefillPace(1), new AutoSpeculation(cost),
                st -> widest.accumulateAndGet(st.sequences(), Math::max), () -> StepProfile.run(target, draft, cost))) {
            List<Scheduler.Entry> plain = new ArrayList<>();
            List<Scheduler.Entry> assisted = new ArrayList<>();
            List<Scheduler.Entry> noise = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                plain.add(s.submit(decoding.newSequence(greedy(PROMPTS[i]), DecodingMode.PLAIN, GenerationListener.NONE)));
                assisted.add(s.submit(decoding.newSequence(greedy(PROMPTS[i]), i % 3 == 2 ? lookup : draftK,
                        GenerationListener.NONE)));
                noise.add(s.submit(decoding.newSequence(sampled(PROMPTS[(i + 3) % PROMPTS.length], i), i % 2 == 0 ? DecodingMode.PLAIN : draftK,
                        GenerationListener.NONE)));
            }
            Scheduler.Entry seeded = s.submit(decoding.newSequence(sampled(PROMPTS[0], 42), draftK, GenerationListener.NONE));
            for (int i = 0; i < PROMPTS.length; i++) {
                assertArrayEquals(alone.get(i), plain.get(i).done.get(120, TimeUnit.SECONDS).tokens(), "plain, prompt " + i);
                GenerationResult a = assisted.get(i).done.get(120, TimeUnit.SECONDS);
                assertArrayEquals(alone.get(i), a.tokens(), "assisted, prompt " + i);
                assertEquals(a.stats().numDecodeSteps() > 0, true);
            }
            for (Scheduler.Entry e : noise) {
                e.done.get(120, TimeUnit.SECONDS);
            }
            assertArrayEquals(sampledAlone.tokens(), seeded.done.get(120, TimeUnit.SECONDS).tokens(),
                    "a seeded sampled assisted request");
        }
        assertTrue(widest.get() >= 10, "steps carried many sequences: widest " + widest.get());
    }
}
