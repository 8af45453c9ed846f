package dev.tandem.tools;

import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * Per-token latency of plain greedy decoding through the ONNX Runtime engine, and the time each
 * step spends outside {@code session.run}.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*' --enable-native-access=ALL-UNNAMED \
 *      dev.tandem.tools.DecodeBenchmark MODEL_DIR [threads=2] [steps=256] [runs=5] [prompt=""]
 * </pre>
 *
 * Each run prefills the prompt and decodes {@code steps} tokens greedily (EOS ignored; stops at the
 * context). Reported: median, p10 and p90 of all timed steps (the first run is warm-up and not
 * counted), and the median per-step time outside {@code session.run}.
 */
public final class DecodeBenchmark {
    private DecodeBenchmark() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        int runs = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        String prompt = args.length > 4 ? args[4] : "";

        ModelDirectory model = ModelDirectory.open(dir);
        OnnxRuntimeOptions options = new OnnxRuntimeOptions(threads, true, false, "all");
        try (OrtCausalLm lm = OrtCausalLm.open(model.graph(), model.config().shape(), options);
             TextTokenizer tokenizer = TextTokenizer.load(model)) {
            int[] ids = tokenizer.encodePrompt(prompt);
            int max = Math.min(steps, lm.shape().maxContext() - ids.length);
            double[] stepMs = new double[max * runs];
            double[] outsideUs = new double[max * runs];
            int n = 0;
            for (int run = 0; run <= runs; run++) {
                try (KvCache cache = lm.newCache()) {
                    Logits logits = lm.forward(cache, ids);
                    float[] row = new float[lm.shape().vocabSize()];
                    int[] one = new int[1];
                    for (int s = 0; s < max; s++) {
                        logits.copyRow(logits.rows() - 1, row);
                        one[0] = argmax(row);
                        long[] before = lm.timings();
                        long t0 = System.nanoTime();
                        logits = lm.forward(cache, one);
                        long t1 = System.nanoTime();
                        long[] after = lm.timings();
                        if (run > 0) {  // run 0 warms up
                            stepMs[n] = (t1 - t0) / 1e6;
                            outsideUs[n] = ((after[1] - before[1]) - (after[0] - before[0])) / 1e3;
                            n++;
                        }
                    }
                }
            }
            double[] ms = Arrays.copyOf(stepMs, n);
            double[] us = Arrays.copyOf(outsideUs, n);
            Arrays.sort(ms);
            Arrays.sort(us);
            System.out.printf(Locale.ROOT,
                    "model=%s threads=%d prompt_tokens=%d steps=%d runs=%d | step ms: median %.3f p10 %.3f p90 %.3f"
                            + " | tokens/s %.1f | outside session.run: median %.1f us (%.1f%% of the step)%n",
                    model.name(), threads, ids.length, max, runs, ms[n / 2], ms[n / 10], ms[n * 9 / 10],
                    1000 / ms[n / 2], us[n / 2], 100 * us[n / 2] / 1000 / ms[n / 2]);
        }
    }

    private static int argmax(float[] row) {
        int b = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[b]) {
                b = i;
            }
        }
        return b;
    }
}
