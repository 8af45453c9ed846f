package dev.tandem.tools;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Per-token latency of plain greedy decoding through the ONNX Runtime engine, and the time each
 * step spends outside {@code session.run}.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*' --enable-native-access=ALL-UNNAMED \
 *      dev.tandem.tools.DecodeBenchmark MODEL_DIR [threads=2] [steps=256] [runs=5] [prompt=""] [naive]
 * </pre>
 *
 * With {@code naive}, it also times the textbook loop for comparison: outputs allocated by ONNX
 * Runtime, each {@code present.*} copied into a Java buffer and wrapped as the next step's past.
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
            if (args.length > 5 && args[5].equals("naive")) {
                naive(model, threads, ids, max, runs);
            }
        }
    }

    /** The copying loop: ORT allocates outputs; presents are copied out and wrapped as the next past. */
    private static void naive(ModelDirectory model, int threads, int[] ids, int max, int runs) {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        var shape = model.config().shape();
        int layers = shape.layers();
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.disablePerSessionThreads();
            try (OrtSession session = env.createSession(model.graph().toString(), so)) {
                boolean hasPos = session.getInputNames().contains("position_ids");
                double[] stepMs = new double[max * runs];
                int n = 0;
                for (int run = 0; run <= runs; run++) {
                    FloatBuffer[] past = new FloatBuffer[2 * layers];
                    for (int i = 0; i < past.length; i++) {
                        past[i] = FloatBuffer.allocate(0);
                    }
                    int len = 0;
                    int[] feed = ids;
                    for (int s = 0; s <= max; s++) {
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
                        for (int l = 0; l < layers; l++) {
                            long[] ps = {1, shape.kvHeads(), len, shape.headDim()};
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
                        if (run > 0 && s > 0) {
                            stepMs[n++] = (t1 - t0) / 1e6;
                        }
                        len += feed.length;
                        feed = new int[] {next};
                    }
                }
                double[] ms = Arrays.copyOf(stepMs, n);
                Arrays.sort(ms);
                System.out.printf(Locale.ROOT, "naive copying loop: step ms: median %.3f p10 %.3f p90 %.3f | tokens/s %.1f%n",
                        ms[n / 2], ms[n / 10], ms[n * 9 / 10], 1000 / ms[n / 2]);
            }
        } catch (OrtException e) {
            throw new IllegalStateException(e);
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
