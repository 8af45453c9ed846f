package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.openvino.OpenVinoCausalLm;
import dev.tandem.engine.openvino.OpenVinoOptions;
import dev.tandem.engine.openvino.OpenVinoRuntime;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.util.List;
import java.util.Map;
import java.util.function.LongFunction;
import org.junit.jupiter.api.Test;

/**
 * AssistedSamplingDistributionTest with the target on OpenVINO: assisted sampling (a noisy draft on
 * ONNX Runtime, as the service runs its draft) draws the first four tokens from the same distribution
 * as plain sampling on OpenVINO, by the same chi-square test of homogeneity at a fixed seed.
 *
 * <p>3,000 sequences a side instead of 20,000: a call into OpenVINO costs about a millisecond here
 * (20,000 a side took 285 s), 3,000 keep the test under a minute. The smaller sample still has power:
 * the control runs the same test at the same size and must tell temperature 1.5 from 1.3 (it runs on
 * ONNX Runtime, where it is cheap; the test's power depends on the sample size, not the engine).
 */
@RequiresSharedModels
class OpenVinoSamplingDistributionTest {
    static final int N = 3_000;

    @Test
    void assistedAndPlainSamplingAgreeWithTheTargetOnOpenVino() {
        ModelDirectory dir = ModelDirectory.open(SharedModels.stories260kHf());
        long t0 = System.nanoTime();
        try (OpenVinoRuntime rt = OpenVinoPairTest.openVinoOrSkip();
             CausalLm target = OpenVinoCausalLm.open(rt, dir.graph(), dir.config().shape(), OpenVinoOptions.defaults());
             CausalLm draftBase = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.ownThreads(1));
             TextTokenizer tokenizer = TextTokenizer.load(dir)) {
            PlainDecoder plain = new PlainDecoder(target, tokenizer, List.of());
            AssistedDecoder assisted = new AssistedDecoder(target, new NoisyLm(draftBase, 8f), tokenizer, List.of());
            AssistOptions options = new AssistOptions(Assistant.DRAFT, 2, Schedule.CONSTANT, 0, 3);
            int[] prompt = tokenizer.encodePrompt("");
            LongFunction<GenerationRequest> request = seed -> new GenerationRequest(prompt,
                    new SamplingParams(1.5, 0, 0.95, 0, 1, 0, 0, seed), 4, List.of(), -1, false);

            Map<String, Integer> p = AssistedSamplingDistributionTest.counts(N, 0, seed -> plain.generate(request.apply(seed)));
            long t1 = System.nanoTime();
            int[] drafted = {0, 0};
            Map<String, Integer> a = AssistedSamplingDistributionTest.counts(N, 1_000_000, seed -> {
                GenerationResult r = assisted.generate(request.apply(seed), options);
                drafted[0] += r.stats().numDraftTokens();
                drafted[1] += r.stats().numAcceptedTokens();
                return r;
            });
            long t2 = System.nanoTime();
            System.out.printf("plain %d ms, assisted %d ms, categories %d/%d%n", (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000,
                    p.size(), a.size());
            assertTrue(drafted[1] > 0.2 * drafted[0] && drafted[1] < 0.9 * drafted[0],
                    "the draft must be both accepted and rejected: " + drafted[1] + "/" + drafted[0]);
            double[] test = AssistedSamplingDistributionTest.chiSquare(p, a);
            System.out.printf("chi2 %.1f df %.0f crit %.1f%n", test[0], test[1], test[2]);
            assertTrue(test[0] < test[2], String.format("assisted differs from plain: chi2 %.1f, df %.0f, critical %.1f",
                    test[0], test[1], test[2]));

            // control: at this sample size the test does see a real difference in distribution
            PlainDecoder plainOrt = new PlainDecoder(draftBase, tokenizer, List.of());
            Map<String, Integer> colder = AssistedSamplingDistributionTest.counts(N, 2_000_000, seed -> plainOrt.generate(
                    new GenerationRequest(prompt, new SamplingParams(1.3, 0, 0.95, 0, 1, 0, 0, seed), 4, List.of(), -1, false)));
            Map<String, Integer> hotter = AssistedSamplingDistributionTest.counts(N, 3_000_000,
                    seed -> plainOrt.generate(request.apply(seed)));
            double[] control = AssistedSamplingDistributionTest.chiSquare(hotter, colder);
            System.out.printf("control chi2 %.1f df %.0f crit %.1f%n", control[0], control[1], control[2]);
            assertTrue(control[0] > control[2], String.format("control not detected: chi2 %.1f, critical %.1f",
                    control[0], control[2]));
        }
    }
}
