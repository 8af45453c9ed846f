package dev.tandem.it;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Every path a Dockerfile copies from the build context exists after the build (run after `package`). */
class DockerfilesIT {
    static final Pattern COPY = Pattern.compile("^COPY\\s+(?:--\\S+\\s+)*(.+)\\s+(\\S+)$", Pattern.MULTILINE);

    static void assertSourcesExist(Path dockerfile, List<String> producedElsewhere) throws IOException {
        Matcher m = COPY.matcher(Files.readString(dockerfile));
        int checked = 0;
        while (m.find()) {
            if (m.group(0).contains("--from=")) {
                continue;  // copied from a builder stage
            }
            for (String src : m.group(1).trim().split("\\s+")) {
                if (producedElsewhere.contains(src)) {
                    continue;
                }
                assertTrue(matches(src), dockerfile + ": COPY source " + src + " does not exist in the build output");
                checked++;
            }
        }
        assertTrue(checked > 0, dockerfile + " copies nothing?");
    }

    static boolean matches(String src) throws IOException {
        Path p = Path.of(src.endsWith("/") ? src.substring(0, src.length() - 1) : src);
        if (!src.contains("*")) {
            return Files.exists(p);
        }
        try (DirectoryStream<Path> d = Files.newDirectoryStream(p.getParent(), p.getFileName().toString())) {
            return d.iterator().hasNext();
        }
    }

    @Test
    void jvmDockerfileCopiesTheFastJarAndTheModels() throws IOException {
        assertSourcesExist(Path.of("Dockerfile.jvm"), List.of());
        String dockerfile = Files.readString(Path.of("Dockerfile.jvm"));
        assertTrue(dockerfile.contains("TANDEM_TARGET_MODEL_DIR=/work/models/kjv-target"), "serves the bundled target");
        assertTrue(dockerfile.contains("TANDEM_DRAFT_MODEL_DIR=/work/models/kjv-draft"), "with the bundled draft");
        for (String image : List.of("Dockerfile.jvm", "Dockerfile.native", "Dockerfile.openvino")) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("/work/(models/[\\w.-]+)")
                    .matcher(Files.readString(Path.of(image)));
            while (m.find()) {
                assertTrue(Files.isDirectory(Path.of(m.group(1))), image + " points at " + m.group(1) + ", which is not bundled");
            }
        }
    }

    @Test
    void openvinoDockerfileCopiesTheFastJarAndSelectsTheEngine() throws IOException {
        assertSourcesExist(Path.of("Dockerfile.openvino"), List.of());
        assertTrue(Files.readString(Path.of("Dockerfile.openvino")).contains("TANDEM_TARGET_ENGINE=openvino"));
    }

    @Test
    void nativeDockerfileBuildsFromTheProjectFiles() throws IOException {
        assertSourcesExist(Path.of("Dockerfile.native"), List.of());
        String text = Files.readString(Path.of("Dockerfile.native"));
        assertTrue(text.contains("/code/target/*-runner"), "the native executable Quarkus writes");
        assertFalse(text.contains("../shared"), "images never include test data");
    }
}
