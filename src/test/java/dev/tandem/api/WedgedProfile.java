package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** A liveness step timeout short enough to trip in a test. */
public class WedgedProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.health.step-timeout", "150ms");
    }
}
