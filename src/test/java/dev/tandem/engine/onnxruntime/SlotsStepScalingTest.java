package dev.tandem.engine.onnxruntime;

import static dev.tandem.testing.TestArrays.argmax;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * Not a check: a measurement harness for issue 15. It times the engine's batched decode step alone
 * ({@code forward(List<Feed>)}, one {@code session.run}) for B = 1, 2, 4, 8, 16 rows x 1 token at two context
 * lengths, so the ratio step(B) / step(1) gives the ceiling of continuous batching's aggregate speed-up with
 * no server around it. It runs as a JUnit test only because a standalone {@code java -cp target/classes}
 * does not load ONNX Runtime's native library the way the test classpath does.
 *
 * <pre>
 * ./mvnw -B -o test -Dtest=SlotsStepScalingTest -Dtandem.bench.slots-model=/work/slots-target/kjv-target-slots \
 *     [-Dtandem.bench.reps=200] [-Dtandem.bench.threads=0] [-Dtandem.bench.own-threads=true]
 * </pre>
 * Every method is skipped unless {@code tandem.bench.slots-model} is set (Maven's -D properties reach the test JVM).
 * Also {@link #ortNodeProfile} (ONNX Runtime's per-node profile at B = 1 and 8) and {@link #compareGraphs}
 * (bit differences between two graphs, e.g. a rewrite of tools/bench/slots_attention_rewrite.py).
 */
class SlotsStepScalingTest {
    private static final int[] BATCHES = {1, 2, 4, 8, 16};
    private static final int[] PASTS = {64, 200};

    @Test
    void batchedDecodeStepScaling() {
        String model = System.getProperty("tandem.bench.slots-model");
        Assumptions.assumeTrue(model != null && !model.isBlank(), "set -Dtandem.bench.slots-model=DIR to measure");
        int reps = Integer.getInteger("tandem.bench.reps", 200);
        int threads = Integer.getInteger("tandem.bench.threads", 0);
        ModelDirectory dir = ModelDirectory.open(Path.of(model));
        // -Dtandem.bench.own-threads=true: a session on threads of its own, as the service opens the draft
        // (tandem.onnxruntime.draft-intra-op-threads, default 1)
        OnnxRuntimeOptions options = threads > 0 && Boolean.getBoolean("tandem.bench.own-threads") ? OnnxRuntimeOptions.ownThreads(threads)
                : threads > 0 ? new OnnxRuntimeOptions(threads, true, false, "all") : OnnxRuntimeOptions.defaults();
        try (OrtCausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), options)) {
            int vocab = lm.shape().vocabSize();
            System.out.printf(Locale.ROOT, "model=%s slots=%s width up to %d (follows the rows) threads=%d reps=%d: median ms of one batched step, B rows x 1 token%n",
                    dir.name(), lm.slotLayout(), lm.slotMaxWidth(), options.intraOpThreads(), reps);
            for (int past : PASTS) {
                int[] text = new int[past + 1];
                for (int i = 0; i < text.length; i++) {
                    text[i] = i == 0 ? 1 : 3 + (i * 37) % (vocab - 3);
                }
                double base = 0;
                System.out.printf(Locale.ROOT, "past=%d%n   B   median ms   p10 ms   p90 ms   x step(1)   tok/s   x tok/s(1)%n", past);
                for (int b : BATCHES) {
                    List<KvCache> caches = new ArrayList<>();
                    try {
                        List<Feed> feeds = new ArrayList<>();
                        for (int i = 0; i < b; i++) {
                            KvCache c = lm.newCache();
                            caches.add(c);
                            lm.forward(c, text, 0, past);
                            feeds.add(new Feed(c, text, past, 1));
                        }
                        double[] ms = new double[reps];
                        for (int r = -10; r < reps; r++) {  // 10 warm-up steps
                            long t0 = System.nanoTime();
                            lm.forward(feeds);
                            long t1 = System.nanoTime();
                            for (KvCache c : caches) {
                                c.truncate(past);
                            }
                            if (r >= 0) {
                                ms[r] = (t1 - t0) / 1e6;
                            }
                        }
                        Arrays.sort(ms);
                        double median = ms[reps / 2];
                        if (b == 1) {
                            base = median;
                        }
                        System.out.printf(Locale.ROOT, "  %2d  %9.3f  %7.3f  %7.3f  %9.2f  %7.0f  %9.2f%n", b, median, ms[reps / 10],
                                ms[reps * 9 / 10], median / base, b * 1000 / median, b * base / median);
                    } finally {
                        caches.forEach(KvCache::close);
                    }
                }
            }
        }
    }

    /**
     * One sequence feeding T = 1..8 tokens at past 64 (a verification of T - 1 candidates): what a candidate costs at
     * one stream, the figure the auto speculation policy's cost model must get right there. Interleaved: every round
     * times each T once, so the machine's drift spreads over all of them.
     */
    @Test
    void verificationCostAtOneStream() {
        String model = System.getProperty("tandem.bench.slots-model");
        Assumptions.assumeTrue(model != null && !model.isBlank(), "set -Dtandem.bench.slots-model=DIR to measure");
        int reps = Integer.getInteger("tandem.bench.reps", 200);
        ModelDirectory dir = ModelDirectory.open(Path.of(model));
        int past = 64;
        int maxT = 8;
        try (OrtCausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
             KvCache c = lm.newCache()) {
            int vocab = lm.shape().vocabSize();
            int[] text = new int[past + maxT];
            for (int i = 0; i < text.length; i++) {
                text[i] = i == 0 ? 1 : 3 + (i * 37) % (vocab - 3);
            }
            lm.forward(c, text, 0, past);
            double[][] ms = new double[maxT + 1][reps];
            for (int r = -10; r < reps; r++) {
                for (int t = 1; t <= maxT; t++) {
                    long t0 = System.nanoTime();
                    lm.forward(List.of(new Feed(c, text, past, t)));
                    long t1 = System.nanoTime();
                    c.truncate(past);
                    if (r >= 0) {
                        ms[t][r] = (t1 - t0) / 1e6;
                    }
                }
            }
            System.out.printf(Locale.ROOT, "model=%s width=%d reps=%d: one sequence at past %d feeding T tokens%n   T   median ms   x T=1%n",
                    dir.name(), lm.slotWidth(), reps, past);
            double base = 0;
            for (int t = 1; t <= maxT; t++) {
                Arrays.sort(ms[t]);
                double median = ms[t][reps / 2];
                base = t == 1 ? median : base;
                System.out.printf(Locale.ROOT, "  %2d  %9.3f  %6.2f%n", t, median, median / base);
            }
        }
    }

    /**
     * ONNX Runtime's own per-node profile of the batched decode step at B = 1 and B = 8 (keys and values bound in
     * place, as SlotPool does): writes one Chrome-trace JSON per B into {@code tandem.bench.ort-profile} (a path
     * prefix) for an offline summary by operator type.
     */
    @Test
    void ortNodeProfile() throws Exception {
        String model = System.getProperty("tandem.bench.slots-model");
        String prefix = System.getProperty("tandem.bench.ort-profile");
        Assumptions.assumeTrue(model != null && prefix != null, "set tandem.bench.slots-model and tandem.bench.ort-profile");
        ModelDirectory dir = ModelDirectory.open(Path.of(model));
        var shape = dir.config().shape();
        int width = SlotPool.maxWidth(shape.maxContext());
        int runs = Integer.getInteger("tandem.bench.reps", 100);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        for (int b : new int[] {1, 8}) {
            try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
                so.setIntraOpNumThreads(Integer.getInteger("tandem.bench.threads", 2));
                so.addConfigEntry("session.intra_op.allow_spinning", "0");
                so.enableProfiling(prefix + "-b" + b);
                try (OrtSession session = env.createSession(dir.graph().toString(), so)) {
                    Map<String, OnnxTensor> in = new HashMap<>();
                    Map<String, OnnxTensor> out = new HashMap<>();
                    ByteBuffer ids = direct(8L * b);
                    ByteBuffer pos = direct(8L * b);
                    for (int i = 0; i < b; i++) {
                        ids.putLong(8 * i, 3 + i);
                        pos.putLong(8 * i, 100 + i);
                    }
                    in.put("input_ids", OnnxTensor.createTensor(env, ids.asLongBuffer(), new long[] {b, 1}));
                    in.put("position_ids", OnnxTensor.createTensor(env, pos.asLongBuffer(), new long[] {b, 1}));
                    long[] kv = {b, shape.kvHeads(), width, shape.headDim()};
                    for (String name : session.getInputNames()) {
                        if (name.startsWith("past_key_values.")) {
                            ByteBuffer buf = direct(4L * b * shape.kvHeads() * width * shape.headDim());
                            in.put(name, OnnxTensor.createTensor(env, buf.asFloatBuffer(), kv));
                            out.put(name.replace("past_key_values.", "present."), OnnxTensor.createTensor(env, buf.asFloatBuffer(), kv));
                        }
                    }
                    out.put("logits", OnnxTensor.createTensor(env, direct(4L * b * shape.vocabSize()).asFloatBuffer(),
                            new long[] {b, 1, shape.vocabSize()}));
                    long t0 = 0;
                    for (int r = -10; r < runs; r++) {
                        if (r == 0) {
                            t0 = System.nanoTime();
                        }
                        try (OrtSession.Result ignored = session.run(in, out)) {
                            // in place
                        }
                    }
                    System.out.printf(Locale.ROOT, "B=%d: %.3f ms per run (profiled, %d runs) -> %s%n", b,
                            (System.nanoTime() - t0) / 1e6 / runs, runs, session.endProfiling());
                }
            }
        }
    }

    private static ByteBuffer direct(long bytes) {
        return ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
    }

    /**
     * Counts the logits that differ between two slots graphs ({@code tandem.bench.slots-model} and
     * {@code tandem.bench.compare-model}) over the same batched run: 3 prompts of different lengths prefilled,
     * then 24 batched greedy decode steps (each graph follows its own greedy choice; a different choice shows as
     * a token difference too).
     */
    @Test
    void compareGraphs() {
        String a = System.getProperty("tandem.bench.slots-model");
        String b = System.getProperty("tandem.bench.compare-model");
        Assumptions.assumeTrue(a != null && b != null, "set tandem.bench.slots-model and tandem.bench.compare-model");
        ModelDirectory da = ModelDirectory.open(Path.of(a));
        ModelDirectory db = ModelDirectory.open(Path.of(b));
        try (OrtCausalLm la = OrtCausalLm.open(da.graph(), da.config().shape(), OnnxRuntimeOptions.defaults());
             OrtCausalLm lb = OrtCausalLm.open(db.graph(), db.config().shape(), OnnxRuntimeOptions.defaults())) {
            int vocab = la.shape().vocabSize();
            int[] lengths = {7, 60, 131};
            long differing = 0;
            long total = 0;
            int tokenDiffs = 0;
            List<KvCache> ca = new ArrayList<>();
            List<KvCache> cb = new ArrayList<>();
            int[][] next = new int[lengths.length][2];
            try {
                for (int i = 0; i < lengths.length; i++) {
                    int[] prompt = new int[lengths[i]];
                    for (int t = 0; t < prompt.length; t++) {
                        prompt[t] = t == 0 ? 1 : 3 + (t * 131 + i * 17) % (vocab - 3);
                    }
                    ca.add(la.newCache());
                    cb.add(lb.newCache());
                    float[] ra = la.forward(ca.get(i), prompt).row(prompt.length - 1);
                    float[] rb = lb.forward(cb.get(i), prompt).row(prompt.length - 1);
                    differing += diff(ra, rb);
                    total += vocab;
                    next[i][0] = argmax(ra);
                    next[i][1] = argmax(rb);
                }
                for (int step = 0; step < 24; step++) {
                    List<Feed> fa = new ArrayList<>();
                    List<Feed> fb = new ArrayList<>();
                    for (int i = 0; i < lengths.length; i++) {
                        fa.add(new Feed(ca.get(i), new int[] {next[i][0]}, 0, 1));
                        fb.add(new Feed(cb.get(i), new int[] {next[i][1]}, 0, 1));
                        tokenDiffs += next[i][0] != next[i][1] ? 1 : 0;
                    }
                    var oa = la.forward(fa);
                    var ob = lb.forward(fb);
                    for (int i = 0; i < lengths.length; i++) {
                        float[] ra = oa.get(i).row(0);
                        float[] rb = ob.get(i).row(0);
                        differing += diff(ra, rb);
                        total += vocab;
                        next[i][0] = argmax(ra);
                        next[i][1] = argmax(rb);
                    }
                }
            } finally {
                ca.forEach(KvCache::close);
                cb.forEach(KvCache::close);
            }
            System.out.printf(Locale.ROOT, "compare %s vs %s: %d of %d logits differ, %d greedy token differences%n", a, b,
                    differing, total, tokenDiffs);
        }
    }

    private static int diff(float[] x, float[] y) {
        int n = 0;
        for (int i = 0; i < x.length; i++) {
            n += Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i]) ? 1 : 0;
        }
        return n;
    }
}
