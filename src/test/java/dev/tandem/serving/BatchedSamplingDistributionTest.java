package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.BatchStep;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.NoisyLm;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.ChiSquare;
import dev.tandem.testing.FakeLm;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Sampling stays exact under continuous batching: sampled sequences stepped by the scheduler amid others (24 in flight,
 * joining and leaving every step: plain and draft-assisted sampled ones, greedy prompt-lookup ones of another length)
 * draw their first tokens from the distribution that plain sampling alone draws from (chi-square test of homogeneity,
 * 12,000 sequences a sample, fixed seeds), for plain and for assisted sequences; the prompt chunks go in paced by time.
 * A control shows the test tells temperature 1.0 from 1.2 at this size. Over the fake model (plain Java, a known
 * distribution of 6 likely tokens per position), so it runs in seconds.
 */
class BatchedSamplingDistributionTest {
    static final int N = 12_000;
    static final int TOKENS = 4;
    static final int IN_FLIGHT = 24;

    @Test
    void sampledSequencesInABatchDrawFromTheDistributionOfSamplingAlone() throws Exception {
        FakeLm target = FakeLm.target(4096, 256);
        // a draft that reweighs the target's likely tokens (logits 0..4, plus noise of +-1.5), so that candidates are
        // kept with probabilities strictly between 0 and 1 and a wrong acceptance rule shows in the distribution
        CausalLm draft = new NoisyLm(target, 3f);
        try (TextTokenizer tokenizer = TextTokenizer.load(ModelDirectory.open(Path.of("models/kjv-target")))) {
            AssistedDecoder decoding = new AssistedDecoder(target, draft, tokenizer, List.of(2));
            int[] prompt = {1, 40, 41, 42, 43};
            DecodingMode assisted = DecodingMode.assisted(new AssistOptions(Assistant.DRAFT, 2, Schedule.CONSTANT, 0, 3));
            DecodingMode lookup = DecodingMode.assisted(new AssistOptions(Assistant.PROMPT_LOOKUP, 3, Schedule.CONSTANT, 0, 3));

            Map<String, Integer> alone = new ConcurrentHashMap<>();
            for (int i = 0; i < N; i++) {
                count(alone, decoding.generate(sampled(prompt, 1.0, i), DecodingMode.PLAIN));
            }
            Map<String, Integer> plainBatched = new ConcurrentHashMap<>();
            Map<String, Integer> assistedBatched = new ConcurrentHashMap<>();
            Map<String, Integer> hotterBatched = new ConcurrentHashMap<>();
            AtomicInteger drafted = new AtomicInteger();
            AtomicInteger accepted = new AtomicInteger();
            AtomicInteger widest = new AtomicInteger();
            try (Scheduler s = new Scheduler("test", new BatchStep(target), 64, new PrefillPace(1), SpeculationPolicy.FIXED,
                    st -> widest.accumulateAndGet(st.sequences(), Math::max), () -> { })) {
                Semaphore slots = new Semaphore(IN_FLIGHT);
                int total = 5 * N / 2;
                for (int i = 0; i < total; i++) {
                    slots.acquire();
                    int kind = i % 10;  // 4 plain (N in all) : 4 assisted (N) : 1 hotter, the control : 1 greedy lookup
                    GenerationRequest req;
                    DecodingMode mode;
                    Map<String, Integer> into;
                    if (kind < 4) {
                        req = sampled(prompt, 1.0, 1_000_000 + i);
                        mode = DecodingMode.PLAIN;
                        into = plainBatched;
                    } else if (kind < 8) {
                        req = sampled(prompt, 1.0, 2_000_000 + i);
                        mode = assisted;
                        into = assistedBatched;
                    } else if (kind == 8) {
                        req = sampled(prompt, 1.2, 3_000_000 + i);
                        mode = DecodingMode.PLAIN;
                        into = hotterBatched;
                    } else {
                        int[] p = new int[5 + i % 40];
                        for (int t = 0; t < p.length; t++) {
                            p[t] = 3 + (i * 31 + t * 17) % 4000;
                        }
                        req = new GenerationRequest(p, SamplingParams.greedy(), 4 + i % 13, List.of(), -1, false, true);
                        mode = lookup;
                        into = null;
                    }
                    Scheduler.Entry e = s.submit(decoding.newSequence(req, mode, GenerationListener.NONE));
                    e.done.whenComplete((r, failure) -> {
                        if (r != null && into != null) {
                            count(into, r);
                            if (into == assistedBatched) {
                                drafted.addAndGet(r.stats().numDraftTokens());
                                accepted.addAndGet(r.stats().numAcceptedTokens());
                            }
                        }
                        slots.release();
                    });
                }
                assertTrue(slots.tryAcquire(IN_FLIGHT, 60, TimeUnit.SECONDS), "every sequence ended");
            }
            assertTrue(widest.get() >= IN_FLIGHT / 2, "steps were batched: widest " + widest.get());
            assertTrue(accepted.get() > 0.2 * drafted.get() && accepted.get() < 0.9 * drafted.get(),
                    "the draft must be both accepted and rejected: " + accepted + "/" + drafted);
            for (Map.Entry<String, Map<String, Integer>> m : Map.of("plain", plainBatched, "assisted", assistedBatched)
                    .entrySet()) {
                double[] t = ChiSquare.homogeneity(alone, m.getValue());
                assertTrue(t[0] < t[2], String.format("%s sampling in a batch differs from plain sampling alone: chi2 %.1f,"
                        + " df %.0f, critical %.1f", m.getKey(), t[0], t[1], t[2]));
            }
            double[] control = ChiSquare.homogeneity(alone, hotterBatched);
            double[] tp = ChiSquare.homogeneity(alone, plainBatched);
            double[] ta = ChiSquare.homogeneity(alone, assistedBatched);
            System.out.printf("batched sampling: widest step %d sequences; draft accepted %d of %d; chi2 / critical: plain"
                            + " %.1f / %.1f, assisted %.1f / %.1f, control %.1f / %.1f%n", widest.get(), accepted.get(),
                    drafted.get(), tp[0], tp[2], ta[0], ta[2], control[0], control[2]);
            assertTrue(control[0] > control[2], String.format("control (temperature 1.2 in the batch) not detected: chi2 %.1f,"
                    + " critical %.1f", control[0], control[2]));
        }
    }

    static GenerationRequest sampled(int[] prompt, double temperature, long seed) {
        return new GenerationRequest(prompt, new SamplingParams(temperature, 0, 1, 0, 1, 0, 0, seed), TOKENS, List.of(), -1,
                false, true);
    }

    static void count(Map<String, Integer> into, GenerationResult r) {
        into.merge(Arrays.toString(r.tokens()), 1, Integer::sum);
    }
}
