package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.ModelDirectory;
import dev.tandem.model.SamplingDefaults;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tandem.target.generation-config}: auto serves the model's defaults, none and a draft none; anything else fails naming the key. */
class GenerationConfigKeyTest {

    static TandemConfig.Model withGenerationConfig(Path dir, String mode) {
        return ModelSettings.of(dir).withGenerationConfig(mode);
    }

    @Test
    void autoAppliesTheModelsDefaultsNoneAndTheDraftDoNot(@TempDir Path tmp) throws IOException {
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx")) {
            Files.copy(Path.of("models/kjv-draft").resolve(f), tmp.resolve(f));
        }
        Files.writeString(tmp.resolve("generation_config.json"), "{\"eos_token_id\": 2, \"temperature\": 0.6, \"top_p\": 0.9}");
        ModelDirectory dir = ModelDirectory.open(tmp);

        SamplingDefaults auto = ModelRegistry.samplingDefaults(dir, withGenerationConfig(tmp, "auto"), false);
        assertEquals(Map.of("temperature", 0.6, "top_p", 0.9), auto.asMap());
        assertSame(SamplingDefaults.NONE, ModelRegistry.samplingDefaults(dir, withGenerationConfig(tmp, "none"), false));
        assertSame(SamplingDefaults.NONE, ModelRegistry.samplingDefaults(dir, withGenerationConfig(tmp, "auto"), true));

        for (String bad : List.of("vllm", "AUTO", "", "/models/other")) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> ModelRegistry.samplingDefaults(dir, withGenerationConfig(tmp, bad), false), bad);
            assertTrue(e.getMessage().contains("tandem.target.generation-config") && e.getMessage().contains("'" + bad + "'"),
                    e.getMessage());
        }
    }
}
