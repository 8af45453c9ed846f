package dev.tandem.it;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The packaged application refuses to start, fast and saying why, when it cannot serve what it was given. */
class StartupFailureIT {

    static String startExpectingFailure(Map<String, String> env) throws Exception {
        return startExpectingFailure(Path.of(System.getProperty("java.home.for.app"), "bin", "java"), env);
    }

    static String startExpectingFailure(Path java, Map<String, String> env) throws Exception {
        Path log = Files.createTempFile("tandem-startup", ".log");
        ProcessBuilder pb = new ProcessBuilder(java.toString(),
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

    /** It used to start, never become ready, and answer plain-text 500s. */
    @Test
    void anInvalidMemoryBudgetIsNamed() throws Exception {
        String log = startExpectingFailure(Map.of("TANDEM_MEMORY_BUDGET", "lots"));
        assertTrue(log.contains("tandem.memory.budget") && log.contains("'lots'"), log);
    }

    /** Quarkus' launcher runs on Java 17 and died silently (status 1, no output) on the first class compiled for 25. */
    @Test
    void anOlderJavaSaysWhichJavaIsNeeded() throws Exception {
        Path java = Path.of("/usr/bin/java");
        assumeTrue(Files.isExecutable(java), "no /usr/bin/java here");
        Process v = new ProcessBuilder(java.toString(), "-XshowSettings:properties", "-version").redirectErrorStream(true).start();
        String settings = new String(v.getInputStream().readAllBytes());
        v.waitFor();
        Matcher m = Pattern.compile("java\\.specification\\.version = (\\d+)").matcher(settings);
        assumeTrue(m.find() && Integer.parseInt(m.group(1)) >= 17 && Integer.parseInt(m.group(1)) < 25,
                "/usr/bin/java is not a Java 17 to 24: " + settings);
        String log = startExpectingFailure(java, Map.of());
        assertTrue(log.contains("Tandem needs Java 25 or newer, but this is Java " + m.group(1)), log);
    }
}
