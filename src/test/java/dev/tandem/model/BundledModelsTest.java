package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The models this repository ships: intact (checksums), complete, and sharing one tokenizer. */
class BundledModelsTest {
    static final Path MODELS = Path.of("models");

    static List<Path> modelDirs() throws IOException {
        try (Stream<Path> s = Files.list(MODELS)) {
            return s.filter(Files::isDirectory).sorted().toList();
        }
    }

    @Test
    void everyBundledModelHasACompleteManifestAndLoads() throws IOException {
        List<Path> dirs = modelDirs();
        assertFalse(dirs.isEmpty(), "models/ ships at least the default model");
        for (Path dir : dirs) {
            Path manifest = dir.resolve(ModelDirectory.MANIFEST);
            assertTrue(Files.isRegularFile(manifest), dir + " has no " + ModelDirectory.MANIFEST);
            Set<String> listed = Files.readAllLines(manifest).stream().filter(l -> !l.isBlank())
                    .map(l -> l.trim().split("\\s+\\*?", 2)[1]).collect(Collectors.toCollection(TreeSet::new));
            Set<String> present;
            try (Stream<Path> s = Files.list(dir)) {
                present = s.map(p -> p.getFileName().toString()).filter(n -> !n.equals(ModelDirectory.MANIFEST))
                        .collect(Collectors.toCollection(TreeSet::new));
            }
            assertEquals(present, listed, dir + ": the manifest must cover every file");
            for (String required : List.of("model.onnx", "config.json", "generation_config.json", "tokenizer.json",
                    "tokenizer_config.json", "MODEL_CARD.md")) {
                assertTrue(present.contains(required), dir + " lacks " + required);
            }
            ModelDirectory.open(dir);  // verifies every checksum
        }
    }

    @Test
    void bundledModelsShareOneTokenizer() throws IOException {
        List<Path> dirs = modelDirs();
        byte[] first = Files.readAllBytes(dirs.get(0).resolve("tokenizer.json"));
        byte[] firstCfg = Files.readAllBytes(dirs.get(0).resolve("tokenizer_config.json"));
        for (Path dir : dirs.subList(1, dirs.size())) {
            assertArrayEquals(first, Files.readAllBytes(dir.resolve("tokenizer.json")), dir + ": tokenizer.json differs");
            assertArrayEquals(firstCfg, Files.readAllBytes(dir.resolve("tokenizer_config.json")),
                    dir + ": tokenizer_config.json differs");
        }
    }

    @Test
    void theBundledTokenizerRoundTripsScripture() {
        try (TextTokenizer t = TextTokenizer.load(ModelDirectory.open(modelDirs().get(0)))) {
            String verse = "And God said, Let there be light: and there was light.";
            int[] ids = t.encodePrompt(verse);
            assertEquals(1, ids[0], "BOS first");
            assertTrue(ids.length < verse.length() / 2, "BPE merges words: " + ids.length + " tokens");
            assertEquals(verse, t.decode(ids));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
