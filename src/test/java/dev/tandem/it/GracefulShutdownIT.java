package dev.tandem.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The packaged application as a real process, shut down the way Kubernetes does it: SIGTERM while
 * every decoding slot is busy with a long generation (EOS ignored), each of them mid-way. Readiness
 * must go DOWN and new generation requests get 503 at once; every in-flight request (streamed and
 * not, plain and assisted, all three route families) must finish and end properly; the process must
 * exit cleanly afterwards, with no native crash. Prints its timings (docs/reliability.md quotes them).
 */
class GracefulShutdownIT {
    private static final int MAX_TOKENS = 200;

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** One in-flight request: what it sends and, as it arrives, what it got. */
    private static final class InFlight {
        final String name;
        final String path;
        final String body;
        final boolean stream;
        final AtomicInteger events = new AtomicInteger();
        final StringBuilder received = new StringBuilder();
        volatile int status;
        volatile long endedAt;
        CompletableFuture<Void> done;

        InFlight(String name, String path, String body, boolean stream) {
            this.name = name;
            this.path = path;
            this.body = body;
            this.stream = stream;
        }

        synchronized String text() {
            return received.toString();
        }

        String tail() {
            String t = text();
            return name + ": ..." + t.substring(Math.max(0, t.length() - 300));
        }
    }

    @Test
    void sigtermWithEverySlotBusyLetsEveryGenerationFinishAndExitsCleanly() throws Exception {
        Path jar = Path.of(System.getProperty("tandem.app.jar"));
        assertTrue(Files.isRegularFile(jar), "package the application first: " + jar);
        int port = freePort();
        Path log = Files.createTempFile("tandem-shutdown-it", ".log");
        Path workDir = Files.createTempDirectory("tandem-shutdown-it");  // where an hs_err_pid file would land
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home.for.app"), "bin", "java").toString(),
                "-Dquarkus.http.port=" + port, "-jar", jar.toAbsolutePath().toString())
                .directory(workDir.toFile()).redirectErrorStream(true).redirectOutput(log.toFile());
        Path project = Path.of("").toAbsolutePath();
        pb.environment().put("TANDEM_TARGET_MODEL_DIR", project.resolve("models/kjv-target").toString());
        pb.environment().put("TANDEM_DRAFT_MODEL_DIR", project.resolve("models/kjv-draft").toString());
        pb.environment().put("TANDEM_SERVING_MAX_CONCURRENT", "6");
        Process app = pb.start();
        try {
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofSeconds(2)).build();
            String base = "http://127.0.0.1:" + port;
            long deadline = System.currentTimeMillis() + 90_000;
            while (status(http, base + "/q/health/ready") != 200) {
                assertTrue(app.isAlive() && System.currentTimeMillis() < deadline, "not ready in time: " + Files.readString(log));
                Thread.sleep(100);
            }

            String completion = "\"prompt\":\"And it came to pass\",\"max_tokens\":" + MAX_TOKENS
                    + ",\"temperature\":0.8,\"seed\":7,\"ignore_eos\":true";
            String chat = "\"messages\":[{\"role\":\"user\",\"content\":\"In the beginning\"}],\"max_tokens\":" + MAX_TOKENS
                    + ",\"temperature\":0,\"ignore_eos\":true";
            String tgi = "\"inputs\":\"And the LORD spake\",\"parameters\":{\"max_new_tokens\":" + MAX_TOKENS
                    + ",\"do_sample\":false,\"ignore_eos\":true";
            List<InFlight> all = List.of(
                    new InFlight("completions stream plain", "/v1/completions", "{" + completion + ",\"stream\":true}", true),
                    new InFlight("completions stream draft", "/v1/completions",
                            "{" + completion + ",\"stream\":true,\"assisted\":true,\"assistant\":\"draft\"}", true),
                    new InFlight("chat stream prompt-lookup", "/v1/chat/completions",
                            "{" + chat + ",\"stream\":true,\"assisted\":true,\"assistant\":\"prompt_lookup\"}", true),
                    new InFlight("tgi generate_stream", "/generate_stream", "{" + tgi + "}}", true),
                    new InFlight("chat whole draft", "/v1/chat/completions",
                            "{" + chat + ",\"assisted\":true,\"assistant\":\"draft\"}", false),
                    new InFlight("tgi generate assisted", "/generate", "{" + tgi + ",\"assisted\":true,\"details\":true}}", false));
            for (InFlight f : all) {
                f.done = CompletableFuture.runAsync(() -> send(http, base, f));
            }
            // every stream mid-way: some text out, far from the end (the whole requests started with them)
            deadline = System.currentTimeMillis() + 60_000;
            while (all.stream().anyMatch(f -> f.stream && f.events.get() < 8)) {
                assertTrue(System.currentTimeMillis() < deadline, "streams did not start: "
                        + all.stream().map(InFlight::tail).toList());
                Thread.sleep(10);
            }
            for (InFlight f : all) {
                assertFalse(f.done.isDone(), "ended before the signal, so the test proves nothing: " + f.tail());
            }

            long signalled = System.nanoTime();
            app.toHandle().destroy();  // SIGTERM

            // at once: readiness DOWN and new generation requests refused with 503
            long readyDownMs = -1;
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            while (System.nanoTime() < until) {
                if (status(http, base + "/q/health/ready") == 503) {
                    readyDownMs = (System.nanoTime() - signalled) / 1_000_000;
                    break;
                }
                Thread.sleep(20);
            }
            assertTrue(readyDownMs >= 0 && readyDownMs < 1000, "readiness DOWN within 1 s of SIGTERM, took " + readyDownMs
                    + " ms");
            long t0 = System.nanoTime();
            HttpResponse<String> refused;
            try {
                refused = post(http, base + "/v1/completions", "{\"prompt\":\"And\",\"max_tokens\":2}");
            } catch (IOException e) {
                throw new AssertionError("the server went away during the drain: " + e + "\n" + Files.readString(log), e);
            }
            long refusedMs = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(503, refused.statusCode(), "a new request during the drain: " + refused.body());
            assertTrue(refused.body().contains("\"error\""), "a JSON error: " + refused.body());
            assertTrue(refusedMs < 1000, "refused at once, took " + refusedMs + " ms");
            for (InFlight f : all) {
                assertFalse(f.done.isDone(), "still generating while the drain began (signal came mid-way): " + f.tail());
            }

            for (InFlight f : all) {
                f.done.get(60, TimeUnit.SECONDS);
                assertEquals(200, f.status, f.tail());
                checkComplete(f);
            }
            long lastEnded = all.stream().mapToLong(f -> f.endedAt).max().orElseThrow();
            assertTrue(app.waitFor(40, TimeUnit.SECONDS), "the process exits after its requests");
            long exitedMs = (System.nanoTime() - signalled) / 1_000_000;
            String out = Files.readString(log);
            assertFalse(out.contains("SIGSEGV") || out.contains("A fatal error has been detected"),
                    "native crash during shutdown:\n" + out);
            try (var files = Files.list(workDir)) {
                assertTrue(files.noneMatch(p -> p.getFileName().toString().startsWith("hs_err")), "a JVM crash log was written");
            }
            assertTrue(app.exitValue() == 0 || app.exitValue() == 143, "exit status " + app.exitValue() + "\n" + out);
            System.out.printf("GracefulShutdownIT: %d requests in flight (%d tokens each); readiness DOWN %d ms after SIGTERM;"
                            + " a new request refused (503) in %d ms; last in-flight request ended %d ms after SIGTERM;"
                            + " process exited %d ms after SIGTERM (status %d)%n", all.size(), MAX_TOKENS, readyDownMs,
                    refusedMs, (lastEnded - signalled) / 1_000_000, exitedMs, app.exitValue());
        } finally {
            app.destroyForcibly();
        }
    }

    private static final Pattern COMPLETION_TOKENS = Pattern.compile("\"completion_tokens\"\\s*:\\s*(\\d+)");
    private static final Pattern GENERATED_TOKENS = Pattern.compile("\"generated_tokens\"\\s*:\\s*(\\d+)");

    /** The request ran to its length, and its body ends as its format ends. */
    private static void checkComplete(InFlight f) {
        String body = f.text().trim();
        if (f.path.equals("/generate_stream")) {  // TGI: the last event carries generated_text and details
            String last = body.substring(body.lastIndexOf("data:"));
            assertTrue(last.contains("\"generated_text\"") && last.contains("\"finish_reason\":\"length\""), f.tail());
        } else if (f.stream) {
            assertTrue(body.endsWith("data: [DONE]"), "an in-flight stream was cut: " + f.tail());
            assertTrue(body.contains("\"finish_reason\":\"length\""), f.tail());
        } else if (f.path.equals("/generate")) {
            Matcher m = GENERATED_TOKENS.matcher(body);
            assertTrue(m.find() && Integer.parseInt(m.group(1)) == MAX_TOKENS, f.tail());
        } else {
            Matcher m = COMPLETION_TOKENS.matcher(body);
            assertTrue(m.find() && Integer.parseInt(m.group(1)) == MAX_TOKENS, f.tail());
        }
    }

    private static void send(HttpClient http, String base, InFlight f) {
        HttpRequest req = HttpRequest.newBuilder(URI.create(base + f.path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(f.body)).build();
        try {
            HttpResponse<java.io.InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
            f.status = r.statusCode();
            try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    synchronized (f) {
                        f.received.append(line).append('\n');
                    }
                    if (line.startsWith("data:")) {
                        f.events.incrementAndGet();
                    }
                }
            }
        } catch (IOException e) {
            synchronized (f) {
                f.received.append("\n<connection failed: ").append(e).append('>');
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            f.endedAt = System.nanoTime();
        }
    }

    private static HttpResponse<String> post(HttpClient http, String url, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static int status(HttpClient http, String url) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (Exception e) {
            return -1;
        }
    }
}
