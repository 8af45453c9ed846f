package dev.tandem.it;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The packaged application refuses to start, fast and saying why, when it cannot serve what it was given. */
class StartupFailureIT {

    static String startExpectingFailure(Map<String, String> env) throws Exception {
        Path log = Files.createTempFile("tandem-startup", ".log");
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home.for.app"), "bin", "java").toString(),
                "-Dquarkus.http.port=0", "-jar", System.getProperty("tandem.app.jar"))
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "start-up should fail fast");
            assertNotEquals(0, p.exitValue());
            return Files.readString(log);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void openvinoWithoutARuntimeSaysWhatWasLookedForAndHowToInstallIt() throws Exception {
        String log = startExpectingFailure(Map.of("TANDEM_TARGET_ENGINE", "openvino", "OPENVINO_HOME", "/nonexistent/openvino"));
        assertTrue(log.contains("engine=openvino, but"), log);
        assertTrue(log.contains("/nonexistent/openvino"), "names the places it looked: " + log);
        assertTrue(log.contains("OPENVINO_HOME"), "says how to point at an installation: " + log);
    }

    @Test
    void aCorruptedModelFileIsNamed(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("kjv-draft");
        Files.createDirectories(model);
        try (var files = Files.list(Path.of("models/kjv-draft"))) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        byte[] bytes = Files.readAllBytes(model.resolve("model.onnx"));
        bytes[bytes.length / 3] ^= 0x55;
        Files.write(model.resolve("model.onnx"), bytes);
        String log = startExpectingFailure(Map.of("TANDEM_TARGET_MODEL_DIR", model.toString()));
        assertTrue(log.contains("model.onnx") && log.contains("checksum mismatch"), log);
    }
}
