import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Continuous-batching benchmark client (issue 15), run by tools/bench/batching.sh against services it
 * started on loopback. Single file, JDK only: {@code java tools/bench/BatchingBench.java COMMAND key=value...}.
 *
 * <ul>
 *   <li>{@code closed}: N closed-loop clients (each sends its next request when the last one ended) per
 *       mode and N, streamed /v1/completions, greedy, {@code ignore_eos}, held-out prompts. A cell is a
 *       warm-up, then a measured window; requests started in the window are the measured ones, and every
 *       client keeps sending (unmeasured) requests until the last measured one has ended, so the load stays
 *       at N throughout. Modes rotate within a run; each (mode, N) row is written per run, then the median
 *       over runs.</li>
 *   <li>{@code longprompt}: 8 streams decode (closed loop), then a request with a long prompt arrives now
 *       and then; the streams' inter-token gaps before it arrives against while its prompt is prefilled.</li>
 *   <li>{@code plot}: an SVG of the medians CSV (tokens/s, ITL p50 and p99 against N, one line per mode).</li>
 * </ul>
 *
 * Requests ask for {@code logprobs: 0}, so every streamed event lists its tokens' log-probabilities and the
 * client counts tokens per event exactly: with {@code ignore_eos} these models soon emit EOS tokens, whose text
 * is empty, and without log-probabilities the server sends no event for them (a gap over 20 such tokens would
 * look like one 20-step stall).
 *
 * <p>Definitions, client side: TTFT = request sent to its first token event. Inter-token latency (ITL) is per
 * token: the gap between consecutive token events of a request, divided by the tokens in the later event (the
 * server sends one event per token as it becomes final, so an assisted round's accepted tokens arrive as
 * events microseconds apart: a near-zero gap each; the CSV's tokens_per_event checks one token per event).
 * TPOT = (last event - first event) / (completion tokens - 1), per request. Aggregate tokens/s = tokens in the
 * events all clients received inside the measured window / window length.
 */
public class BatchingBench {
    /** A token event: the chosen tokens' log-probabilities, one per token in the event. */
    static final Pattern TOKEN_LOGPROBS = Pattern.compile("\"token_logprobs\":\\[([^\\]]*)\\]");
    static final Pattern COMPLETION_TOKENS = Pattern.compile("\"completion_tokens\":(\\d+)");
    static final Pattern PROMPT_TOKENS = Pattern.compile("\"prompt_tokens\":(\\d+)");
    static final Pattern SPEC_STEPS = Pattern.compile("\"num_spec_steps\":(\\d+)");
    static final Pattern DRAFT_TOKENS = Pattern.compile("\"num_draft_tokens\":(\\d+)");
    static final Pattern ACCEPTED = Pattern.compile("\"num_accepted_tokens\":(\\d+)");
    static final Pattern MODE = Pattern.compile("\"decoding\":\\{\"mode\":\"(\\w+)\"");

    static HttpClient http;
    /** Sampling temperature of every request (closed: {@code temperature=}, default 0, greedy). */
    static double temperature = 0;
    /** Streams currently open, so a stuck one can be closed at the end of a cell. */
    static final Set<InputStream> open = ConcurrentHashMap.newKeySet();

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            a.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
        switch (args[0]) {
            case "closed" -> closed(a);
            case "longprompt" -> longPrompt(a);
            case "plot" -> plot(Path.of(a.get("in")), Path.of(a.get("out")), a.getOrDefault("title", ""));
            default -> throw new IllegalArgumentException("command: closed | longprompt | plot");
        }
        System.exit(0);
    }

    // ---------------------------------------------------------------- one streamed request

    /** One streamed completion as the client saw it. */
    static final class Req {
        long start;
        final List<Long> events = new ArrayList<>();  // arrival of each token event (nanoTime)
        final List<Integer> eventTokens = new ArrayList<>();  // tokens in that event
        int status;
        String error;       // transport failure or an error event in the stream
        boolean finished;   // the stream ended with [DONE]
        int completionTokens = -1;
        int promptTokens = -1;
        boolean hasDecoding;
        int specSteps, draftTokens, accepted;
        boolean measured;

        long first() {
            return events.isEmpty() ? 0 : events.get(0);
        }
    }

    static String body(String prompt, int maxTokens, boolean assisted) {
        return "{\"prompt\":\"" + json(prompt) + "\",\"max_tokens\":" + maxTokens + ",\"temperature\":" + temperature + ",\"ignore_eos\":true,\"logprobs\":0,"
                + "\"assisted\":" + assisted + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.toString();
    }

    static Req stream(int port, String body) {
        Req r = new Req();
        r.start = System.nanoTime();
        try {
            HttpResponse<InputStream> resp = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                    .timeout(Duration.ofSeconds(120)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
            r.status = resp.statusCode();
            InputStream in = resp.body();
            open.add(in);
            try (BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    long t = System.nanoTime();
                    Matcher m;
                    if (!line.startsWith("data: ")) {
                        if (r.status != 200 && !line.isBlank()) r.error = line;  // a JSON error body
                        continue;
                    }
                    if (line.equals("data: [DONE]")) {
                        r.finished = true;
                    } else if (line.contains("\"error\"")) {
                        r.error = line;
                    } else if (line.contains("\"choices\":[{") && (m = TOKEN_LOGPROBS.matcher(line)).find()) {
                        r.events.add(t);
                        r.eventTokens.add(m.group(1).isBlank() ? 0 : m.group(1).split(",").length);
                    } else {
                        m = COMPLETION_TOKENS.matcher(line);
                        if (m.find()) r.completionTokens = Integer.parseInt(m.group(1));
                        m = PROMPT_TOKENS.matcher(line);
                        if (m.find()) r.promptTokens = Integer.parseInt(m.group(1));
                        if (MODE.matcher(line).find()) {
                            r.hasDecoding = true;
                            r.specSteps = intOf(SPEC_STEPS, line);
                            r.draftTokens = intOf(DRAFT_TOKENS, line);
                            r.accepted = intOf(ACCEPTED, line);
                        }
                    }
                }
            } finally {
                open.remove(in);
            }
        } catch (IOException | InterruptedException e) {
            r.error = String.valueOf(e);
        }
        return r;
    }

    static int intOf(Pattern p, String s) {
        Matcher m = p.matcher(s);
        return m.find() ? Integer.parseInt(m.group(1)) : 0;
    }

    // ---------------------------------------------------------------- closed loop

    record Mode(String name, int port, boolean assisted) {
    }

    static void closed(Map<String, String> a) throws Exception {
        List<Mode> modes = new ArrayList<>();
        for (String m : a.get("modes").split(",")) {  // name:port:assisted
            String[] p = m.split(":");
            modes.add(new Mode(p[0], Integer.parseInt(p[1]), Boolean.parseBoolean(p[2])));
        }
        int[] ns = Arrays.stream(a.getOrDefault("clients", "1,2,4,8,16").split(",")).mapToInt(Integer::parseInt).toArray();
        int[] maxTokens = Arrays.stream(a.getOrDefault("max_tokens", "64").split(",")).mapToInt(Integer::parseInt).toArray();
        int runs = Integer.parseInt(a.getOrDefault("runs", "3"));
        temperature = Double.parseDouble(a.getOrDefault("temperature", "0"));
        double warm = Double.parseDouble(a.getOrDefault("warmup", "3"));
        double seconds = Double.parseDouble(a.getOrDefault("seconds", "15"));
        List<String> prompts = Files.readAllLines(Path.of(a.getOrDefault("prompts", "tools/bench/prompts/heldout.txt")))
                .stream().filter(s -> !s.isBlank()).map(s -> s.replace("\\n", "\n")).toList();  // passages.txt: \n between verses
        Path runsCsv = Path.of(a.get("runs_csv"));
        Path mediansCsv = Path.of(a.get("csv"));

        // Every mode once at N = 4 before the first measured cell (JIT, the auto policy's start-up profile).
        for (Mode m : modes) {
            cell(m, 4, maxTokens[0], 0, Double.parseDouble(a.getOrDefault("initial_warmup", "5")), prompts, 0);
        }
        String header = "run,mode,clients,max_tokens,requests,completed,non200,errors,stuck,tokens_per_event,tokens_per_s,"
                + "ttft_p50_ms,ttft_p99_ms,itl_p50_ms,itl_p99_ms,tpot_p50_ms,spec_steps,draft_tokens,accepted_tokens,"
                + "acceptance,mean_acceptance_length,k_per_spec_step,candidates_per_decode_step";
        List<double[]> rows = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        try (var out = Files.newBufferedWriter(runsCsv)) {
            out.write(header + "\n");
            for (int run = 1; run <= runs; run++) {
                for (int mt : maxTokens) {
                    for (int ni = 0; ni < ns.length; ni++) {
                        for (int j = 0; j < modes.size(); j++) {
                            Mode m = modes.get((j + run + ni) % modes.size());  // the order rotates
                            double[] v = cell(m, ns[ni], mt, warm, seconds, prompts, run * 1000 + ni);
                            String line = run + "," + m.name() + "," + ns[ni] + "," + mt + "," + csv(v);
                            out.write(line + "\n");
                            out.flush();
                            System.out.println(line);
                            rows.add(v);
                            labels.add(m.name() + "," + ns[ni] + "," + mt);
                        }
                    }
                }
            }
        }
        // medians over runs, per (mode, N, max_tokens); the same column order, "run" dropped
        try (var out = Files.newBufferedWriter(mediansCsv)) {
            out.write(header.substring("run,".length()) + ",runs\n");
            System.out.println();
            System.out.println("| mode | N | max_tokens | tokens/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | TPOT p50 ms | k per spec step | candidates per decode step | acceptance | requests | non-200 / errors / stuck |");
            System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            for (int mt : maxTokens) {
                for (Mode m : modes) {
                    for (int n : ns) {
                        String key = m.name() + "," + n + "," + mt;
                        List<double[]> sel = new ArrayList<>();
                        for (int i = 0; i < rows.size(); i++) if (labels.get(i).equals(key)) sel.add(rows.get(i));
                        double[] med = new double[sel.get(0).length];
                        for (int c = 0; c < med.length; c++) {
                            final int col = c;
                            double[] xs = sel.stream().mapToDouble(r -> r[col]).sorted().toArray();
                            med[c] = c >= 2 && c <= 4 ? Arrays.stream(xs).sum() : xs[xs.length / 2];  // failures: totals over runs
                        }
                        out.write(key + "," + csv(med) + "," + sel.size() + "\n");
                        System.out.printf(Locale.ROOT, "| %s | %d | %d | %.1f | %.1f / %.1f | %.2f / %.2f | %.2f | %s | %s | %s | %.0f | %.0f / %.0f / %.0f |%n",
                                m.name(), n, mt, med[6], med[7], med[8], med[9], med[10], med[11],
                                m.assisted() ? f2(med[17]) : "–", m.assisted() ? f2(med[18]) : "–",
                                m.assisted() ? f3(med[15]) : "–", med[0], med[2], med[3], med[4]);
                    }
                }
            }
        }
    }

    static String f2(double x) {
        return String.format(Locale.ROOT, "%.2f", x);
    }

    static String f3(double x) {
        return String.format(Locale.ROOT, "%.3f", x);
    }

    static String csv(double[] v) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < v.length; i++) {
            if (i > 0) b.append(',');
            b.append(v[i] == Math.rint(v[i]) && Math.abs(v[i]) < 1e9 ? String.valueOf((long) v[i]) : String.format(Locale.ROOT, "%.4f", v[i]));
        }
        return b.toString();
    }

    /**
     * One (mode, N) cell. Returns, in CSV order: requests, completed, non200, errors, stuck, tokens_per_event,
     * tokens_per_s, ttft p50/p99, itl p50/p99, tpot p50, mean spec_steps, draft_tokens, accepted_tokens,
     * acceptance, mean acceptance length, k per spec step, candidates per decode step.
     */
    static double[] cell(Mode m, int n, int maxTokens, double warm, double seconds, List<String> prompts, int seed)
            throws InterruptedException {
        long t0 = System.nanoTime();
        long tWarm = t0 + (long) (warm * 1e9);
        long tEnd = tWarm + (long) (seconds * 1e9);
        AtomicInteger outstanding = new AtomicInteger();
        List<Req> all = Collections.synchronizedList(new ArrayList<>());
        List<Thread> clients = new ArrayList<>();
        for (int c = 0; c < n; c++) {
            final int client = c;
            clients.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; ; i++) {
                    long s = System.nanoTime();
                    boolean measured = s >= tWarm && s < tEnd;
                    if (s >= tEnd && outstanding.get() == 0) break;
                    if (measured) outstanding.incrementAndGet();
                    String prompt = prompts.get(Math.floorMod(seed + client * 7 + i * 13, prompts.size()));
                    Req r = stream(m.port(), body(prompt, maxTokens, m.assisted()));
                    r.measured = measured;
                    all.add(r);
                    if (measured) outstanding.decrementAndGet();
                    if (r.status != 200 && r.error != null && r.status != 429) {
                        sleep(100);  // a transport failure: do not spin
                    }
                }
            }));
        }
        long deadline = tEnd + 120_000_000_000L;
        int stuck = 0;
        for (Thread t : clients) {
            t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
            if (t.isAlive()) stuck++;
        }
        if (stuck > 0) {  // close what is still open, then let the threads end
            for (InputStream in : open) {
                try { in.close(); } catch (IOException ignored) { }
            }
            for (Thread t : clients) t.join(5000);
        }
        List<Req> measured;
        List<Req> every;
        synchronized (all) {
            every = new ArrayList<>(all);
        }
        measured = every.stream().filter(r -> r.measured).toList();
        int non200 = 0, errors = 0, completed = 0;
        long eventsAll = 0, tokensAll = 0;
        for (Req r : every) {
            eventsAll += r.events.size();
            for (int k : r.eventTokens) tokensAll += k;
        }
        double tokensPerEvent = eventsAll == 0 ? 0 : (double) tokensAll / eventsAll;
        long inWindow = 0;  // tokens received inside the measured window, by every client
        for (Req r : every) {
            for (int i = 0; i < r.events.size(); i++) if (r.events.get(i) >= tWarm && r.events.get(i) < tEnd) inWindow += r.eventTokens.get(i);
        }
        List<Double> ttft = new ArrayList<>(), itl = new ArrayList<>(), tpot = new ArrayList<>();
        long spec = 0, draft = 0, acc = 0, decodeSteps = 0;
        int withDecoding = 0;
        for (Req r : measured) {
            if (r.status != 200) non200++;
            else if (r.error != null || !r.finished) errors++;
            if (r.status != 200 || r.error != null || !r.finished) continue;
            completed++;
            if (!r.events.isEmpty()) ttft.add((r.first() - r.start) / 1e6);
            itl.addAll(gaps(r));
            if (r.completionTokens > 1 && r.events.size() > 1) {
                tpot.add((r.events.get(r.events.size() - 1) - r.first()) / 1e6 / (r.completionTokens - 1));
            }
            if (r.hasDecoding) {
                withDecoding++;
                spec += r.specSteps;
                draft += r.draftTokens;
                acc += r.accepted;
                // each decode step after the prefill emits its token plus the accepted candidates
                decodeSteps += Math.max(1, r.completionTokens - 1 - r.accepted);
            }
        }
        Collections.sort(ttft);
        Collections.sort(itl);
        Collections.sort(tpot);
        double w = withDecoding == 0 ? 1 : withDecoding;
        double[] v = {
            measured.size(), completed, non200, errors, stuck, tokensPerEvent, inWindow / seconds,
            pct(ttft, 50), pct(ttft, 99), pct(itl, 50), pct(itl, 99), pct(tpot, 50),
            spec / w, draft / w, acc / w,
            draft == 0 ? 0 : (double) acc / draft,
            spec == 0 ? 0 : 1 + (double) acc / spec,
            spec == 0 ? 0 : (double) draft / spec,
            decodeSteps == 0 ? 0 : (double) draft / decodeSteps,
        };
        if (seconds > 0) {
            System.err.printf(Locale.ROOT, "  %s N=%d: %d requests, %.1f tokens/s, ITL p50 %.2f ms%n", m.name(), n, measured.size(), v[6], v[9]);
        }
        return v;
    }

    /**
     * A request's inter-token gaps in ms, one per token after its first event: an event's gap since the previous
     * event, shared evenly by the tokens in it (one token per event with this server; checked by tokens_per_event).
     */
    static List<Double> gaps(Req r) {
        List<Double> g = new ArrayList<>();
        for (int i = 1; i < r.events.size(); i++) {
            int k = r.eventTokens.get(i);
            for (int j = 0; j < k; j++) g.add((r.events.get(i) - r.events.get(i - 1)) / 1e6 / k);
        }
        return g;
    }

    static double pct(List<Double> sorted, double p) {
        if (sorted.isEmpty()) return Double.NaN;
        int i = (int) Math.ceil(p / 100 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---------------------------------------------------------------- long prompt amid streams

    /**
     * configs=label:port,... For each run and config (alternating): `streams` closed-loop plain streams of
     * `stream_tokens` tokens; after a warm-up, `arrivals` long-prompt requests one after another, each
     * `spacing` seconds after the previous one ended. For each arrival: "before" = the streams' gaps ending in the
     * second before it was sent; "while" = gaps ending from its sending until its first token (plus half the median
     * gap before it, so the step that finishes the prefill, whose stream tokens arrive next to the long request's
     * first token, is included).
     */
    static void longPrompt(Map<String, String> a) throws Exception {
        int runs = Integer.parseInt(a.getOrDefault("runs", "3"));
        int streams = Integer.parseInt(a.getOrDefault("streams", "8"));
        int streamTokens = Integer.parseInt(a.getOrDefault("stream_tokens", "128"));
        int arrivals = Integer.parseInt(a.getOrDefault("arrivals", "6"));
        double spacing = Double.parseDouble(a.getOrDefault("spacing", "1.5"));
        double warm = Double.parseDouble(a.getOrDefault("warmup", "3"));
        int targetTokens = Integer.parseInt(a.getOrDefault("prompt_tokens", "248"));
        boolean assisted = Boolean.parseBoolean(a.getOrDefault("assisted", "false"));
        List<String> prompts = Files.readAllLines(Path.of(a.getOrDefault("prompts", "tools/bench/prompts/heldout.txt")))
                .stream().filter(s -> !s.isBlank()).map(s -> s.replace("\\n", "\n")).toList();  // passages.txt: \n between verses
        List<String[]> configs = new ArrayList<>();
        for (String c : a.get("configs").split(",")) configs.add(c.split(":"));

        String longPrompt = longPrompt(Integer.parseInt(configs.get(0)[1]), prompts, targetTokens);
        String header = "run,config,prompt_tokens,arrivals,long_ttft_p50_ms,long_ttft_max_ms,gaps_before,itl_before_p50_ms,"
                + "itl_before_p99_ms,itl_before_max_ms,gaps_while,itl_while_p50_ms,itl_while_p99_ms,itl_while_max_ms,stream_errors";
        Map<String, List<double[]>> byConfig = new LinkedHashMap<>();
        try (var out = Files.newBufferedWriter(Path.of(a.get("runs_csv")))) {
            out.write(header + "\n");
            for (int run = 1; run <= runs; run++) {
                for (int ci = 0; ci < configs.size(); ci++) {
                    String[] c = configs.get((ci + run) % configs.size());
                    double[] v = longPromptRun(Integer.parseInt(c[1]), streams, streamTokens, arrivals, spacing, warm,
                            prompts, longPrompt, assisted);
                    String line = run + "," + c[0] + "," + csv(v);
                    out.write(line + "\n");
                    out.flush();
                    System.out.println(line);
                    byConfig.computeIfAbsent(c[0], k -> new ArrayList<>()).add(v);
                }
            }
        }
        try (var out = Files.newBufferedWriter(Path.of(a.get("csv")))) {
            out.write(header.substring("run,".length()) + ",runs\n");
            System.out.println();
            System.out.println("| config | prompt tokens | long request TTFT p50 ms | streams' ITL before: p50 / p99 / max ms (gaps) | while prefilled: p50 / p99 / max ms (gaps) | stream errors |");
            System.out.println("| --- | --- | --- | --- | --- | --- |");
            for (var e : byConfig.entrySet()) {
                double[] med = new double[e.getValue().get(0).length];
                for (int col = 0; col < med.length; col++) {
                    final int cc = col;
                    double[] xs = e.getValue().stream().mapToDouble(r -> r[cc]).sorted().toArray();
                    med[col] = xs[xs.length / 2];
                }
                out.write(e.getKey() + "," + csv(med) + "," + e.getValue().size() + "\n");
                System.out.printf(Locale.ROOT, "| %s | %.0f | %.1f | %.2f / %.2f / %.2f (%.0f) | %.2f / %.2f / %.2f (%.0f) | %.0f |%n",
                        e.getKey(), med[0], med[2], med[5], med[6], med[7], med[4], med[9], med[10], med[11], med[8], med[12]);
            }
        }
    }

    /** Held-out verses joined until the target counts about {@code tokens} prompt tokens (asked of the server). */
    static String longPrompt(int port, List<String> prompts, int tokens) {
        String all = String.join(" ", prompts);
        String[] words = all.split(" ");
        int lo = 1, hi = words.length;
        while (lo < hi) {  // the most words whose prompt is at most `tokens` tokens
            int mid = (lo + hi + 1) / 2;
            Req r = stream(port, body(String.join(" ", Arrays.copyOf(words, mid)), 1, false));
            if (r.status == 200 && r.promptTokens >= 0 && r.promptTokens <= tokens) lo = mid;
            else hi = mid - 1;
        }
        return String.join(" ", Arrays.copyOf(words, lo));
    }

    static double[] longPromptRun(int port, int streams, int streamTokens, int arrivals, double spacing, double warm,
                                  List<String> prompts, String longPrompt, boolean assisted) throws InterruptedException {
        AtomicBoolean stop = new AtomicBoolean();
        List<Req> all = Collections.synchronizedList(new ArrayList<>());
        List<Thread> clients = new ArrayList<>();
        for (int c = 0; c < streams; c++) {
            final int client = c;
            clients.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; !stop.get(); i++) {
                    all.add(stream(port, body(prompts.get(Math.floorMod(client * 7 + i * 13, prompts.size())), streamTokens, assisted)));
                }
            }));
        }
        sleep((long) (warm * 1000));
        List<Req> longs = new ArrayList<>();
        for (int i = 0; i < arrivals; i++) {
            longs.add(stream(port, body(longPrompt, 4, false)));
            sleep((long) (spacing * 1000));
        }
        stop.set(true);
        for (Thread t : clients) {
            t.join(120_000);
        }
        List<Req> streamsDone;
        synchronized (all) {
            streamsDone = new ArrayList<>(all);
        }
        int errors = 0;
        List<long[]> gaps = new ArrayList<>();  // {end time, gap ns}
        for (Req r : streamsDone) {
            if (r.status != 200 || r.error != null || !r.finished) errors++;
            for (int i = 1; i < r.events.size(); i++) {
                int k = r.eventTokens.get(i);
                for (int j = 0; j < k; j++) gaps.add(new long[] {r.events.get(i), (r.events.get(i) - r.events.get(i - 1)) / k});
            }
        }
        List<Double> before = new ArrayList<>(), during = new ArrayList<>(), ttft = new ArrayList<>();
        int promptTokens = -1;
        for (Req l : longs) {
            if (l.status != 200 || l.events.isEmpty()) {
                errors++;
                continue;
            }
            promptTokens = l.promptTokens;
            ttft.add((l.first() - l.start) / 1e6);
            List<Double> b = new ArrayList<>();
            for (long[] g : gaps) if (g[0] >= l.start - 1_000_000_000L && g[0] < l.start) b.add(g[1] / 1e6);
            Collections.sort(b);
            double slack = b.isEmpty() ? 0 : pct(b, 50) * 1e6 / 2;
            for (long[] g : gaps) if (g[0] >= l.start && g[0] <= l.first() + slack) during.add(g[1] / 1e6);
            before.addAll(b);
        }
        Collections.sort(before);
        Collections.sort(during);
        Collections.sort(ttft);
        System.err.printf(Locale.ROOT, "  port %d: long TTFT p50 %.1f ms; ITL p99 before %.2f, while %.2f ms%n", port, pct(ttft, 50),
                pct(before, 99), pct(during, 99));
        return new double[] {promptTokens, ttft.size(), pct(ttft, 50), ttft.isEmpty() ? Double.NaN : ttft.get(ttft.size() - 1),
            before.size(), pct(before, 50), pct(before, 99), before.isEmpty() ? Double.NaN : before.get(before.size() - 1),
            during.size(), pct(during, 50), pct(during, 99), during.isEmpty() ? Double.NaN : during.get(during.size() - 1), errors};
    }

    // ---------------------------------------------------------------- plot

    /** Three panels from the medians CSV: tokens/s, ITL p50 and ITL p99 against N (log2 axis), a line per mode. */
    static void plot(Path in, Path out, String title) throws IOException {
        List<String> lines = Files.readAllLines(in);
        List<String> head = Arrays.asList(lines.get(0).split(","));
        int cMode = head.indexOf("mode"), cN = head.indexOf("clients"), cMt = head.indexOf("max_tokens");
        String[][] panels = {{"tokens_per_s", "aggregate tokens/s"}, {"itl_p50_ms", "inter-token latency p50 (ms, per event)"},
            {"itl_p99_ms", "inter-token latency p99 (ms, per event)"}};
        Map<String, List<double[]>> series = new LinkedHashMap<>();  // mode (max_tokens) -> rows
        for (String l : lines.subList(1, lines.size())) {
            String[] f = l.split(",");
            String key = f[cMode] + (f[cMt].equals("64") ? "" : " (" + f[cMt] + " tokens)");
            double[] row = new double[head.size()];
            for (int i = 0; i < f.length && i < row.length; i++) {
                try { row[i] = Double.parseDouble(f[i]); } catch (NumberFormatException e) { row[i] = Double.NaN; }
            }
            series.computeIfAbsent(key, k -> new ArrayList<>()).add(row);
        }
        String[] colours = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
        int pw = 300, ph = 220, ml = 55, mt = 40, gap = 70;
        int width = ml + panels.length * (pw + gap), height = mt + ph + 90;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">%n", width, height));
        s.append(String.format(Locale.ROOT, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>%n", width, height));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" font-size=\"13\">%s</text>%n", ml, esc(title)));
        double minN = Double.MAX_VALUE, maxN = 0;
        for (List<double[]> rows : series.values()) for (double[] r : rows) { minN = Math.min(minN, r[cN]); maxN = Math.max(maxN, r[cN]); }
        for (int p = 0; p < panels.length; p++) {
            int col = head.indexOf(panels[p][0]);
            int x0 = ml + p * (pw + gap);
            double maxY = 0;
            for (List<double[]> rows : series.values()) for (double[] r : rows) if (!Double.isNaN(r[col])) maxY = Math.max(maxY, r[col]);
            maxY = nice(maxY);
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s</text>%n", x0, mt - 8, esc(panels[p][1])));
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>%n", x0, mt, pw, ph));
            for (int t = 0; t <= 4; t++) {
                double yv = maxY * t / 4;
                double y = mt + ph - ph * t / 4.0;
                s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>%n", x0, y, x0 + pw, y));
                s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", x0 - 4, y + 4,
                        maxY >= 10 ? String.format(Locale.ROOT, "%.0f", yv) : String.format(Locale.ROOT, "%.2f", yv)));
            }
            final double lo = Math.log(minN) / Math.log(2), hi = Math.log(maxN) / Math.log(2);
            java.util.function.DoubleUnaryOperator xOf = n -> x0 + 15 + (pw - 30) * (hi == lo ? 0.5 : (Math.log(n) / Math.log(2) - lo) / (hi - lo));
            for (double n = minN; n <= maxN; n *= 2) {
                s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>%n", xOf.applyAsDouble(n), mt + ph + 14, n));
            }
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">concurrent clients N</text>%n", x0 + pw / 2, mt + ph + 30));
            int si = 0;
            for (var e : series.entrySet()) {
                String colour = colours[si++ % colours.length];
                StringBuilder pts = new StringBuilder();
                for (double[] r : e.getValue()) {
                    if (Double.isNaN(r[col])) continue;
                    double x = xOf.applyAsDouble(r[cN]), y = mt + ph - ph * r[col] / maxY;
                    pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
                    s.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>%n", x, y, colour));
                }
                s.append(String.format(Locale.ROOT, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>%n", pts.toString().trim(), colour));
            }
        }
        int si = 0, lx = ml;
        for (String k : series.keySet()) {
            String colour = colours[si++ % colours.length];
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>%n", lx, height - 22, lx + 20, height - 22, colour));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s</text>%n", lx + 25, height - 18, esc(k)));
            lx += 40 + 7 * k.length();
        }
        s.append("</svg>\n");
        Files.writeString(out, s);
    }

    static double nice(double max) {
        if (max <= 0) return 1;
        double mag = Math.pow(10, Math.floor(Math.log10(max)));
        for (double m : new double[] {1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10}) if (m * mag >= max) return m * mag;
        return 10 * mag;
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
