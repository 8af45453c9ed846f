import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Client side of the A/B experiment check: sends `requests` streamed completions from `users`
 * distinct users (one at a time, so latencies are not queueing), measures each request's time to
 * first token and end-to-end time from the client, groups them by the X-Experiment-Arm header,
 * then prints the server's /v1/experiments/assisted report beside it.
 *
 *   java tools/bench/AbClient.java PORT requests users max_tokens prompts.txt
 */
public class AbClient {
    public static void main(String[] a) throws Exception {
        String base = "http://127.0.0.1:" + a[0];
        int requests = Integer.parseInt(a[1]);
        int users = Integer.parseInt(a[2]);
        int maxTokens = Integer.parseInt(a[3]);
        List<String> prompts = java.nio.file.Files.readAllLines(java.nio.file.Path.of(a[4])).stream()
                .map(l -> l.replace("\\n", "\n")).toList();  // prompts/passages.txt: \n between verses
        HttpClient http = HttpClient.newHttpClient();
        Map<String, List<double[]>> arms = new LinkedHashMap<>();  // {ttft, e2e, tokens}
        Pattern usage = Pattern.compile("\"completion_tokens\":(\\d+)");
        for (int i = 0; i < requests; i++) {
            String prompt = prompts.get(i % prompts.size()).replace("\"", "\\\"");
            String body = "{\"prompt\":\"" + prompt + "\",\"max_tokens\":" + maxTokens + ",\"temperature\":0,"
                    + "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"user-" + (i % users) + "\"}";
            long t0 = System.nanoTime();
            HttpResponse<java.io.InputStream> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            String arm = r.headers().firstValue("X-Experiment-Arm").orElse("?");
            long first = 0;
            int tokens = 0;
            try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (line.startsWith("data: ") && line.contains("\"text\":\"") && !line.contains("\"text\":\"\"") && first == 0) {
                        first = System.nanoTime();
                    }
                    Matcher m = usage.matcher(line);
                    if (m.find()) {
                        tokens = Integer.parseInt(m.group(1));
                    }
                }
            }
            long end = System.nanoTime();
            arms.computeIfAbsent(arm, k -> new ArrayList<>()).add(new double[] {(first - t0) / 1e9, (end - t0) / 1e9, tokens});
        }
        System.out.println("client-side measurement:");
        for (Map.Entry<String, List<double[]>> e : arms.entrySet()) {
            List<double[]> s = e.getValue();
            double tokens = s.stream().mapToDouble(x -> x[2]).sum();
            double seconds = s.stream().mapToDouble(x -> x[1]).sum();
            double[] ttft = s.stream().mapToDouble(x -> x[0]).sorted().toArray();
            double[] itl = s.stream().filter(x -> x[2] > 1).mapToDouble(x -> (x[1] - x[0]) / (x[2] - 1)).toArray();
            System.out.printf(Locale.ROOT, "  %-8s requests %d, tokens %.0f, tokens/s %.1f, TTFT p50 %.2f ms, mean inter-token %.3f ms%n",
                    e.getKey(), s.size(), tokens, tokens / seconds, ttft[ttft.length / 2] * 1000,
                    Arrays.stream(itl).average().orElse(0) * 1000);
        }
        List<double[]> as = arms.getOrDefault("assisted", List.of());
        List<double[]> ps = arms.getOrDefault("plain", List.of());
        if (!as.isEmpty() && !ps.isEmpty()) {
            double ai = as.stream().filter(x -> x[2] > 1).mapToDouble(x -> (x[1] - x[0]) / (x[2] - 1)).average().orElse(0);
            double pi = ps.stream().filter(x -> x[2] > 1).mapToDouble(x -> (x[1] - x[0]) / (x[2] - 1)).average().orElse(0);
            System.out.printf(Locale.ROOT, "  client-side speed-up (mean inter-token latency plain / assisted): %.3f%n", pi / ai);
        }
        System.out.println("server report (/v1/experiments/assisted):");
        System.out.println("  " + http.send(HttpRequest.newBuilder(URI.create(base + "/v1/experiments/assisted")).build(),
                HttpResponse.BodyHandlers.ofString()).body());
        String metrics = http.send(HttpRequest.newBuilder(URI.create(base + "/q/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        System.out.println("metrics (/q/metrics):");
        metrics.lines().filter(l -> l.startsWith("tandem_generation_tokens_total") || l.startsWith("tandem_spec_decode_num_accepted_tokens_total")
                || l.startsWith("tandem_e2e_request_latency_seconds_count")).forEach(l -> System.out.println("  " + l));
    }
}
