package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** The A/B experiment on, half of the requests assisted. */
public class ExperimentProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.experiment.enabled", "true", "tandem.experiment.assisted-share", "0.5");
    }
}
