package dev.tandem.tools;

import static dev.tandem.tools.BenchStats.median;
import static dev.tandem.tools.BenchStats.summary;
import static dev.tandem.tools.BenchStats.argmax;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Per-token latency of plain greedy decoding through the ONNX Runtime engine, the time each step
 * spends outside {@code session.run}, and, side by side in the same process, the textbook loop
 * that lets ONNX Runtime allocate its outputs and copies every {@code present.*} back into a Java
 * buffer for the next step.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
 *      --enable-native-access=ALL-UNNAMED dev.tandem.tools.DecodeBenchmark MODEL_DIR [threads=2] [steps=256] [runs=5]
 * </pre>
 *
 * Each run prefills BOS and decodes {@code steps} tokens greedily (EOS ignored; stops at the
 * context). Runs alternate between the engine and the copying loop; a warm-up run of each comes
 * first and is not counted. Reported: median, p10 and p90 over all timed steps.
 */
public final class DecodeBenchmark {
    private DecodeBenchmark() {
    }

    public static void main(String[] args) throws OrtException {
        Path dir = Path.of(args[0]);
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        int runs = args.length > 3 ? Integer.parseInt(args[3]) : 5;

        ModelDirectory model = ModelDirectory.open(dir);
        OnnxRuntimeOptions options = new OnnxRuntimeOptions(threads, true, false, "all");
        try (OrtCausalLm lm = OrtCausalLm.open(model.graph(), model.config().shape(), options);
             TextTokenizer tokenizer = TextTokenizer.load(model);
             OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.disablePerSessionThreads();  // the same global pool as the engine's session
            try (OrtSession naive = OrtEnvironment.getEnvironment().createSession(model.graph().toString(), so)) {
                int[] prompt = tokenizer.encodePrompt("");
                int max = Math.min(steps, lm.shape().maxContext() - prompt.length);
                double[] engine = new double[max * runs];
                double[] outside = new double[max * runs];
                double[] copying = new double[max * runs];
                for (int run = 0; run <= runs; run++) {
                    int at = (run - 1) * max;
                    engineRun(lm, prompt, max, run == 0 ? null : engine, run == 0 ? null : outside, at);
                    copyingRun(naive, lm.shape(), prompt, max, run == 0 ? null : copying, at);
                }
                System.out.printf(Locale.ROOT, "model=%s threads=%d steps=%d runs=%d%n", model.name(), threads, max, runs);
                System.out.println("  engine (zero-copy KV): " + summary(engine)
                        + String.format(Locale.ROOT, " | outside session.run: median %.1f us", median(outside) * 1000));
                System.out.println("  copying loop:          " + summary(copying)
                        + String.format(Locale.ROOT, " | engine speed-up x%.2f", median(copying) / median(engine)));
            }
        }
    }

    private static void engineRun(OrtCausalLm lm, int[] prompt, int steps, double[] ms, double[] outsideMs, int at) {
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, prompt);
            float[] row = new float[lm.shape().vocabSize()];
            int[] one = new int[1];
            for (int s = 0; s < steps; s++) {
                long[] before = lm.timings();
                long t0 = System.nanoTime();
                logits.copyRow(logits.rows() - 1, row);
                one[0] = argmax(row);
                logits = lm.forward(cache, one);
                long t1 = System.nanoTime();
                long[] after = lm.timings();
                if (ms != null) {
                    ms[at + s] = (t1 - t0) / 1e6;
                    outsideMs[at + s] = ((after[1] - before[1]) - (after[0] - before[0])) / 1e6;
                }
            }
        }
    }

    /** The textbook loop: ORT allocates outputs; presents are copied out and wrapped as the next past. */
    private static void copyingRun(OrtSession session, ModelShape shape, int[] prompt, int steps, double[] ms, int at)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        boolean hasPos = session.getInputNames().contains("position_ids");
        int layers = shape.layers();
        FloatBuffer[] past = new FloatBuffer[2 * layers];
        Arrays.fill(past, FloatBuffer.allocate(0));
        int len = 0;
        int[] feed = prompt;
        for (int s = 0; s <= steps; s++) {
            long t0 = System.nanoTime();
            Map<String, OnnxTensor> in = new HashMap<>();
            long[][] tok = new long[1][feed.length];
            long[][] pos = new long[1][feed.length];
            long[][] mask = new long[1][len + feed.length];
            for (int i = 0; i < feed.length; i++) {
                tok[0][i] = feed[i];
                pos[0][i] = len + i;
            }
            Arrays.fill(mask[0], 1L);
            in.put("input_ids", OnnxTensor.createTensor(env, tok));
            in.put("attention_mask", OnnxTensor.createTensor(env, mask));
            if (hasPos) {
                in.put("position_ids", OnnxTensor.createTensor(env, pos));
            }
            long[] ps = {1, shape.kvHeads(), len, shape.headDim()};
            for (int l = 0; l < layers; l++) {
                in.put("past_key_values." + l + ".key", OnnxTensor.createTensor(env, past[2 * l], ps));
                in.put("past_key_values." + l + ".value", OnnxTensor.createTensor(env, past[2 * l + 1], ps));
            }
            int next;
            try (OrtSession.Result r = session.run(in)) {
                float[][][] logits = (float[][][]) r.get("logits").get().getValue();
                next = argmax(logits[0][feed.length - 1]);
                for (int l = 0; l < layers; l++) {
                    past[2 * l] = ((OnnxTensor) r.get("present." + l + ".key").get()).getFloatBuffer();
                    past[2 * l + 1] = ((OnnxTensor) r.get("present." + l + ".value").get()).getFloatBuffer();
                }
            }
            in.values().forEach(OnnxValue::close);
            long t1 = System.nanoTime();
            if (ms != null && s > 0) {  // step 0 is the prefill
                ms[at + s - 1] = (t1 - t0) / 1e6;
            }
            len += feed.length;
            feed = new int[] {next};
        }
    }
}
