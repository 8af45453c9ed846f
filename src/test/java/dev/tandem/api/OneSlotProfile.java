package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** One decoding slot, one queue place, a short queue timeout: backpressure is easy to reach. */
public class OneSlotProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.serving.max-concurrent", "1", "tandem.serving.max-queued", "1",
                "tandem.serving.queue-timeout", "2s", "tandem.serving.retry-after-seconds", "2");
    }
}
