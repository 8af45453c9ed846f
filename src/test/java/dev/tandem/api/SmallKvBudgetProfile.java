package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/**
 * The bundled pair under a 40 MiB KV-cache budget: two short requests fit at once (a kjv-target sequence
 * reserves a slot-pool row of 1024 positions of 16 KiB, 16 MiB, plus step buffers), a long prompt decoded with
 * the draft does not.
 */
public class SmallKvBudgetProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.memory.budget", "40M");
    }
}
