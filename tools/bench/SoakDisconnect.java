import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Disconnect soak against a Tandem on loopback: sends `n` streaming requests that hang up right after
 * the first generated chunk (a mix of completions, chat and TGI generate_stream, plain and assisted),
 * `concurrency` at a time. Every 1,000 cancels (and at the end) it waits for the server to notice the
 * last hang-ups, runs a full GC in the server (jcmd GC.run) and records its resident memory (VmRSS),
 * heap used, threads, and the running/waiting/KV-reserved gauges from /q/metrics. A leak shows as a
 * rising column; a slot or KV reservation that a cancelled request never gave back shows as a
 * running or reserved value that stays above 0. The server's own counts of cancelled and finished
 * generations per batch show the hang-ups really stop the decoding (each request asks for 64 tokens).
 *
 * Half of the hang-ups are an orderly close (FIN), half an abortive one (RST), as clients and proxies
 * do both. Exits non-zero when the server is not ready at the end or a slot or reservation leaked.
 *
 *   java tools/bench/SoakDisconnect.java PORT PID n concurrency csv [max_seconds]
 */
public class SoakDisconnect {
    static final String HOST = "127.0.0.1";  // loopback only
    static final int EVERY = 1_000;

    /** One kind of request: route, body, and how to tell the role opening of a chat stream from a generated chunk. */
    record Kind(String name, String path, String body) {
    }

    static List<Kind> kinds() {
        String prompt = "And it came to pass";
        String common = "\"max_tokens\":64,\"ignore_eos\":true,\"stream\":true";
        List<Kind> k = new ArrayList<>();
        k.add(new Kind("completions plain", "/v1/completions",
                "{\"prompt\":\"" + prompt + "\"," + common + ",\"assisted\":false}"));
        k.add(new Kind("completions draft", "/v1/completions",
                "{\"prompt\":\"" + prompt + "\"," + common + ",\"assisted\":true,\"assistant\":\"draft\"}"));
        k.add(new Kind("completions prompt_lookup", "/v1/completions",
                "{\"prompt\":\"" + prompt + "\"," + common + ",\"assisted\":true,\"assistant\":\"prompt_lookup\",\"temperature\":0}"));
        String messages = "\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]";
        k.add(new Kind("chat plain", "/v1/chat/completions", "{" + messages + "," + common + ",\"assisted\":false}"));
        k.add(new Kind("chat draft", "/v1/chat/completions", "{" + messages + "," + common + ",\"assisted\":true}"));
        String tgi = "{\"inputs\":\"" + prompt + "\",\"parameters\":{\"max_new_tokens\":64,\"do_sample\":true,";
        k.add(new Kind("generate_stream plain", "/generate_stream", tgi + "\"assisted\":false}}"));
        k.add(new Kind("generate_stream draft", "/generate_stream", tgi + "\"assisted\":true}}"));
        return k;
    }

    public static void main(String[] a) throws Exception {
        int port = Integer.parseInt(a[0]);
        long pid = Long.parseLong(a[1]);
        int n = Integer.parseInt(a[2]);
        int concurrency = Integer.parseInt(a[3]);
        Path csv = Path.of(a[4]);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(a.length > 5 ? Long.parseLong(a[5]) : 3600);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        List<Kind> kinds = kinds();
        Map<String, AtomicInteger> outcomes = new ConcurrentHashMap<>();
        List<String> rows = new ArrayList<>();
        rows.add("requests,elapsed_s,rss_kb,heap_used_kb,threads,running,waiting,kv_reserved_bytes,first_chunk_ms_p50,"
                + "first_chunk_ms_p99,"
                + "server_cancelled,server_finished,client_not_cancelled");
        for (int i = 0; i < 2 * kinds.size(); i++) {  // warm-up (class loading, JIT), before the baseline
            hangUpAfterFirstChunk(port, kinds.get(i % kinds.size()), i % 2 == 1);
        }
        Checkpoint start = checkpoint(http, port, pid);
        rows.add(start.row(0, 0, List.of(), 0, start));
        System.out.printf(Locale.ROOT, "%8s %9s %10s %12s %8s %8s %8s %12s %10s %10s %10s %10s %10s%n", "requests", "elapsed_s",
                "rss_kb", "heap_used_kb", "threads", "running", "waiting", "kv_reserved", "first_p50", "first_p99", "srv_cancel",
                "srv_finish", "cli_errors");
        System.out.println(format(0, 0, start, List.of(), 0, start));
        long t0 = System.nanoTime();
        ExecutorService pool = Executors.newFixedThreadPool(concurrency);
        int sent = 0;
        Checkpoint last = start;
        while (sent < n && System.nanoTime() < deadline) {
            int batch = Math.min(EVERY, n - sent);
            List<Long> firstChunkMicros = Collections.synchronizedList(new ArrayList<>());
            AtomicInteger notCancelled = new AtomicInteger();
            List<Future<?>> fs = new ArrayList<>();
            for (int i = 0; i < batch; i++) {
                Kind kind = kinds.get((sent + i) % kinds.size());
                boolean abortive = (sent + i) % 2 == 1;
                fs.add(pool.submit(() -> {
                    String outcome;
                    try {
                        long s = System.nanoTime();
                        outcome = hangUpAfterFirstChunk(port, kind, abortive);
                        if (outcome.equals("cancelled")) {
                            firstChunkMicros.add((System.nanoTime() - s) / 1000);
                        }
                    } catch (IOException e) {
                        outcome = "io: " + e.getClass().getSimpleName();
                    }
                    if (!outcome.equals("cancelled")) {
                        notCancelled.incrementAndGet();
                    }
                    outcomes.computeIfAbsent(kind.name() + " -> " + outcome, x -> new AtomicInteger()).incrementAndGet();
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
            sent += batch;
            double elapsed = (System.nanoTime() - t0) / 1e9;
            Checkpoint previous = last;
            last = checkpoint(http, port, pid);
            List<Long> sorted = new ArrayList<>(firstChunkMicros);
            Collections.sort(sorted);
            rows.add(last.row(sent, elapsed, sorted, notCancelled.get(), previous));
            System.out.println(format(sent, elapsed, last, sorted, notCancelled.get(), previous));
            Files.write(csv, rows);
        }
        pool.shutdownNow();
        System.out.println();
        new TreeMap<>(outcomes).forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-45s %d%n", k, v.get()));
        HttpResponse<String> ready = http.send(HttpRequest.newBuilder(URI.create("http://" + HOST + ":" + port + "/q/health/ready"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        boolean up = ready.statusCode() == 200 && ready.body().contains("\"UP\"");
        boolean clean = last.running == 0 && last.waiting == 0 && last.kvReserved == 0;
        System.out.printf(Locale.ROOT, "%n%d requests sent (%s); heap used after GC %d -> %d kB, RSS %d -> %d kB, threads %d -> %d%n",
                sent, sent < n ? "stopped at the time limit" : "all", start.heapKb, last.heapKb, start.rssKb, last.rssKb,
                start.threads, last.threads);
        System.out.println("ready at the end: " + (up ? "UP" : "NOT UP " + ready.statusCode() + " " + ready.body()));
        System.out.println("slots and KV reservations at the end: running=" + last.running + " waiting=" + last.waiting
                + " kv_reserved_bytes=" + last.kvReserved + (clean ? " (none leaked)" : " LEAKED"));
        System.out.println("CSV: " + csv);
        System.exit(up && clean ? 0 : 1);
    }

    /**
     * Sends one streaming request on a fresh socket, reads until the first generated chunk (a chat
     * stream's role-only opening does not count) and hangs up. Returns "cancelled", or "status NNN"
     * when the server refused, or "ended" when the stream finished before a chunk came.
     */
    static String hangUpAfterFirstChunk(int port, Kind kind, boolean abortive) throws IOException {
        byte[] body = kind.body().getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(HOST, port), 5_000);
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST " + kind.path() + " HTTP/1.1\r\nHost: " + HOST + ":" + port + "\r\nContent-Type: application/json\r\n"
                    + "Accept: text/event-stream\r\nContent-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            InputStream in = s.getInputStream();
            String status = readLine(in);
            if (status == null || !status.startsWith("HTTP/1.1 200")) {
                return "status " + (status == null ? "none" : status.substring(Math.min(9, status.length())).trim());
            }
            String line;
            while ((line = readLine(in)) != null) {  // headers, chunk sizes and events alike: only data lines matter
                if (line.startsWith("data:") && !line.contains("\"role\":\"assistant\"")) {
                    if (abortive) {
                        s.setSoLinger(true, 0);  // close with RST
                    }
                    return "cancelled";
                }
            }
            return "ended";
        }
    }

    private static String readLine(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0) {
            if (c == '\n') {
                return b.toString();
            }
            if (c != '\r') {
                b.append((char) c);
            }
        }
        return b.isEmpty() ? null : b.toString();
    }

    /** The server's state after a full GC, once no request is running any more (up to 15 s to notice hang-ups). */
    record Checkpoint(long rssKb, long heapKb, long threads, long running, long waiting, long kvReserved, long cancelled,
                      long finished) {
        String row(int requests, double elapsed, List<Long> firstChunk, int notCancelled, Checkpoint previous) {
            return String.format(Locale.ROOT, "%d,%.1f,%d,%d,%d,%d,%d,%d,%.1f,%.1f,%d,%d,%d", requests, elapsed, rssKb, heapKb,
                    threads, running, waiting, kvReserved, pct(firstChunk, 50), pct(firstChunk, 99),
                    cancelled - previous.cancelled, finished - previous.finished, notCancelled);
        }
    }

    static Checkpoint checkpoint(HttpClient http, int port, long pid) throws Exception {
        long[] gauges = gauges(http, port);
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while ((gauges[0] > 0 || gauges[1] > 0 || gauges[2] > 0) && System.nanoTime() < until) {
            Thread.sleep(100);
            gauges = gauges(http, port);
        }
        jcmd(pid, "GC.run");
        String heap = jcmd(pid, "GC.heap_info");
        Matcher used = Pattern.compile("used (\\d+)K").matcher(heap);
        long heapKb = used.find() ? Long.parseLong(used.group(1)) : -1;
        String status = Files.readString(Path.of("/proc/" + pid + "/status"));
        return new Checkpoint(procField(status, "VmRSS"), heapKb, procField(status, "Threads"), gauges[0], gauges[1], gauges[2],
                gauges[3], gauges[4]);
    }

    /**
     * {running, waiting, kv reserved bytes, generations cancelled so far, generations finished so far}
     * from the Prometheus text at /q/metrics.
     */
    static long[] gauges(HttpClient http, int port) throws Exception {
        String text = http.send(HttpRequest.newBuilder(URI.create("http://" + HOST + ":" + port + "/q/metrics"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString()).body();
        return new long[] {metric(text, "tandem_num_requests_running"), metric(text, "tandem_num_requests_waiting"),
                metric(text, "tandem_kv_cache_reserved_bytes"), sum(text, "tandem_request_failures_total\\{[^}]*reason=\"cancelled\"[^}]*\\}"),
                sum(text, "tandem_e2e_request_latency_seconds_count(\\{[^}]*\\})?")};
    }

    static long metric(String text, String name) {
        Matcher m = Pattern.compile("(?m)^" + name + "(\\{[^}]*\\})? ([0-9.eE+-]+)$").matcher(text);
        return m.find() ? (long) Double.parseDouble(m.group(2)) : -1;
    }

    /** The sum of the samples whose name and tags match {@code regex}. */
    static long sum(String text, String regex) {
        Matcher m = Pattern.compile("(?m)^" + regex + " ([0-9.eE+-]+)$").matcher(text);
        double total = 0;
        while (m.find()) {
            total += Double.parseDouble(m.group(m.groupCount()));
        }
        return (long) total;
    }

    static long procField(String status, String field) {
        Matcher m = Pattern.compile("(?m)^" + field + ":\\s+(\\d+)").matcher(status);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    /** Runs jcmd (beside the java running this file) against the server. */
    static String jcmd(long pid, String command) throws Exception {
        Path java = Path.of(ProcessHandle.current().info().command().orElse("java"));
        Path jcmd = java.resolveSibling("jcmd");
        Process p = new ProcessBuilder(jcmd.toString(), String.valueOf(pid), command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("jcmd " + command + " failed: " + out);
        }
        return out;
    }

    static String format(int requests, double elapsed, Checkpoint c, List<Long> firstChunk, int notCancelled,
                         Checkpoint previous) {
        return String.format(Locale.ROOT, "%8d %9.1f %10d %12d %8d %8d %8d %12d %10.1f %10.1f %10d %10d %10d", requests, elapsed,
                c.rssKb, c.heapKb, c.threads, c.running, c.waiting, c.kvReserved, pct(firstChunk, 50), pct(firstChunk, 99),
                c.cancelled - previous.cancelled, c.finished - previous.finished, notCancelled);
    }

    static double pct(List<Long> sorted, int p) {
        return sorted.isEmpty() ? 0 : sorted.get(Math.min(sorted.size() - 1, sorted.size() * p / 100)) / 1000.0;
    }
}
