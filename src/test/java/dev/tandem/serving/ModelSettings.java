package dev.tandem.serving;

import java.nio.file.Path;
import java.util.Optional;

/**
 * A model's settings ({@code tandem.target.*}) as the tests give them, without a configuration source: the defaults
 * configuration would give, with one value changed by a {@code with...} method. One place to extend when
 * {@link TandemConfig.Model} gains a key.
 */
record ModelSettings(Path modelDir, Optional<String> id, Optional<Path> chatTemplate, Optional<String> graph, String engine,
                     boolean enabled, String generationConfig, Optional<Integer> maxContext) implements TandemConfig.Model {

    /** {@code dir} on ONNX Runtime, every other key at its default. */
    static ModelSettings of(Path dir) {
        return new ModelSettings(dir, Optional.empty(), Optional.empty(), Optional.empty(), "onnxruntime", true, "auto",
                Optional.empty());
    }

    ModelSettings withChatTemplate(Optional<Path> file) {
        return new ModelSettings(modelDir, id, file, graph, engine, enabled, generationConfig, maxContext);
    }

    ModelSettings withGenerationConfig(String mode) {
        return new ModelSettings(modelDir, id, chatTemplate, graph, engine, enabled, mode, maxContext);
    }

    ModelSettings withGraph(String file) {
        return new ModelSettings(modelDir, id, chatTemplate, Optional.of(file), engine, enabled, generationConfig, maxContext);
    }

    ModelSettings withMaxContext(int tokens) {
        return new ModelSettings(modelDir, id, chatTemplate, graph, engine, enabled, generationConfig, Optional.of(tokens));
    }
}
