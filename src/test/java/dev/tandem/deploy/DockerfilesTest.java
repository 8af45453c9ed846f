package dev.tandem.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * What can be checked of the Dockerfiles without a Docker engine (none on our build machines):
 * each build stage has the tools it runs, no step hides a failure, and the heap the k8s ConfigMap
 * sets is the one the image's JVM really uses. DockerfilesIT checks the paths they copy.
 */
class DockerfilesTest {
    static final Pattern IGNORED_FAILURE = Pattern.compile("\\|\\|\\s*(true\\b|:(\\s|$))");
    static final List<String> DOCKERFILES = List.of("Dockerfile.jvm", "Dockerfile.native", "Dockerfile.openvino");

    /** The instructions of a Dockerfile, continuation lines joined and comments dropped. */
    static List<String> instructions(String dockerfile) throws IOException {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : Files.readAllLines(Path.of(dockerfile))) {
            if (line.strip().startsWith("#") || (cur.isEmpty() && line.isBlank())) {
                continue;
            }
            if (line.endsWith("\\")) {
                cur.append(line, 0, line.length() - 1).append(' ');
            } else {
                out.add(cur.append(line).toString().strip());
                cur.setLength(0);
            }
        }
        return out;
    }

    /** The instructions of the stage {@code FROM ... AS name}. */
    static List<String> stage(String dockerfile, String name) throws IOException {
        List<String> out = new ArrayList<>();
        boolean in = false;
        for (String i : instructions(dockerfile)) {
            if (i.startsWith("FROM ")) {
                in = i.matches("(?i)FROM\\s+\\S+\\s+AS\\s+" + name);
            } else if (in) {
                out.add(i);
            }
        }
        assertFalse(out.isEmpty(), dockerfile + " has a stage " + name);
        return out;
    }

    @Test
    void noStepHidesAFailure() throws IOException {
        for (String f : DOCKERFILES) {
            for (String i : instructions(f)) {
                if (i.startsWith("RUN ")) {
                    // "a && b || true" turns every failure of a and b into success, not only an optional step's
                    assertFalse(IGNORED_FAILURE.matcher(i).find(), f + " ignores a failure: " + i);
                    assertFalse(i.contains("set +e"), f + ": " + i);
                }
            }
        }
    }

    /**
     * The native build stage runs {@code ./mvnw}, which needs a JDK >= 25 (the Mandrel builder image's
     * JAVA_HOME) and a system {@code mvn}, which the builder image does not have.
     */
    @Test
    void theNativeBuildStageHasMavenAndAJdk25() throws IOException {
        List<String> from = instructions("Dockerfile.native").stream().filter(i -> i.startsWith("FROM ")).toList();
        assertTrue(from.stream().anyMatch(i -> i.matches("FROM \\S*mandrel-builder-image:jdk-25 AS build")),
                "builds on Mandrel for JDK 25: " + from);
        List<String> build = stage("Dockerfile.native", "build");
        List<String> runs = build.stream().filter(i -> i.startsWith("RUN ")).toList();
        assertTrue(runs.stream().anyMatch(i -> i.contains("./mvnw ") && i.contains("-Dnative")),
                "runs the project's launcher: " + runs);
        // Maven: a distribution copied from an official Maven image (3.9+, the version the README names) onto PATH
        Matcher maven = Pattern.compile("FROM maven:(3)\\.(\\d+)\\.\\d+-\\S+ AS (\\S+)").matcher(String.join("\n", from));
        assertTrue(maven.find(), "a stage with Apache Maven: " + from);
        assertTrue(Integer.parseInt(maven.group(2)) >= 9, "Maven 3.9+");
        String mavenStage = maven.group(3);
        Matcher copy = Pattern.compile("COPY --from=" + mavenStage + " /usr/share/maven (\\S+)").matcher(String.join("\n", build));
        assertTrue(copy.find(), "the build stage copies Maven in: " + build);
        String bin = copy.group(1).replaceAll("/$", "") + "/bin";
        assertTrue(build.stream().anyMatch(i -> i.matches("ENV .*PATH=\"?" + Pattern.quote(bin) + ":.*")),
                "and puts " + bin + " on PATH: " + build);
        assertTrue(String.join("\n", build).contains("COPY --chown=quarkus:quarkus mvnw"), "the launcher is copied in");
        assertEquals("100755", gitMode("mvnw"), "mvnw keeps its executable bit in the build context");
    }

    static String gitMode(String path) throws IOException {
        try {
            Process p = new ProcessBuilder("git", "ls-files", "-s", path).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).strip();
            p.waitFor();
            return out.isEmpty() ? "" : out.split("\\s+")[0];
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    /**
     * The premise of the next test, on this JDK: a heap flag on the java command line beats the same flag in
     * JAVA_TOOL_OPTIONS (which the JVM reads first). So an entrypoint that passes its own -XX:MaxRAMPercentage
     * silently overrides the ConfigMap's.
     */
    @Test
    void aCommandLineHeapFlagBeatsJavaToolOptions() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        ProcessBuilder pb = new ProcessBuilder(java, "-XX:MaxRAMPercentage=80", "-XX:+PrintFlagsFinal", "-version");
        pb.environment().put("JAVA_TOOL_OPTIONS", "-XX:MaxRAMPercentage=60");
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), out);
        Matcher m = Pattern.compile("double MaxRAMPercentage\\s*=\\s*([\\d.]+)").matcher(out);
        assertTrue(m.find(), out);
        assertEquals(80.0, Double.parseDouble(m.group(1)), "the command line wins");
    }

    /**
     * k8s/base/configmap.yaml sizes the heap with JAVA_TOOL_OPTIONS (KvBudgetManifestTest checks the pod's
     * memory against it). The JVM images must not put a heap flag of their own on the command line: the
     * UBI image's run-java.sh adds -XX:MaxRAMPercentage=80 unless JAVA_MAX_MEM_RATIO=0.
     */
    @Test
    void theJvmImagesUseTheHeapTheConfigMapSets() throws IOException {
        String tool = new ObjectMapper(new YAMLFactory()).readTree(Path.of("k8s/base/configmap.yaml").toFile())
                .at("/data/JAVA_TOOL_OPTIONS").asText();
        assertTrue(tool.contains("-XX:MaxRAMPercentage="), "the ConfigMap sets the heap in JAVA_TOOL_OPTIONS: " + tool);
        Pattern heapFlag = Pattern.compile("-Xmx|-XX:MaxRAMPercentage|-XX:MaxHeapSize|-XX:MaxRAM=");
        for (String f : List.of("Dockerfile.jvm", "Dockerfile.openvino")) {
            List<String> ins = instructions(f);
            String entrypoint = ins.stream().filter(i -> i.startsWith("ENTRYPOINT ")).reduce((a, b) -> b).orElseThrow();
            String env = String.join("\n", ins.stream().filter(i -> i.startsWith("ENV ")).toList());
            assertFalse(heapFlag.matcher(entrypoint).find() || heapFlag.matcher(env).find(),
                    f + " sets a heap of its own, which overrides the ConfigMap's");
            assertFalse(env.contains("JAVA_TOOL_OPTIONS"), f + ": the ConfigMap's JAVA_TOOL_OPTIONS would replace this one");
            if (entrypoint.contains("run-java.sh")) {
                assertTrue(Pattern.compile("JAVA_MAX_MEM_RATIO=\"?0\"?(\\s|$)").matcher(env).find(),
                        f + ": run-java.sh passes -XX:MaxRAMPercentage=80 on the command line unless JAVA_MAX_MEM_RATIO=0");
                assertFalse(env.matches("(?s).*\\bJAVA_OPTS=.*"), f + ": JAVA_OPTS replaces run-java.sh's options");
            } else {
                assertTrue(entrypoint.matches("ENTRYPOINT \\[\\s*\"java\".*"), f + ": runs java directly: " + entrypoint);
            }
        }
    }
}
