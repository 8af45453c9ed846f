package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** A target served without a draft model (the small bundled model, to keep the test quick). */
public class NoDraftProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.target.model-dir", "models/kjv-draft", "tandem.draft.enabled", "false");
    }
}
