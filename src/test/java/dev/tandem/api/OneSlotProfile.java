package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/**
 * One decoding slot, one queue place, a short queue timeout: backpressure is easy to reach. The timeout is long enough
 * that a request stays queued while a test does its checks on a loaded machine (at 2 s it expired mid-test under a
 * load average of 10-15, and every later request was queued for its own 2 s instead of being refused).
 */
public class OneSlotProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("tandem.serving.max-concurrent", "1", "tandem.serving.max-queued", "1",
                "tandem.serving.queue-timeout", "8s", "tandem.serving.retry-after-seconds", "2");
    }
}
