package dev.tandem.api;

import dev.tandem.testing.SharedModels;
import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/**
 * Serves stories260K as llama2.c ships it (../shared/models/stories260K: {@code stories260K.bin} and
 * {@code tok512.bin}, no config.json) on the reference engine, without a draft (other vocabulary).
 */
public class Llama2cProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.target.model-dir", SharedModels.stories260kBin().getParent().toString(),
                "tandem.target.engine", "reference", "tandem.draft.enabled", "false");
    }
}
