package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongFunction;
import org.junit.jupiter.api.Test;

/**
 * End to end, assisted sampling draws from the same distribution as plain sampling: the first
 * four tokens (the first from the prefill, the next three from a round of speculation with two
 * candidates from a draft that disagrees often) over 20,000 sequences each, compared with a chi-square test of
 * homogeneity at a fixed seed. A control shows the test can tell temperature 1.5 from 1.3.
 */
@RequiresSharedModels
class AssistedSamplingDistributionTest {
    static final int N = 20_000;

    @Test
    void assistedAndPlainSamplingAgree() {
        ModelDirectory dir = ModelDirectory.open(SharedModels.stories260kHf());
        try (CausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
             TextTokenizer tokenizer = TextTokenizer.load(dir)) {
            PlainDecoder plain = new PlainDecoder(lm, tokenizer, List.of());
            AssistedDecoder assisted = new AssistedDecoder(lm, new NoisyLm(lm, 8f), tokenizer, List.of());
            AssistOptions options = new AssistOptions(Assistant.DRAFT, 2, Schedule.CONSTANT, 0, 3);
            int[] prompt = tokenizer.encodePrompt("");
            LongFunction<GenerationRequest> request = seed -> new GenerationRequest(prompt,
                    new SamplingParams(1.5, 0, 0.95, 0, 1, 0, 0, seed), 4, List.of(), -1, false);

            Map<String, Integer> p = counts(N, 0, seed -> plain.generate(request.apply(seed)));
            int[] drafted = {0, 0};
            Map<String, Integer> a = counts(N, 1_000_000, seed -> {
                GenerationResult r = assisted.generate(request.apply(seed), options);
                drafted[0] += r.stats().numDraftTokens();
                drafted[1] += r.stats().numAcceptedTokens();
                return r;
            });
            assertTrue(drafted[1] > 0.2 * drafted[0] && drafted[1] < 0.9 * drafted[0],
                    "the draft must be both accepted and rejected: " + drafted[1] + "/" + drafted[0]);
            double[] test = chiSquare(p, a);
            assertTrue(test[0] < test[2], String.format("assisted differs from plain: chi2 %.1f, df %.0f, critical %.1f",
                    test[0], test[1], test[2]));

            // control: the same test does see a real difference in distribution
            Map<String, Integer> colder = counts(N / 4, 2_000_000, seed -> plain.generate(new GenerationRequest(prompt,
                    new SamplingParams(1.3, 0, 0.95, 0, 1, 0, 0, seed), 4, List.of(), -1, false)));
            Map<String, Integer> hotter = counts(N / 4, 3_000_000, seed -> plain.generate(request.apply(seed)));
            double[] control = chiSquare(hotter, colder);
            assertTrue(control[0] > control[2], String.format("control not detected: chi2 %.1f, critical %.1f",
                    control[0], control[2]));
        }
    }

    interface Sampling {
        GenerationResult run(long seed);
    }

    static Map<String, Integer> counts(int n, long firstSeed, Sampling s) {
        Map<String, Integer> c = new HashMap<>();
        for (int i = 0; i < n; i++) {
            int[] t = s.run(firstSeed + i).tokens();
            c.merge(java.util.Arrays.toString(t), 1, Integer::sum);
        }
        return c;
    }

    /** {@link dev.tandem.testing.ChiSquare#homogeneity}. */
    static double[] chiSquare(Map<String, Integer> x, Map<String, Integer> y) {
        return dev.tandem.testing.ChiSquare.homogeneity(x, y);
    }
}
