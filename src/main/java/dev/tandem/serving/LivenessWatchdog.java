package dev.tandem.serving;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Liveness;

/** Live unless a running generation has not finished a decoding step within the step timeout (wedged workers). */
@Liveness
@ApplicationScoped
public class LivenessWatchdog implements HealthCheck {
    private final GenerationService generation;
    private final double timeoutSeconds;

    LivenessWatchdog(GenerationService generation, TandemConfig config) {
        this.generation = generation;
        this.timeoutSeconds = config.health().stepTimeout().toMillis() / 1000.0;
    }

    @Override
    public HealthCheckResponse call() {
        double longest = generation.longestStepSeconds();
        var b = HealthCheckResponse.named("decoding-watchdog").withData("longest_step_seconds", String.format(java.util.Locale.ROOT, "%.3f", longest))
                .withData("step_timeout_seconds", String.format(java.util.Locale.ROOT, "%.1f", timeoutSeconds));
        if (longest > timeoutSeconds) {
            return b.down().withData("reason", "a generation has made no decoding step for " + longest + " s").build();
        }
        return b.up().build();
    }
}
