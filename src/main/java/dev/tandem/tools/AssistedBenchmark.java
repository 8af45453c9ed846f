package dev.tandem.tools;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Plain versus assisted decoding, side by side in one process over the same loaded models.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
 *      --enable-native-access=ALL-UNNAMED dev.tandem.tools.AssistedBenchmark \
 *      target=models/kjv-target draft=models/kjv-draft prompts=tools/bench/prompts/heldout.txt \
 *      [copy=tools/bench/prompts/copy.txt] [tokens=128] [threads=2] [runs=3] [ks=1,2,3,4,5,6,8,10]
 *      [temperatures=0,0.8] [prompt-count=32] [ignore-eos=false] [out=docs/bench/assisted]
 *      [draft-threads=1] [pooled-ks=] [thresholds=] [threshold-k=8] [engine=ort|openvino[:hint=,precision=,threads=]]
 *      [target-graph=model.onnx] [draft-graph=model.onnx]
 * </pre>
 *
 * For each temperature and run, every prompt is decoded in every mode (plain; draft with each k,
 * constant schedule; draft with the heuristic schedule; prompt lookup), the modes in a rotating
 * order so drift hits them alike. A completion ends at EOS or after {@code tokens} tokens, as a request
 * would ({@code ignore-eos=true} runs every completion to {@code tokens}; the bundled models were never
 * trained past a verse's EOS, so what follows is mostly repeated EOS). Tokens/s = generated tokens / wall time of the
 * generate calls (prefill included). Speed-up = a mode's tokens/s over plain's in the same run;
 * the median over runs is reported with the acceptance counters. With {@code copy=}, the copying
 * workload is also run for plain, prompt lookup and the draft at the best greedy k. Writes
 * {@code out}.csv and {@code out}.svg (speed-up and acceptance against k).
 *
 * <p>Also printed per mode: the inter-token speed-up (time after the first token, which is all
 * assisted decoding can shorten: vLLM's inter-token latency), the prefill's share of the time, and
 * the time per generated token spent in the target's and the draft's forward calls and elsewhere.
 * The draft runs as the service runs it ({@code draft-threads=1}: a session on one thread of its
 * own; 0 = in the target's shared pool). {@code pooled-ks=3,5} adds those k with a second draft
 * session in the shared pool, side by side; {@code thresholds=0.3,0.5} adds the confidence-threshold
 * stop at {@code threshold-k} candidates.
 */
public final class AssistedBenchmark {
    private AssistedBenchmark() {
    }

    /** A decoding mode: plain when {@code options} is null, else assisted through {@code decoder}. */
    record Mode(String name, AssistOptions options, int k, AssistedDecoder decoder) {
        Mode(String name, AssistOptions options, int k) {
            this(name, options, k, null);
        }
    }

    /** What one mode did in one run. */
    static final class Tally {
        long nanos;
        long tokens;
        long targetNanos;  // inside the target's forward calls
        long draftNanos;   // inside the draft's forward calls
        long decodeNanos;  // after the first token: what assisted decoding can speed up (vLLM's inter-token latency)
        long decodeTokens;
        long prefillNanos;
        long drafted;
        long accepted;
        long rounds;
        long completions;
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> a = new LinkedHashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            a.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        int tokens = Integer.parseInt(a.getOrDefault("tokens", "128"));
        int threads = Integer.parseInt(a.getOrDefault("threads", "2"));
        int runs = Integer.parseInt(a.getOrDefault("runs", "3"));
        int promptCount = Integer.parseInt(a.getOrDefault("prompt-count", "32"));
        int[] ks = Arrays.stream(a.getOrDefault("ks", "1,2,3,4,5,6,8,10").split(",")).mapToInt(Integer::parseInt).toArray();
        double[] temps = Arrays.stream(a.getOrDefault("temperatures", "0,0.8").split(",")).mapToDouble(Double::parseDouble).toArray();
        Path out = Path.of(a.getOrDefault("out", "docs/bench/assisted"));

        String engine = a.getOrDefault("engine", "ort");
        boolean onOrt = engine.equals("ort") || engine.equals("onnxruntime");
        // the graphs the service would run on that engine (ONNX Runtime: model_optimized.onnx when there is one),
        // unless target-graph= / draft-graph= name a file of the directory (e.g. model.onnx)
        List<String> preferred = onOrt ? dev.tandem.engine.onnxruntime.OnnxRuntimeEngine.PREFERRED_GRAPHS : List.of();
        ModelDirectory td = ModelDirectory.open(Path.of(a.get("target")), preferred,
                java.util.Optional.ofNullable(a.get("target-graph")));
        ModelDirectory dd = ModelDirectory.open(Path.of(a.get("draft")), preferred,
                java.util.Optional.ofNullable(a.get("draft-graph")));
        System.out.println("target graph " + td.graph() + ", draft graph " + dd.graph() + ", ONNX Runtime pool spinning " + BenchEngines.spinning());
        OnnxRuntimeOptions options = BenchEngines.ortOptions(threads);
        // as the service: the draft on its own thread(s) (tandem.onnxruntime.draft-intra-op-threads), or 0 = in the shared pool
        int draftThreads = Integer.parseInt(a.getOrDefault("draft-threads", "1"));
        OnnxRuntimeOptions draftOptions = draftThreads > 0 ? OnnxRuntimeOptions.ownThreads(draftThreads) : options;
        int[] pooledKs = a.getOrDefault("pooled-ks", "").isBlank() ? new int[0]
                : Arrays.stream(a.get("pooled-ks").split(",")).mapToInt(Integer::parseInt).toArray();
        // engine=openvino[:hint=..,precision=..,threads=..] (BenchEngines) runs both models on that engine
        // instead; the draft then gets draft-threads threads unless the spec names its own
        try (TimedLm target = new TimedLm(BenchEngines.asServed(onOrt ? OrtCausalLm.open(td.graph(), td.config().shape(), options)
                     : BenchEngines.open(engine, td, threads)));
             TimedLm draft = new TimedLm(onOrt ? OrtCausalLm.open(dd.graph(), dd.config().shape(), draftOptions)
                     : BenchEngines.open(engine, dd, draftThreads > 0 ? draftThreads : threads));
             TimedLm pooledDraft = pooledKs.length == 0 ? null
                     : new TimedLm(OrtCausalLm.open(dd.graph(), dd.config().shape(), options));
             TextTokenizer tokenizer = TextTokenizer.load(td)) {
            Timers timers = new Timers(target, pooledDraft == null ? List.of(draft) : List.of(draft, pooledDraft));
            List<Integer> eos = Boolean.parseBoolean(a.getOrDefault("ignore-eos", "false")) ? List.of() : td.config().eosTokenIds();
            PlainDecoder plain = new PlainDecoder(target, tokenizer, eos);
            AssistedDecoder assisted = new AssistedDecoder(target, draft, tokenizer, eos);
            List<int[]> prompts = prompts(Path.of(a.get("prompts")), tokenizer, promptCount);

            List<Mode> modes = new ArrayList<>();
            modes.add(new Mode("plain", null, 0));
            for (int k : ks) {
                modes.add(new Mode("draft k=" + k, new AssistOptions(Assistant.DRAFT, k, Schedule.CONSTANT, 0, 3), k));
            }
            modes.add(new Mode("draft heuristic", new AssistOptions(Assistant.DRAFT, 5, Schedule.HEURISTIC, 0, 3), -1));
            int thresholdK = Integer.parseInt(a.getOrDefault("threshold-k", "8"));
            for (String th : a.getOrDefault("thresholds", "").split(",")) {
                if (!th.isBlank()) {  // stop drafting when the draft's probability of its token falls below th
                    modes.add(new Mode("draft k=" + thresholdK + " conf<" + th, new AssistOptions(Assistant.DRAFT, thresholdK,
                            Schedule.CONSTANT, Double.parseDouble(th), 3), -4));
                }
            }
            modes.add(new Mode("prompt lookup k=5", new AssistOptions(Assistant.PROMPT_LOOKUP, 5, Schedule.CONSTANT, 0, 3), -2));
            if (pooledDraft != null) {  // the draft session in the target's shared pool, side by side
                AssistedDecoder pooled = new AssistedDecoder(target, pooledDraft, tokenizer, eos);
                for (int k : pooledKs) {
                    modes.add(new Mode("draft k=" + k + " pooled", new AssistOptions(Assistant.DRAFT, k, Schedule.CONSTANT, 0, 3),
                            -3, pooled));
                }
            }

            System.out.println("engine=" + engine);
            System.out.printf(Locale.ROOT, "target=%s draft=%s prompts=%d max tokens=%d (%s) threads=%d draft threads=%s runs=%d%n",
                    td.name(), dd.name(), prompts.size(), tokens, eos.isEmpty() ? "EOS ignored" : "or EOS", threads,
                    draftThreads > 0 ? draftThreads + " (own session)" : "shared pool", runs);
            List<String> csv = new ArrayList<>();
            csv.add("workload,temperature,mode,k,tokens_per_s,speedup,acceptance_rate,mean_acceptance_length,inter_token_speedup");
            Map<Double, double[][]> curves = new LinkedHashMap<>();  // temperature -> {speedup[], acceptance[]} per k
            int bestK = 5;
            for (double t : temps) {
                List<Tally[]> results = run(prompts, modes, t, tokens, runs, plain, assisted, timers);
                double[][] curve = new double[2][ks.length];
                double best = 0;
                System.out.printf(Locale.ROOT, "%nheld-out continuation, temperature %.1f%n", t);
                for (int m = 0; m < modes.size(); m++) {
                    double[] row = report(modes.get(m), results, m, runs);
                    csv.add(String.format(Locale.ROOT, "heldout,%.2f,%s,%d,%.1f,%.3f,%.4f,%.3f,%.3f", t, modes.get(m).name(),
                            modes.get(m).k(), row[0], row[1], row[2], row[3], row[4]));
                    int ki = indexOf(ks, modes.get(m).k());
                    if (ki >= 0) {
                        curve[0][ki] = row[1];
                        curve[1][ki] = row[2];
                        if (t == 0 && row[1] > best) {
                            best = row[1];
                            bestK = modes.get(m).k();
                        }
                    }
                }
                curves.put(t, curve);
            }
            if (a.containsKey("copy")) {
                List<int[]> copy = prompts(Path.of(a.get("copy")), tokenizer, promptCount);
                List<Mode> copyModes = List.of(modes.get(0),
                        new Mode("prompt lookup k=5", new AssistOptions(Assistant.PROMPT_LOOKUP, 5, Schedule.CONSTANT, 0, 3), -2),
                        new Mode("prompt lookup k=10", new AssistOptions(Assistant.PROMPT_LOOKUP, 10, Schedule.CONSTANT, 0, 3), -2),
                        new Mode("draft k=" + bestK, new AssistOptions(Assistant.DRAFT, bestK, Schedule.CONSTANT, 0, 3), bestK));
                List<Tally[]> results = run(copy, copyModes, 0, tokens, runs, plain, assisted, timers);
                System.out.printf(Locale.ROOT, "%ncopying workload (verse, then its first third again), greedy%n");
                for (int m = 0; m < copyModes.size(); m++) {
                    double[] row = report(copyModes.get(m), results, m, runs);
                    csv.add(String.format(Locale.ROOT, "copy,0.00,%s,%d,%.1f,%.3f,%.4f,%.3f,%.3f", copyModes.get(m).name(),
                            copyModes.get(m).k(), row[0], row[1], row[2], row[3], row[4]));
                }
            }
            Files.createDirectories(out.toAbsolutePath().getParent());
            Files.write(Path.of(out + ".csv"), csv);
            Files.writeString(Path.of(out + ".svg"), Plot.svg(ks, curves,
                    "Assisted decoding: " + td.name() + " with " + dd.name() + " (" + tokens + " tokens, " + threads + " threads)"));
            System.out.println("\nwrote " + out + ".csv and " + out + ".svg");
        }
    }

    private static List<Tally[]> run(List<int[]> prompts, List<Mode> modes, double temperature, int tokens, int runs,
                                     PlainDecoder plain, AssistedDecoder assisted, Timers timers) {
        List<Tally[]> perRun = new ArrayList<>();
        for (int r = 0; r <= runs; r++) {  // run 0 warms up
            Tally[] tally = new Tally[modes.size()];
            for (int m = 0; m < tally.length; m++) {
                tally[m] = new Tally();
            }
            for (int p = 0; p < prompts.size(); p++) {
                for (int j = 0; j < modes.size(); j++) {
                    int m = (j + p + r) % modes.size();  // rotate the order
                    Mode mode = modes.get(m);
                    SamplingParams sampling = temperature == 0 ? SamplingParams.greedy()
                            : new SamplingParams(temperature, 0, 1, 0, 1, 0, 0, 1000L * r + p);
                    GenerationRequest req = new GenerationRequest(prompts.get(p), sampling, tokens, List.of(), -1, false);
                    long target0 = timers.target().nanos;
                    long draft0 = timers.draftNanos();
                    long t0 = System.nanoTime();
                    GenerationResult res = mode.options() == null ? plain.generate(req)
                            : (mode.decoder() != null ? mode.decoder() : assisted).generate(req, mode.options());
                    tally[m].nanos += System.nanoTime() - t0;
                    tally[m].targetNanos += timers.target().nanos - target0;
                    tally[m].draftNanos += timers.draftNanos() - draft0;
                    tally[m].tokens += res.completionTokens();
                    tally[m].completions++;
                    tally[m].decodeNanos += res.decodeNanos();
                    tally[m].decodeTokens += res.completionTokens() - 1;
                    tally[m].prefillNanos += res.prefillNanos();
                    tally[m].drafted += res.stats().numDraftTokens();
                    tally[m].accepted += res.stats().numAcceptedTokens();
                    tally[m].rounds += res.stats().numSpecSteps();
                }
                if (r == 0 && p >= 3) {
                    break;  // a short warm-up
                }
            }
            if (r > 0) {
                perRun.add(tally);
            }
        }
        return perRun;
    }

    /** Prints and returns {tokens/s, speed-up, acceptance rate, mean acceptance length, inter-token speed-up}, medians over runs. */
    private static double[] report(Mode mode, List<Tally[]> results, int m, int runs) {
        double[] tps = new double[runs];
        double[] speedup = new double[runs];
        double[] itl = new double[runs];
        double[][] split = new double[3][runs];  // ms per generated token in the target, in the draft, elsewhere
        double[] itlSpeedup = new double[runs];
        double[] prefillShare = new double[runs];
        long drafted = 0;
        long accepted = 0;
        long rounds = 0;
        long tokens = 0;
        long completions = 0;
        for (int r = 0; r < runs; r++) {
            Tally t = results.get(r)[m];
            Tally base = results.get(r)[0];
            tps[r] = t.tokens / (t.nanos / 1e9);
            speedup[r] = tps[r] / (base.tokens / (base.nanos / 1e9));
            itl[r] = t.decodeNanos / 1e6 / t.decodeTokens;
            itlSpeedup[r] = (base.decodeNanos / 1e6 / base.decodeTokens) / itl[r];
            prefillShare[r] = (double) t.prefillNanos / t.nanos;
            split[0][r] = t.targetNanos / 1e6 / t.tokens;
            split[1][r] = t.draftNanos / 1e6 / t.tokens;
            split[2][r] = (t.nanos - t.targetNanos - t.draftNanos) / 1e6 / t.tokens;
            drafted += t.drafted;
            accepted += t.accepted;
            rounds += t.rounds;
            tokens += t.tokens;
            completions += t.completions;
        }
        double acceptance = drafted == 0 ? 0 : (double) accepted / drafted;
        double meanLength = rounds == 0 ? 0 : 1 + (double) accepted / rounds;
        double[] row = {median(tps), median(speedup), acceptance, meanLength, median(itlSpeedup)};
        System.out.printf(Locale.ROOT, "  %-20s %8.1f tokens/s  x%.2f  acceptance %.3f  mean accepted length %.2f  (%.1f tokens/completion)"
                        + "  inter-token %.3f ms x%.2f  prefill %.1f%% of time  ms/token: target %.3f draft %.3f other %.3f%n",
                mode.name(), row[0], row[1], row[2], row[3], (double) tokens / completions,
                median(itl), median(itlSpeedup), 100 * median(prefillShare), median(split[0]), median(split[1]),
                median(split[2]));
        return row;
    }

    /** The timed models: the target and the draft session(s). */
    record Timers(TimedLm target, List<TimedLm> drafts) {
        long draftNanos() {
            long n = 0;
            for (TimedLm d : drafts) {
                n += d.nanos;
            }
            return n;
        }
    }

    /** A model whose forward calls are timed (two nanoTime reads per call), to split a mode's time by model. */
    static final class TimedLm implements CausalLm {
        private final CausalLm lm;
        long nanos;

        TimedLm(CausalLm lm) {
            this.lm = lm;
        }

        @Override
        public ModelShape shape() {
            return lm.shape();
        }

        @Override
        public KvCache newCache() {
            return lm.newCache();
        }

        @Override
        public Logits forward(KvCache cache, int[] tokens, int offset, int length) {
            long t0 = System.nanoTime();
            try {
                return lm.forward(cache, tokens, offset, length);
            } finally {
                nanos += System.nanoTime() - t0;
            }
        }

        @Override
        public void close() {
            lm.close();
        }
    }

    private static List<int[]> prompts(Path file, TextTokenizer tokenizer, int count) throws IOException {
        List<int[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            if (!line.isBlank() && out.size() < count) {
                out.add(tokenizer.encodePrompt(line.replace("\\n", "\n")));  // prompts/passages.txt: \n between verses
            }
        }
        return out;
    }

    private static int indexOf(int[] ks, int k) {
        for (int i = 0; i < ks.length; i++) {
            if (ks[i] == k) {
                return i;
            }
        }
        return -1;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** A two-panel SVG line chart: speed-up and acceptance rate against k, one line per temperature. */
    static final class Plot {
        private Plot() {
        }

        static String svg(int[] ks, Map<Double, double[][]> curves, String title) {
            int w = 900;
            int h = 380;
            StringBuilder s = new StringBuilder();
            s.append(String.format(Locale.ROOT, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
                    + "font-family='sans-serif' font-size='12'>%n<rect width='100%%' height='100%%' fill='white'/>%n", w, h));
            s.append(String.format(Locale.ROOT, "<text x='%d' y='20' text-anchor='middle' font-size='14'>%s</text>%n", w / 2, title));
            double maxSpeed = 1.5;
            for (double[][] c : curves.values()) {
                for (double v : c[0]) {
                    maxSpeed = Math.max(maxSpeed, v);
                }
            }
            maxSpeed = Math.ceil(maxSpeed * 2) / 2;
            panel(s, 60, 40, 370, 290, ks, curves, 0, maxSpeed, "speed-up over plain (x)", true);
            panel(s, 500, 40, 370, 290, ks, curves, 1, 1.0, "draft acceptance rate", false);
            s.append("</svg>\n");
            return s.toString();
        }

        private static void panel(StringBuilder s, int x0, int y0, int pw, int ph, int[] ks, Map<Double, double[][]> curves,
                                  int which, double ymax, String label, boolean baseline) {
            String[] colors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
            int kmax = Arrays.stream(ks).max().orElse(10);
            s.append(String.format(Locale.ROOT, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>%n", x0, y0, pw, ph));
            for (int i = 0; i <= 4; i++) {
                double v = ymax * i / 4;
                int y = y0 + ph - (int) (ph * v / ymax);
                s.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#ddd'/>"
                        + "<text x='%d' y='%d' text-anchor='end'>%.2f</text>%n", x0, y, x0 + pw, y, x0 - 5, y + 4, v));
            }
            for (int k : ks) {
                int x = x0 + (int) (pw * (k / (double) kmax));
                s.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle'>%d</text>%n", x, y0 + ph + 16, k));
            }
            s.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle'>k (candidates per round)</text>%n",
                    x0 + pw / 2, y0 + ph + 34));
            s.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle' transform='rotate(-90 %d %d)'>%s</text>%n",
                    x0 - 42, y0 + ph / 2, x0 - 42, y0 + ph / 2, label));
            if (baseline) {
                int y = y0 + ph - (int) (ph / ymax);
                s.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#888' stroke-dasharray='4 3'/>"
                        + "<text x='%d' y='%d' fill='#888'>plain</text>%n", x0, y, x0 + pw, y, x0 + 4, y - 4));
            }
            int c = 0;
            for (Map.Entry<Double, double[][]> e : curves.entrySet()) {
                String color = colors[c % colors.length];
                StringBuilder pts = new StringBuilder();
                for (int i = 0; i < ks.length; i++) {
                    int x = x0 + (int) (pw * (ks[i] / (double) kmax));
                    int y = y0 + ph - (int) (ph * Math.min(e.getValue()[which][i], ymax) / ymax);
                    pts.append(x).append(',').append(y).append(' ');
                    s.append(String.format(Locale.ROOT, "<circle cx='%d' cy='%d' r='3' fill='%s'/>%n", x, y, color));
                }
                s.append(String.format(Locale.ROOT, "<polyline points='%s' fill='none' stroke='%s' stroke-width='2'/>%n",
                        pts.toString().trim(), color));
                s.append(String.format(Locale.ROOT, "<text x='%d' y='%d' fill='%s'>%s</text>%n", x0 + pw - 110,
                        y0 + 18 + 16 * c, color, e.getKey() == 0 ? "greedy" : "temperature " + e.getKey()));
                c++;
            }
        }
    }
}
