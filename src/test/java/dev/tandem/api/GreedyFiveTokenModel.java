package dev.tandem.api;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A model directory whose generation_config.json recommends greedy decoding and 5 new tokens ({@code temperature: 0},
 * {@code max_new_tokens: 5}): the bundled kjv-draft's small files and its portable model.onnx (1.8 MB), copied into a
 * temporary directory when the test application starts (a model directory must be self-contained; no copy is
 * committed) and deleted when it stops. Served as the target {@value #ID}, without a draft.
 */
public class GreedyFiveTokenModel implements QuarkusTestResourceLifecycleManager {
    static final String ID = "kjv-greedy";
    static final int MAX_NEW_TOKENS = 5;
    private static final Path BUNDLED = Path.of("models/kjv-draft");

    private Path tmp;

    @Override
    public Map<String, String> start() {
        try {
            tmp = Files.createTempDirectory("tandem-generation-config");
            Path dir = Files.createDirectory(tmp.resolve(ID));
            for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx")) {
                Files.copy(BUNDLED.resolve(f), dir.resolve(f));
            }
            Files.writeString(dir.resolve("generation_config.json"), """
                    {"bos_token_id": 1, "eos_token_id": 2, "do_sample": false, "temperature": 0, "max_new_tokens": %d}
                    """.formatted(MAX_NEW_TOKENS));
            return Map.of("tandem.target.model-dir", dir.toString(), "tandem.draft.enabled", "false");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void stop() {
        if (tmp == null) {
            return;
        }
        try (Stream<Path> files = Files.walk(tmp)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
