import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A bounded load test against a Tandem on loopback: `clients` concurrent clients each send
 * `requests` completions back to back. Reports statuses, latencies of admitted (200) and refused
 * (429) requests, and the server's threads and resident memory (read from /proc) before and after.
 *
 *   java tools/bench/LoadTest.java PORT PID clients requests max_tokens
 */
public class LoadTest {
    public static void main(String[] a) throws Exception {
        int port = Integer.parseInt(a[0]);
        String pid = a[1];
        int clients = Integer.parseInt(a[2]);
        int requests = Integer.parseInt(a[3]);
        int maxTokens = Integer.parseInt(a[4]);
        HttpClient http = HttpClient.newBuilder().executor(Executors.newFixedThreadPool(4)).build();
        String body = "{\"prompt\":\"And it came to pass\",\"max_tokens\":" + maxTokens + ",\"temperature\":0}";
        for (int round = 1; round <= 3; round++) {
            String[] before = proc(pid);
            List<long[]> results = Collections.synchronizedList(new ArrayList<>());  // {status, micros}
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            List<Future<?>> fs = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int c = 0; c < clients; c++) {
                fs.add(pool.submit(() -> {
                    for (int i = 0; i < requests; i++) {
                        long s = System.nanoTime();
                        try {
                            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                                    HttpResponse.BodyHandlers.ofString());
                            results.add(new long[] {r.statusCode(), (System.nanoTime() - s) / 1000});
                        } catch (Exception e) {
                            results.add(new long[] {-1, (System.nanoTime() - s) / 1000});
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
            double wall = (System.nanoTime() - t0) / 1e9;
            pool.shutdown();
            Thread.sleep(1000);
            String[] after = proc(pid);
            List<Long> ok = new ArrayList<>();
            List<Long> busy = new ArrayList<>();
            int other = 0;
            for (long[] r : results) {
                if (r[0] == 200) ok.add(r[1]);
                else if (r[0] == 429) busy.add(r[1]);
                else other++;
            }
            Collections.sort(ok);
            Collections.sort(busy);
            System.out.printf(Locale.ROOT, "round %d: %d clients x %d requests in %.1f s: 200=%d 429=%d other=%d | "
                            + "200 latency ms p50 %.1f p99 %.1f | 429 latency ms p50 %.1f p99 %.1f max %.1f | "
                            + "server threads %s -> %s, RSS %s -> %s kB%n",
                    round, clients, requests, wall, ok.size(), busy.size(), other, pct(ok, 50), pct(ok, 99),
                    pct(busy, 50), pct(busy, 99), busy.isEmpty() ? 0 : busy.get(busy.size() - 1) / 1000.0,
                    before[0], after[0], before[1], after[1]);
        }
        System.exit(0);
    }

    static double pct(List<Long> sorted, int p) {
        return sorted.isEmpty() ? 0 : sorted.get(Math.min(sorted.size() - 1, sorted.size() * p / 100)) / 1000.0;
    }

    static String[] proc(String pid) throws Exception {
        String threads = "?", rss = "?";
        for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/" + pid + "/status"))) {
            if (l.startsWith("Threads:")) threads = l.split("\\s+")[1];
            if (l.startsWith("VmRSS:")) rss = l.split("\\s+")[1];
        }
        return new String[] {threads, rss};
    }
}
