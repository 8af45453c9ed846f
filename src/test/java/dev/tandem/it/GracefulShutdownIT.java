package dev.tandem.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The packaged application as a real process: SIGTERM while requests are decoding ⇒ readiness
 * DOWN ⇒ the in-flight requests finish ⇒ the process exits.
 */
class GracefulShutdownIT {

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test
    void sigtermLetsInFlightRequestsFinish() throws Exception {
        Path jar = Path.of(System.getProperty("tandem.app.jar"));
        assertTrue(Files.isRegularFile(jar), "package the application first: " + jar);
        int port = freePort();
        Path log = Files.createTempFile("tandem-it", ".log");
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home.for.app"), "bin", "java").toString(),
                "-Dquarkus.http.port=" + port, "-Dquarkus.shutdown.delay=1s", "-jar", jar.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("TANDEM_SERVING_MAX_CONCURRENT", "1");
        pb.environment().put("TANDEM_ONNXRUNTIME_INTRA_OP_THREADS", "1");
        Process app = pb.start();
        try {
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
            String base = "http://127.0.0.1:" + port;
            long deadline = System.currentTimeMillis() + 60_000;
            while (status(http, base + "/q/health/ready") != 200) {
                assertTrue(System.currentTimeMillis() < deadline, "not ready in time: " + Files.readString(log));
                Thread.sleep(100);
            }
            // three streams of 250 tokens through one decoding slot: one decodes, two wait
            List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                streams.add(http.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                                "{\"prompt\":\"And it came to pass\",\"max_tokens\":250,\"temperature\":0,\"stream\":true}"))
                        .build(), HttpResponse.BodyHandlers.ofString()));
            }
            Thread.sleep(30);
            app.toHandle().destroy();  // SIGTERM
            Thread.sleep(200);
            assertEquals(503, status(http, base + "/q/health/ready"), "readiness drops at once");
            for (CompletableFuture<HttpResponse<String>> s : streams) {
                HttpResponse<String> r = s.get(60, TimeUnit.SECONDS);
                assertEquals(200, r.statusCode());
                assertTrue(r.body().trim().endsWith("data: [DONE]"), "an in-flight stream was cut: "
                        + r.body().substring(Math.max(0, r.body().length() - 200)));
            }
            assertTrue(app.waitFor(40, TimeUnit.SECONDS), "the process exits after its requests");
        } finally {
            app.destroyForcibly();
        }
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
