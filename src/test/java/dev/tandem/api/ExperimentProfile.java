package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/**
 * The A/B experiment on, half of the requests assisted, with the fixed speculation policy: the assisted arm then
 * always drafts (under auto a busy machine's start-up profile may price candidates out, and these tests are about the
 * experiment, not about that judgement).
 */
public class ExperimentProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.experiment.enabled", "true", "tandem.experiment.assisted-share", "0.5",
                "tandem.assisted.policy", "fixed");
    }
}
