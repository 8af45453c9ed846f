package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/**
 * The bundled pair under an 8 MiB KV-cache budget: short requests fit (a kjv-target sequence reserves
 * at least 2 MiB: 64 tokens of 16 KiB, twice), a long one does not.
 */
public class SmallKvBudgetProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.memory.budget", "8M");
    }
}
