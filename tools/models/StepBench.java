// The time of one engine step of slots-layout graphs (/work/notes/slots.md), side by side, and where it goes.
// Issue 17: measure before fusing (NOTES.md "Faster step").
//
//   java -cp onnxruntime-1.29.0.jar --enable-native-access=ALL-UNNAMED tools/models/StepBench.java \
//        [--threads 2] [--spin 0|1] [--batch 1] [--tokens 1] [--past 300] [--reps 200] [--runs 5] \
//        [--lanes 1] [--profile DIR] [--optimized DIR] model.onnx [other.onnx ...]
//
// Each call feeds B rows x T tokens at positions past..past+T-1 with a cache of width W = the next multiple of 64
// above past+T (the engine's layout). Inputs and outputs are bound as the engine binds them (SlotPool): present.*
// written in place into the past buffers, logits into a preallocated buffer, so only session.run is timed.
// Runs rotate through the models (a warm-up run each first); printed: median ms per call of every run and the
// median of those medians, and the fastest run's median ("best": the quietest moment of a shared machine).
// --lanes N: N Java threads call session.run at once, each on its own B rows (one session, its own buffers), as an
//   engine that splits a batch into N lanes would (use --threads 1 for one core per lane); the time printed is the
//   wall time of one call in every lane, so rows per ms = N * B * T / that time.
// --profile DIR: one more run per model with ONNX Runtime's profiler on; prints the time per call by op type
//   (kernel time summed over the nodes), the number of nodes executed, and the model_run time not spent in
//   kernels ("gaps": dispatch, thread wake-ups, allocation). The raw JSON stays in DIR.
// --optimized DIR: writes ONNX Runtime's optimized graph (level all) of each model to DIR and counts its nodes.
import ai.onnxruntime.*;

import java.nio.*;
import java.nio.file.*;
import java.util.*;
import java.util.regex.*;

public class StepBench {
    static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    record Bound(OrtSession session, Map<String, OnnxTensor> in, Map<String, OnnxTensor> out) {}

    static OrtSession open(String model, int threads, boolean spin, String profileDir, String optimizedDir) throws Exception {
        OrtSession.SessionOptions so = new OrtSession.SessionOptions();
        so.setIntraOpNumThreads(threads);
        so.setInterOpNumThreads(1);
        so.addConfigEntry("session.intra_op.allow_spinning", spin ? "1" : "0");
        so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
        so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
        String base = Path.of(model).getParent().getFileName() + "_" + Path.of(model).getFileName().toString().replace(".onnx", "");
        if (profileDir != null) Files.createDirectories(Path.of(profileDir));
        if (profileDir != null) so.enableProfiling(Path.of(profileDir, base).toString());
        if (optimizedDir != null) Files.createDirectories(Path.of(optimizedDir));
        if (optimizedDir != null) so.setOptimizedModelFilePath(Path.of(optimizedDir, base + "_opt.onnx").toString());
        return ENV.createSession(model, so);
    }

    /** Inputs and in-place outputs for B rows x T tokens after a past of {@code past} positions. */
    static Bound bind(OrtSession s, int b, int t, int past) throws Exception {
        int w = (past + t + 64) / 64 * 64;
        Map<String, OnnxTensor> in = new HashMap<>(), out = new HashMap<>();
        long[] ids = new long[b * t], pos = new long[b * t];
        Random rnd = new Random(17);
        for (int i = 0; i < ids.length; i++) { ids[i] = 5 + rnd.nextInt(4000); pos[i] = past + i % t; }
        in.put("input_ids", OnnxTensor.createTensor(ENV, LongBuffer.wrap(ids), new long[]{b, t}));
        in.put("position_ids", OnnxTensor.createTensor(ENV, LongBuffer.wrap(pos), new long[]{b, t}));
        int vocab = 0;
        for (var e : s.getInputInfo().entrySet()) {
            if (!e.getKey().startsWith("past_key_values.")) continue;
            TensorInfo info = (TensorInfo) e.getValue().getInfo();
            long[] sh = info.getShape();
            long[] shape = {b, sh[1], w, sh[3]};
            if (info.type == OnnxJavaType.FLOAT16) {  // a float16 cache (fuse_graph.py --kv fp16)
                ByteBuffer hb = ByteBuffer.allocateDirect((int) (2 * b * sh[1] * w * sh[3])).order(ByteOrder.nativeOrder());
                for (int i = 0; i < hb.capacity() / 2; i++) hb.putShort(2 * i, Float.floatToFloat16((float) (rnd.nextGaussian() * 0.5)));
                in.put(e.getKey(), OnnxTensor.createTensor(ENV, hb, shape, OnnxJavaType.FLOAT16));
                out.put(e.getKey().replace("past_key_values.", "present."), OnnxTensor.createTensor(ENV, hb, shape, OnnxJavaType.FLOAT16));
                continue;
            }
            FloatBuffer fb = ByteBuffer.allocateDirect((int) (4 * b * sh[1] * w * sh[3])).order(ByteOrder.nativeOrder()).asFloatBuffer();
            for (int i = 0; i < fb.capacity(); i++) fb.put(i, (float) (rnd.nextGaussian() * 0.5));
            in.put(e.getKey(), OnnxTensor.createTensor(ENV, fb, shape));
            out.put(e.getKey().replace("past_key_values.", "present."), OnnxTensor.createTensor(ENV, fb, shape));
        }
        for (var e : s.getOutputInfo().entrySet()) {
            if (e.getKey().equals("logits")) vocab = (int) ((TensorInfo) e.getValue().getInfo()).getShape()[2];
        }
        FloatBuffer lb = ByteBuffer.allocateDirect(4 * b * t * vocab).order(ByteOrder.nativeOrder()).asFloatBuffer();
        out.put("logits", OnnxTensor.createTensor(ENV, lb, new long[]{b, t, vocab}));
        return new Bound(s, in, out);
    }

    /** Median wall ms of one call in every lane, {@code reps} rounds of calls run by {@code lanes.size()} threads at once. */
    static double timeLanes(List<Bound> lanes, int reps) throws Exception {
        if (lanes.size() == 1) return time(lanes.get(0), reps);
        java.util.concurrent.CyclicBarrier barrier = new java.util.concurrent.CyclicBarrier(lanes.size());
        long[][] ends = new long[lanes.size()][reps];
        long[] start = new long[1];
        List<Thread> threads = new ArrayList<>();
        Exception[] failed = new Exception[1];
        for (int l = 0; l < lanes.size(); l++) {
            Bound x = lanes.get(l);
            long[] end = ends[l];
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    barrier.await();
                    for (int i = 0; i < reps; i++) {
                        try (OrtSession.Result r = x.session.run(x.in, x.out)) { /* in place */ }
                        end[i] = System.nanoTime();
                    }
                } catch (Exception e) { failed[0] = e; }
            }));
        }
        long t0 = System.nanoTime();
        for (Thread t : threads) t.join();
        if (failed[0] != null) throw failed[0];
        // round i ends when the slowest lane finishes its i-th call
        double[] ms = new double[reps];
        long prev = t0;
        for (int i = 0; i < reps; i++) {
            long e = 0;
            for (long[] end : ends) e = Math.max(e, end[i]);
            ms[i] = (e - prev) / 1e6;
            prev = e;
        }
        return median(Arrays.copyOfRange(ms, 1, reps));
    }

    /** Median ms of {@code reps} calls. */
    static double time(Bound x, int reps) throws Exception {
        double[] ms = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            try (OrtSession.Result r = x.session.run(x.in, x.out)) { /* written in place */ }
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        return median(ms);
    }

    static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    /** Sums the profiler's node events (one JSON object per line) by op type: ms per call, and the model_run time outside kernels. */
    static void summarise(String json) throws Exception {
        Pattern cat = Pattern.compile("^\\{\"cat\" *: *\"(Node|Session)\"");
        Pattern dur = Pattern.compile("\"dur\" *: *(\\d+)");
        Pattern nm = Pattern.compile("\"name\" *: *\"([^\"]*)\"");
        Pattern op = Pattern.compile("\"op_name\" *: *\"([^\"]*)\"");
        Map<String, double[]> byOp = new TreeMap<>();  // op -> {us, kernels}
        double run = 0, kernels = 0;
        int runs = 0;
        Set<String> nodes = new HashSet<>();
        for (String line : Files.readAllLines(Path.of(json))) {
            Matcher c = cat.matcher(line), d = dur.matcher(line), n = nm.matcher(line);
            if (!c.find() || !d.find() || !n.find()) continue;
            double us = Double.parseDouble(d.group(1));
            String name = n.group(1);
            if (c.group(1).equals("Session")) {
                if (name.equals("model_run")) { run += us; runs++; }
                continue;
            }
            if (!name.endsWith("_kernel_time")) continue;
            Matcher o = op.matcher(line);
            String opName = o.find() ? o.group(1) : "?";
            byOp.computeIfAbsent(opName, k -> new double[2])[0] += us;
            byOp.get(opName)[1]++;
            kernels += us;
            nodes.add(name);
        }
        if (runs == 0) { System.out.println("  (no model_run events in " + json + ")"); return; }
        List<Map.Entry<String, double[]>> list = new ArrayList<>(byOp.entrySet());
        list.sort((a, b) -> Double.compare(b.getValue()[0], a.getValue()[0]));
        System.out.printf(Locale.ROOT, "  profile over %d calls: model_run %.3f ms/call, kernels %.3f ms/call, outside kernels %.3f ms/call; %d nodes run per call%n",
                runs, run / runs / 1e3, kernels / runs / 1e3, (run - kernels) / runs / 1e3, nodes.size());
        for (var e : list) {
            System.out.printf(Locale.ROOT, "    %-34s %7.3f ms/call %5.1f%%  nodes/call %5.1f%n", e.getKey(), e.getValue()[0] / runs / 1e3,
                    100 * e.getValue()[0] / kernels, e.getValue()[1] / runs);
        }
    }

    /** Profile a JSON file written earlier: StepBench --summarise FILE */
    public static void main(String[] args) throws Exception {
        int threads = 2, lanes = 1, b = 1, t = 1, past = 300, reps = 200, runs = 5;
        boolean spin = false;
        String profileDir = null, optimizedDir = null;
        List<String> models = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--lanes" -> lanes = Integer.parseInt(args[++i]);
                case "--spin" -> spin = args[++i].equals("1");
                case "--batch" -> b = Integer.parseInt(args[++i]);
                case "--tokens" -> t = Integer.parseInt(args[++i]);
                case "--past" -> past = Integer.parseInt(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--runs" -> runs = Integer.parseInt(args[++i]);
                case "--profile" -> profileDir = args[++i];
                case "--optimized" -> optimizedDir = args[++i];
                case "--summarise" -> { summarise(args[++i]); return; }
                default -> models.add(args[i]);
            }
        }
        System.out.printf(Locale.ROOT, "StepBench: B=%d T=%d past=%d width=%d threads=%d lanes=%d spin=%s reps=%d runs=%d%n", b, t, past,
                (past + t + 64) / 64 * 64, threads, lanes, spin, reps, runs);
        List<List<Bound>> bound = new ArrayList<>();
        for (String model : models) {
            OrtSession s = open(model, threads, spin, null, optimizedDir);
            List<Bound> laneBinds = new ArrayList<>();
            for (int l = 0; l < lanes; l++) laneBinds.add(bind(s, b, t, past));
            bound.add(laneBinds);
            if (optimizedDir != null) {
                System.out.println("  optimized graph of " + model + " written to " + optimizedDir);
            }
        }
        double[][] med = new double[models.size()][runs];
        for (List<Bound> x : bound) timeLanes(x, Math.max(20, reps / 4));  // warm-up
        for (int r = 0; r < runs; r++) {
            for (int k = 0; k < bound.size(); k++) med[k][r] = timeLanes(bound.get(k), reps);
        }
        for (int k = 0; k < models.size(); k++) {
            StringBuilder sb = new StringBuilder();
            for (double v : med[k]) sb.append(String.format(Locale.ROOT, " %.3f", v));
            // best = the fastest run's median: on the shared machine other jobs come and go, so the quietest
            // run is the steadiest estimate of the graph's own cost (compare graphs on both numbers)
            System.out.printf(Locale.ROOT, "%s: median %.3f best %.3f ms/call, %.2f tokens/ms (runs:%s)%n", models.get(k),
                    median(med[k]), Arrays.stream(med[k]).min().orElse(Double.NaN), lanes * b * t / median(med[k]), sb);
        }
        for (List<Bound> x : bound) x.get(0).session.close();
        if (profileDir != null) {
            Files.createDirectories(Path.of(profileDir));
            for (String model : models) {
                OrtSession s = open(model, threads, spin, profileDir, null);
                Bound x = bind(s, b, t, past);
                time(x, 20);
                time(x, reps);
                String json = s.endProfiling();
                System.out.println(model + ": " + json);
                summarise(json);
                s.close();
            }
        }
    }
}
