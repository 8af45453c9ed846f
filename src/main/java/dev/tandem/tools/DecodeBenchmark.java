package dev.tandem.tools;

import static dev.tandem.tools.BenchStats.median;
import static dev.tandem.tools.BenchStats.summary;
import static dev.tandem.tools.BenchStats.argmax;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import dev.tandem.engine.onnxruntime.OnnxRuntimeEngine;

/**
 * Per-token latency of plain greedy decoding through the ONNX Runtime engine, the time each step
 * spends outside {@code session.run}, and, side by side in the same process, the textbook loop
 * that lets ONNX Runtime allocate its outputs and copies every {@code present.*} back into a Java
 * buffer for the next step.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
 *      --enable-native-access=ALL-UNNAMED dev.tandem.tools.DecodeBenchmark MODEL_DIR [threads=2] [steps=256] [runs=5]
 *      [--graph=model.onnx]
 * </pre>
 *
 * Each run prefills BOS and decodes {@code steps} tokens greedily (EOS ignored; stops at the
 * context). Runs alternate between the engine and the copying loop; a warm-up run of each comes
 * first and is not counted. Reported: median, p10 and p90 over all timed steps.
 *
 * <p>With {@code --engines=SPEC;SPEC...} (see {@link BenchEngines}: {@code ort},
 * {@code openvino:hint=THROUGHPUT,precision=bf16,threads=1}, ...) it instead puts those engines
 * side by side on the same graph: greedy ms/token and the verification cost of 1..8 fed tokens,
 * runs rotating through the engines; {@code --csv=FILE} appends the medians.
 *
 * <p>{@code --batched MODEL_DIR [threads] [reps] [past]}: the cost of the batched step for 1..16 sequences
 * ({@link BatchedStepBenchmark}).
 */
public final class DecodeBenchmark {
    private DecodeBenchmark() {
    }

    public static void main(String[] args) throws OrtException, IOException {
        if (args.length > 1 && args[0].equals("--batched")) {
            BatchedStepBenchmark.run(ModelDirectory.open(Path.of(args[1]), OnnxRuntimeEngine.PREFERRED_GRAPHS, Optional.empty()), args.length > 2 ? Integer.parseInt(args[2]) : 2,
                    args.length > 3 ? Integer.parseInt(args[3]) : 20, args.length > 4 ? Integer.parseInt(args[4]) : 30);
            return;
        }
        List<String> engines = new ArrayList<>();
        Path csv = null;
        Optional<String> graph = Optional.empty();
        List<String> positional = new ArrayList<>();
        for (String arg : args) {
            if (arg.startsWith("--graph=")) {
                graph = Optional.of(arg.substring("--graph=".length()));
            } else if (arg.startsWith("--engines=")) {
                engines.addAll(Arrays.asList(arg.substring("--engines=".length()).split(";")));
            } else if (arg.startsWith("--csv=")) {
                csv = Path.of(arg.substring("--csv=".length()));
            } else {
                positional.add(arg);
            }
        }
        args = positional.toArray(String[]::new);
        Path dir = Path.of(args[0]);
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        int runs = args.length > 3 ? Integer.parseInt(args[3]) : 5;

        // ONNX Runtime alone: the graph the service runs on it (model_optimized.onnx when there is one); engines side by
        // side: the portable graph every engine reads; --graph=FILE: that file of the directory
        ModelDirectory model = ModelDirectory.open(dir, engines.isEmpty() ? OnnxRuntimeEngine.PREFERRED_GRAPHS : List.of(), graph);
        System.out.println("graph " + model.graph());
        if (!engines.isEmpty()) {
            compareEngines(model, engines, threads, steps, runs, csv);
            return;
        }
        OnnxRuntimeOptions options = BenchEngines.ortOptions(threads);
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

    /** Past length before the verification calls: a prompt's worth, as in an assisted round. */
    static final int VERIFY_PAST = 30;
    /** Fed-token counts timed for the verification cost (k = 0..7 candidates plus the last token). */
    static final int MAX_FED = 8;
    /** Verification calls per fed count per run. */
    static final int VERIFY_REPS = 10;

    /**
     * The engines (or one engine's settings) side by side on the same graph in one process: per
     * run, every engine in a rotating order decodes {@code steps} greedy tokens, then times
     * {@link #VERIFY_REPS} forward calls of 1..{@link #MAX_FED} tokens after a {@link #VERIFY_PAST}-token
     * past, truncating back after each (as a rejected verification is rolled back). A warm-up run
     * is not counted. Also reported: whether each engine's greedy ids equal the first engine's.
     */
    private static void compareEngines(ModelDirectory model, List<String> specs, int threads, int steps, int runs, Path csv)
            throws IOException {
        List<CausalLm> lms = new ArrayList<>();
        int[] prompt;
        try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
            prompt = tokenizer.encodePrompt("");
        }
        try {
            for (String spec : specs) {
                lms.add(BenchEngines.open(spec, model, threads));
            }
            int n = specs.size();
            int max = Math.max(VERIFY_PAST + MAX_FED, Math.min(steps, model.config().shape().maxContext() - prompt.length));
            double[][] decode = new double[n][max * runs];
            double[][][] verify = new double[n][MAX_FED + 1][VERIFY_REPS * runs];
            int[][] ids = new int[n][];
            float[][][] logitRows = new float[n][max][];  // the warm-up run's logits, for the difference to the first engine
            for (int run = 0; run <= runs; run++) {
                for (int j = 0; j < n; j++) {
                    int e = (run + j) % n;  // rotate the order so drift hits every engine alike
                    int[] out = new int[max];
                    greedyRun(lms.get(e), prompt, max, run == 0 ? null : decode[e], (run - 1) * max, out, run == 0 ? logitRows[e] : null);
                    ids[e] = out;
                    verifyRun(lms.get(e), out, run == 0 ? null : verify[e], (run - 1) * VERIFY_REPS);
                }
            }
            System.out.printf(Locale.ROOT, "model=%s default-threads=%d steps=%d runs=%d verify: past %d, %d calls per fed count per run%n",
                    model.name(), threads, max, runs, VERIFY_PAST, VERIFY_REPS);
            StringBuilder rows = new StringBuilder("model,engine,decode_ms_median,decode_ms_p10,decode_ms_p90,decode_vs_first");
            for (int f = 1; f <= MAX_FED; f++) {
                rows.append(",verify_fed").append(f).append("_ms");
            }
            rows.append(",greedy_equal_first,max_logit_diff_first\n");
            for (int e = 0; e < n; e++) {
                int diverge = firstDifference(ids[0], ids[e]);
                double maxDiff = 0;  // over the steps both engines fed the same tokens
                for (int st = 0; st < (diverge < 0 ? max : diverge + 1); st++) {
                    for (int v = 0; v < logitRows[e][st].length; v++) {
                        maxDiff = Math.max(maxDiff, Math.abs(logitRows[e][st][v] - logitRows[0][st][v]));
                    }
                }
                System.out.printf(Locale.ROOT, "  %-40s decode %s | x%.2f of first | greedy ids %s, max logit difference %.4f%n", specs.get(e),
                        summary(decode[e]), median(decode[e]) / median(decode[0]),
                        diverge < 0 ? "equal to first" : "differ from step " + diverge, maxDiff);
                StringBuilder v = new StringBuilder("      verify ms, fed 1..8:");
                rows.append(String.format(Locale.ROOT, "%s,\"%s\",%.4f,%.4f,%.4f,%.3f", model.name(), specs.get(e),
                        median(decode[e]), percentile(decode[e], 10), percentile(decode[e], 90), median(decode[e]) / median(decode[0])));
                for (int f = 1; f <= MAX_FED; f++) {
                    v.append(String.format(Locale.ROOT, " %.3f", median(verify[e][f])));
                    rows.append(String.format(Locale.ROOT, ",%.4f", median(verify[e][f])));
                }
                rows.append(',').append(diverge < 0).append(String.format(Locale.ROOT, ",%.5f", maxDiff)).append('\n');
                System.out.println(v);
            }
            if (csv != null) {
                boolean fresh = !Files.exists(csv);
                Files.writeString(csv, fresh ? rows.toString() : rows.substring(rows.indexOf("\n") + 1),
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            }
        } finally {
            lms.forEach(CausalLm::close);
        }
    }

    /** Prefill BOS, then {@code steps} greedy steps; the ids go to {@code out}. */
    private static void greedyRun(CausalLm lm, int[] prompt, int steps, double[] ms, int at, int[] out, float[][] keep) {
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, prompt);
            float[] row = new float[lm.shape().vocabSize()];
            int[] one = new int[1];
            for (int s = 0; s < steps; s++) {
                long t0 = System.nanoTime();
                logits.copyRow(logits.rows() - 1, row);
                one[0] = argmax(row);
                logits = lm.forward(cache, one);
                long t1 = System.nanoTime();
                out[s] = one[0];
                if (keep != null) {
                    keep[s] = row.clone();
                }
                if (ms != null) {
                    ms[at + s] = (t1 - t0) / 1e6;
                }
            }
        }
    }

    /** Forward calls of 1..MAX_FED tokens (the greedy continuation) after a VERIFY_PAST-token past. */
    private static void verifyRun(CausalLm lm, int[] greedy, double[][] ms, int at) {
        try (KvCache cache = lm.newCache()) {
            lm.forward(cache, greedy, 0, VERIFY_PAST);  // the greedy text itself as the past
            for (int rep = 0; rep < VERIFY_REPS; rep++) {
                for (int fed = 1; fed <= MAX_FED; fed++) {
                    long t0 = System.nanoTime();
                    lm.forward(cache, greedy, VERIFY_PAST, fed);
                    long t1 = System.nanoTime();
                    cache.truncate(VERIFY_PAST);
                    if (ms != null) {
                        ms[fed][at + rep] = (t1 - t0) / 1e6;
                    }
                }
            }
        }
    }

    private static int firstDifference(int[] a, int[] b) {
        for (int i = 0; i < Math.min(a.length, b.length); i++) {
            if (a[i] != b[i]) {
                return i;
            }
        }
        return -1;
    }

    private static double percentile(double[] xs, int p) {
        double[] s = xs.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.floor(p / 100.0 * s.length))];
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
