import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Overload measurement against a Tandem on loopback (started with few decoding slots and a short
 * queue): fires `burst` long completions at the same instant and records what each got (status,
 * time to answer, tokens for a 200, error code and Retry-After for a refusal), while polling
 * /q/health/ready every 50 ms. Prints the status distribution, time-to-429 (median, p99, max), whether
 * every admitted request completed its max_tokens, and what readiness said during the overload.
 * Writes one CSV row per request and one per readiness sample.
 *
 *   java tools/bench/Overload.java PORT burst max_tokens requests.csv readiness.csv
 */
public class Overload {
    static final String HOST = "127.0.0.1";  // loopback only

    record Result(int i, int status, double ms, int tokens, String code, String retryAfter) {
    }

    record Probe(double ms, int status, String reason) {
    }

    public static void main(String[] a) throws Exception {
        int port = Integer.parseInt(a[0]);
        int burst = Integer.parseInt(a[1]);
        int maxTokens = Integer.parseInt(a[2]);
        Path requestsCsv = Path.of(a[3]);
        Path readinessCsv = Path.of(a[4]);
        String base = "http://" + HOST + ":" + port;
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5))
                .executor(Executors.newVirtualThreadPerTaskExecutor()).build();
        String body = "{\"prompt\":\"And it came to pass\",\"max_tokens\":" + maxTokens + ",\"ignore_eos\":true,\"temperature\":0}";

        for (int i = 0; i < 5; i++) {  // warm-up (class loading, JIT) so the burst measures the steady server
            http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions")).timeout(Duration.ofSeconds(60))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body.replace("\"max_tokens\":" + maxTokens, "\"max_tokens\":4")))
                    .build(), HttpResponse.BodyHandlers.ofString());
        }

        // readiness, every 50 ms, from 0.5 s before the burst until 0.5 s after its last answer
        long t0 = System.nanoTime();
        List<Probe> probes = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean polling = new AtomicBoolean(true);
        Thread poller = Thread.ofPlatform().start(() -> {
            while (polling.get()) {
                try {
                    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/q/health/ready"))
                            .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                    Matcher reason = Pattern.compile("\"reason\"\\s*:\\s*\"([^\"]*)\"").matcher(r.body());
                    probes.add(new Probe(ms(t0), r.statusCode(), reason.find() ? reason.group(1) : ""));
                    Thread.sleep(50);
                } catch (Exception e) {
                    probes.add(new Probe(ms(t0), -1, e.getClass().getSimpleName()));
                }
            }
        });
        Thread.sleep(500);

        CountDownLatch gate = new CountDownLatch(1);
        List<Future<Result>> fs = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(burst);
        for (int i = 0; i < burst; i++) {
            int id = i;
            fs.add(pool.submit(() -> {
                gate.await();
                long s = System.nanoTime();
                try {
                    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                            .timeout(Duration.ofSeconds(300)).header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
                    Matcher tokens = Pattern.compile("\"completion_tokens\":(\\d+)").matcher(r.body());
                    Matcher code = Pattern.compile("\"code\":\"([^\"]*)\"").matcher(r.body());
                    return new Result(id, r.statusCode(), ms(s), tokens.find() ? Integer.parseInt(tokens.group(1)) : 0,
                            code.find() ? code.group(1) : "", r.headers().firstValue("Retry-After").orElse(""));
                } catch (Exception e) {
                    return new Result(id, -1, ms(s), 0, e.getClass().getSimpleName(), "");
                }
            }));
        }
        Thread.sleep(200);  // every thread waiting at the gate
        double burstAt = ms(t0);
        gate.countDown();
        List<Result> results = new ArrayList<>();
        for (Future<Result> f : fs) {
            results.add(f.get());
        }
        double burstEnd = ms(t0);
        pool.shutdown();
        Thread.sleep(500);
        polling.set(false);
        poller.join();

        List<String> rows = new ArrayList<>(List.of("request,status,ms,completion_tokens,code,retry_after"));
        results.forEach(r -> rows.add(String.format(Locale.ROOT, "%d,%d,%.1f,%d,%s,%s", r.i(), r.status(), r.ms(), r.tokens(),
                r.code(), r.retryAfter())));
        Files.write(requestsCsv, rows);
        List<String> probeRows = new ArrayList<>(List.of("ms_since_burst,status,reason"));
        synchronized (probes) {
            probes.forEach(p -> probeRows.add(String.format(Locale.ROOT, "%.1f,%d,\"%s\"", p.ms() - burstAt, p.status(), p.reason())));
        }
        Files.write(readinessCsv, probeRows);

        Map<Integer, Integer> statuses = new TreeMap<>();
        results.forEach(r -> statuses.merge(r.status(), 1, Integer::sum));
        List<Double> refused = results.stream().filter(r -> r.status() == 429).map(Result::ms).sorted().toList();
        List<Result> admitted = results.stream().filter(r -> r.status() == 200).toList();
        long complete = admitted.stream().filter(r -> r.tokens() == maxTokens).count();
        List<Double> admittedMs = admitted.stream().map(Result::ms).sorted().toList();
        System.out.printf(Locale.ROOT, "burst of %d completions (max_tokens %d), answered in %.0f ms%n", burst, maxTokens,
                burstEnd - burstAt);
        System.out.println("statuses: " + statuses + "   codes: " + codes(results));
        System.out.printf(Locale.ROOT, "time to 429: median %.1f ms, p99 %.1f ms, max %.1f ms (Retry-After %s)%n",
                pct(refused, 50), pct(refused, 99), refused.isEmpty() ? 0 : refused.get(refused.size() - 1),
                results.stream().filter(r -> r.status() == 429).map(Result::retryAfter).distinct().toList());
        System.out.printf(Locale.ROOT, "admitted: %d, of which %d completed all %d tokens; latency median %.0f ms, max %.0f ms%n",
                admitted.size(), complete, maxTokens, pct(admittedMs, 50), admittedMs.isEmpty() ? 0 : admittedMs.get(admittedMs.size() - 1));

        // readiness while the burst was being answered
        Map<String, Integer> during = new TreeMap<>();
        double firstDown = -1;
        double lastDown = -1;
        synchronized (probes) {
            for (Probe p : probes) {
                double at = p.ms() - burstAt;
                if (at < 0 || p.ms() > burstEnd) {
                    continue;
                }
                String key = p.status() == 200 ? "UP" : "DOWN " + p.status() + (p.reason().isEmpty() ? "" : " (" + p.reason() + ")");
                during.merge(key, 1, Integer::sum);
                if (p.status() != 200) {
                    firstDown = firstDown < 0 ? at : firstDown;
                    lastDown = at;
                }
            }
        }
        System.out.println("readiness during the overload (50 ms samples): " + during
                + (firstDown < 0 ? "" : String.format(Locale.ROOT, ", DOWN from %.0f ms to %.0f ms after the burst", firstDown, lastDown)));
        HttpResponse<String> after = http.send(HttpRequest.newBuilder(URI.create(base + "/q/health/ready"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        System.out.println("readiness after: " + after.statusCode() + " " + after.body().replaceAll("\\s+", " "));
        System.out.println("CSV: " + requestsCsv + ", " + readinessCsv);
        boolean ok = complete == admitted.size() && statuses.keySet().stream().allMatch(s -> s == 200 || s == 429)
                && after.statusCode() == 200;
        System.exit(ok ? 0 : 1);
    }

    static Map<String, Integer> codes(List<Result> results) {
        Map<String, Integer> m = new TreeMap<>();
        results.stream().filter(r -> r.status() != 200).forEach(r -> m.merge(r.code(), 1, Integer::sum));
        return m;
    }

    static double ms(long since) {
        return (System.nanoTime() - since) / 1e6;
    }

    static double pct(List<Double> sorted, int p) {
        return sorted.isEmpty() ? 0 : sorted.get(Math.min(sorted.size() - 1, sorted.size() * p / 100));
    }
}
