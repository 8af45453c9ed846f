package dev.tandem.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The packaged application serving the bundled target on OpenVINO (TANDEM_TARGET_ENGINE=openvino,
 * OPENVINO_HOME at the shared CPU runtime the build points it at; the draft stays on ONNX Runtime):
 * it becomes ready, /v1/models says openvino, a completion and a streamed completion come back, and
 * the greedy text is the text the same application serves on ONNX Runtime (a second process, started
 * beside it). Skipped with the reason where the runtime is absent; with CI=true it fails instead.
 */
class OpenVinoServiceIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * Held-out prompts on which OpenVinoPairTest found the two runtimes' greedy text equal over 64 tokens (they part
     * only on near-ties, on none of these; with the second-edition pair "The heart of the wise is in" parts at token
     * 50, where ONNX Runtime's two best logits are 0.036 apart).
     */
    private static final List<String> PROMPTS = List.of("And they said unto", "All things are full of labour; man",
            "Rejoice in the Lord alway:");

    @Test
    void servesTheTargetOnOpenVinoWithOnnxRuntimesGreedyText() throws Exception {
        Path jar = Path.of(System.getProperty("tandem.app.jar"));
        assertTrue(Files.isRegularFile(jar), "package the application first: " + jar);
        String home = System.getenv("OPENVINO_HOME");
        if (home == null || !Files.isRegularFile(Path.of(home, "lib", "libopenvino_c.so"))) {
            String reason = "no OpenVINO runtime at OPENVINO_HOME=" + home + " (the build sets it to ../shared/openvino)";
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                throw new AssertionError("CI=true but " + reason);
            }
            Assumptions.abort(reason);
        }
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(2)).build();
        try (App ov = App.start("openvino", home); App ort = App.start("onnxruntime", null)) {
            ov.awaitReady(http);
            ort.awaitReady(http);

            assertEquals(200, GracefulShutdownIT.status(http, ov.base + "/q/health/live"));
            JsonNode ready = JSON.readTree(get(http, ov.base + "/q/health/ready").body());
            assertEquals("UP", ready.path("status").asText(), ready.toString());
            JsonNode models = JSON.readTree(get(http, ov.base + "/v1/models").body());
            JsonNode target = models.path("data").get(0);
            assertTrue(target.path("engine").asText().startsWith("openvino"), "target engine: " + models);

            for (String prompt : PROMPTS) {
                String body = "{\"prompt\":" + JSON.writeValueAsString(prompt) + ",\"max_tokens\":64,\"temperature\":0";
                HttpResponse<String> whole = post(http, ov.base + "/v1/completions", body + "}");
                assertEquals(200, whole.statusCode(), whole.body());
                String text = JSON.readTree(whole.body()).path("choices").get(0).path("text").asText();
                assertTrue(!text.isEmpty(), whole.body());

                HttpResponse<String> onOrt = post(http, ort.base + "/v1/completions", body + "}");
                assertEquals(200, onOrt.statusCode(), onOrt.body());
                assertEquals(JSON.readTree(onOrt.body()).path("choices").get(0).path("text").asText(), text,
                        "OpenVINO against ONNX Runtime, prompt '" + prompt + "'");

                HttpResponse<String> streamed = post(http, ov.base + "/v1/completions", body + ",\"stream\":true}");
                assertEquals(200, streamed.statusCode(), streamed.body());
                assertTrue(streamed.body().strip().endsWith("data: [DONE]"), "stream not ended: " + streamed.body());
                StringBuilder pieces = new StringBuilder();
                for (String line : streamed.body().split("\n")) {
                    if (line.startsWith("data: {")) {
                        JsonNode choice = JSON.readTree(line.substring("data: ".length())).path("choices").path(0);
                        pieces.append(choice.path("text").asText(""));
                    }
                }
                assertEquals(text, pieces.toString(), "streamed and whole, prompt '" + prompt + "'");
            }
        }
    }

    /** One packaged application process on its own port, killed when closed. */
    private static final class App implements AutoCloseable {
        final Process process;
        final Path log;
        final String base;

        private App(Process process, Path log, int port) {
            this.process = process;
            this.log = log;
            this.base = "http://127.0.0.1:" + port;
        }

        static App start(String targetEngine, String openVinoHome) throws Exception {
            int port = GracefulShutdownIT.freePort();
            Path log = Files.createTempFile("tandem-openvino-it-" + targetEngine, ".log");
            ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home.for.app"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "-Dquarkus.http.port=" + port, "-jar",
                    Path.of(System.getProperty("tandem.app.jar")).toAbsolutePath().toString())
                    .redirectErrorStream(true).redirectOutput(log.toFile());
            Path project = Path.of("").toAbsolutePath();
            pb.environment().put("TANDEM_TARGET_MODEL_DIR", project.resolve("models/kjv-target").toString());
            pb.environment().put("TANDEM_DRAFT_MODEL_DIR", project.resolve("models/kjv-draft").toString());
            pb.environment().put("TANDEM_TARGET_ENGINE", targetEngine);
            // both on the portable graph: ONNX Runtime would otherwise run model_optimized.onnx (other arithmetic)
            pb.environment().put("TANDEM_TARGET_GRAPH", "model.onnx");
            pb.environment().remove("OPENVINO_HOME");
            if (openVinoHome != null) {
                pb.environment().put("OPENVINO_HOME", openVinoHome);
            }
            return new App(pb.start(), log, port);
        }

        void awaitReady(HttpClient http) throws Exception {
            long deadline = System.currentTimeMillis() + 120_000;
            while (GracefulShutdownIT.status(http, base + "/q/health/ready") != 200) {
                assertTrue(process.isAlive() && System.currentTimeMillis() < deadline, "not ready in time:\n"
                        + Files.readString(log));
                Thread.sleep(100);
            }
        }

        @Override
        public void close() throws Exception {
            process.destroy();
            if (!process.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    private static HttpResponse<String> get(HttpClient http, String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> post(HttpClient http, String url, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
