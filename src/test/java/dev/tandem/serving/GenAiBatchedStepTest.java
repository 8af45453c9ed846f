package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.BatchStep;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The ONNX Runtime GenAI layout (GroupQueryAttention, MatMulNBits; the fixtures of GenAiLayoutTest) in the scheduler's
 * batched steps: plain, seeded sampled and assisted requests decoded together, the int8 fixture as target and the int4
 * one as its draft. Its caches are per sequence (not a slot pool), so a step feeds every sequence its own block; a plain
 * request's tokens (fed one at a time, as alone) must be exactly what it gets alone, and every request must finish.
 * Assisted greedy is compared alone only: this layout is not step-invariant to the bit (GenAiLayoutTest, within 2e-4),
 * so the draft lengths the load brings may part greedy text at a near tie.
 */
class GenAiBatchedStepTest {
    static final String[] PROMPTS = {"And it came to pass", "In the beginning", "And the LORD said unto Moses,",
        "Blessed are the", "Now the serpent was", "And God said, Let there be"};

    @Test
    void plainSampledAndAssistedRequestsShareTheStepsOnTheGenAiLayout() throws Exception {
        ModelDirectory td = ModelDirectory.open(Path.of("src/test/resources/models/genai-tiny-int8"));
        ModelDirectory dd = ModelDirectory.open(Path.of("src/test/resources/models/genai-tiny-int4"));
        try (OrtCausalLm target = OrtCausalLm.open(td.graph(), td.config().shape(), OnnxRuntimeOptions.defaults());
             OrtCausalLm draft = OrtCausalLm.open(dd.graph(), dd.config().shape(), OnnxRuntimeOptions.ownThreads(1));
             TextTokenizer tokenizer = TextTokenizer.load(td)) {
            AssistedDecoder decoding = new AssistedDecoder(target, draft, tokenizer, td.config().eosTokenIds());
            DecodingMode assistedK3 = DecodingMode.assisted(new AssistOptions(Assistant.DRAFT, 3, Schedule.CONSTANT, 0, 3));
            List<GenerationRequest> greedy = new ArrayList<>();
            List<GenerationRequest> sampled = new ArrayList<>();
            List<int[]> greedyAlone = new ArrayList<>();
            List<int[]> sampledAlone = new ArrayList<>();
            List<int[]> assistedAlone = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                int[] prompt = tokenizer.encodePrompt(PROMPTS[i]);
                greedy.add(new GenerationRequest(prompt, SamplingParams.greedy(), 30, List.of(), -1, false, true));
                sampled.add(new GenerationRequest(prompt, new SamplingParams(0.9, 0, 0.95, 0, 1.0, 0, 0, 100L + i), 30,
                        List.of(), -1, false, true));
                greedyAlone.add(decoding.generate(greedy.get(i), DecodingMode.PLAIN).tokens());
                sampledAlone.add(decoding.generate(sampled.get(i), DecodingMode.PLAIN).tokens());
                assistedAlone.add(decoding.generate(greedy.get(i), assistedK3).tokens());
                assertArrayEquals(greedyAlone.get(i), assistedAlone.get(i), "alone, assisted greedy = plain greedy: " + PROMPTS[i]);
            }

            AtomicInteger widest = new AtomicInteger();
            try (Scheduler s = new Scheduler("genai", new BatchStep(target), 16, SpeculationPolicy.FIXED,
                    st -> widest.accumulateAndGet(st.sequences(), Math::max))) {
                List<Scheduler.Entry> plain = new ArrayList<>();
                List<Scheduler.Entry> seeded = new ArrayList<>();
                List<Scheduler.Entry> assisted = new ArrayList<>();
                for (int i = 0; i < PROMPTS.length; i++) {
                    plain.add(s.submit(decoding.newSequence(greedy.get(i), DecodingMode.PLAIN, GenerationListener.NONE)));
                    seeded.add(s.submit(decoding.newSequence(sampled.get(i), DecodingMode.PLAIN, GenerationListener.NONE)));
                    assisted.add(s.submit(decoding.newSequence(greedy.get(i), assistedK3, GenerationListener.NONE)));
                }
                for (int i = 0; i < PROMPTS.length; i++) {
                    assertArrayEquals(greedyAlone.get(i), plain.get(i).done.get(60, TimeUnit.SECONDS).tokens(), "plain " + i);
                    assertArrayEquals(sampledAlone.get(i), seeded.get(i).done.get(60, TimeUnit.SECONDS).tokens(), "seeded " + i);
                    GenerationResult a = assisted.get(i).done.get(60, TimeUnit.SECONDS);
                    assertTrue(a.stats().assisted() && a.stats().numDraftTokens() > 0, "assisted " + i + " drafted");
                    assertEquals(30, a.completionTokens(), "assisted " + i + " ran to max_tokens (EOS ignored)");
                }
            }
            assertTrue(widest.get() >= 6, "steps carried many sequences: widest " + widest.get());
        }
    }
}
