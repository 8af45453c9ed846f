package dev.tandem.api;

import dev.tandem.testing.SharedModels;
import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** Serves the shared stories260K model (Optimum layout) instead of the bundled pair, without a draft (other vocabulary). */
public class Stories260KProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.target.model-dir", SharedModels.stories260kHf().toString(), "tandem.draft.enabled", "false");
    }
}
