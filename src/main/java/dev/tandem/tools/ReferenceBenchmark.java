package dev.tandem.tools;

import static dev.tandem.tools.BenchStats.median;
import static dev.tandem.tools.BenchStats.summary;
import static dev.tandem.tools.BenchStats.argmax;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Per-token latency of plain greedy decoding on the reference engine (plain Java) and on ONNX
 * Runtime, side by side in one process, on the same graph.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
 *      --enable-native-access=ALL-UNNAMED dev.tandem.tools.ReferenceBenchmark MODEL_DIR [graph=model.onnx] \
 *      [threads=2] [steps=128] [runs=5]
 * </pre>
 *
 * {@code graph} is a file in MODEL_DIR (e.g. {@code model_fp32.onnx}); {@code threads} is ONNX
 * Runtime's intra-op pool and the reference engine's fork-join parallelism (the calling thread plus
 * {@code threads - 1} workers). Each run prefills BOS and decodes {@code steps} tokens greedily (EOS
 * ignored; stops at the context); runs alternate between the engines, after one untimed warm-up run
 * of each. Reported per engine: median, p10 and p90 of every timed step, and the median prefill of
 * a 32-token prompt.
 */
public final class ReferenceBenchmark {
    private ReferenceBenchmark() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        String graphName = args.length > 1 ? args[1] : "model.onnx";
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 128;
        int runs = args.length > 4 ? Integer.parseInt(args[4]) : 5;
        // before the common pool exists: the calling thread works too, so threads - 1 workers
        System.setProperty("java.util.concurrent.ForkJoinPool.common.parallelism", Integer.toString(threads - 1));

        ModelDirectory model = ModelDirectory.open(dir);
        Path graph = model.dir().resolve(graphName);
        try (CausalLm ort = OrtCausalLm.open(graph, model.config().shape(),
                     BenchEngines.ortOptions(threads));
             CausalLm ref = ReferenceCausalLm.openOnnx(graph, model.dir().resolve("config.json"))) {
            int max = Math.min(steps, ort.shape().maxContext() - 1);
            CausalLm[] engines = {ref, ort};
            String[] names = {"reference", "onnxruntime"};
            double[][] stepMs = new double[2][max * runs];
            double[][] prefillMs = new double[2][runs];
            int[] prompt = new int[32];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 1 + (i * 37) % (ort.shape().vocabSize() - 1);  // a fixed mix of ids
            }
            for (int run = 0; run <= runs; run++) {
                for (int e = 0; e < 2; e++) {
                    decode(engines[e], max, run == 0 ? null : stepMs[e], (run - 1) * max);
                    long t0 = System.nanoTime();
                    try (KvCache cache = engines[e].newCache()) {
                        engines[e].forward(cache, prompt);
                    }
                    if (run > 0) {
                        prefillMs[e][run - 1] = (System.nanoTime() - t0) / 1e6;
                    }
                }
            }
            System.out.printf(Locale.ROOT, "model=%s graph=%s threads=%d steps=%d runs=%d%n", model.name(), graphName,
                    threads, max, runs);
            for (int e = 0; e < 2; e++) {
                System.out.printf(Locale.ROOT, "  %-12s %s | prefill of 32 tokens: median %.1f ms%n", names[e],
                        summary(stepMs[e]), median(prefillMs[e]));
            }
            System.out.printf(Locale.ROOT, "  reference / onnxruntime per decode step: x%.2f%n",
                    median(stepMs[0]) / median(stepMs[1]));
        }
    }

    private static void decode(CausalLm lm, int steps, double[] ms, int at) {
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, 1);
            float[] row = new float[lm.shape().vocabSize()];
            int[] one = new int[1];
            for (int s = 0; s < steps; s++) {
                long t0 = System.nanoTime();
                logits.copyRow(logits.rows() - 1, row);
                one[0] = argmax(row);
                logits = lm.forward(cache, one);
                if (ms != null) {
                    ms[at + s] = (System.nanoTime() - t0) / 1e6;
                }
            }
        }
    }
}
