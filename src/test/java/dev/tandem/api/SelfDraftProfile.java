package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** The bundled model as both target and draft: assisted decoding must then accept every candidate. */
public class SelfDraftProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.target.model-dir", "models/kjv-draft", "tandem.draft.model-dir", "models/kjv-draft",
                "tandem.draft.id", "kjv-draft-as-draft");
    }
}
