package dev.tandem.serving;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Startup;

/** Started once the models are loaded (checksums verified) and a warm-up generation has run. */
@Startup
@ApplicationScoped
public class StartupCheck implements HealthCheck {
    private final ModelRegistry registry;

    StartupCheck(ModelRegistry registry) {
        this.registry = registry;
    }

    @Override
    public HealthCheckResponse call() {
        var b = HealthCheckResponse.named("startup");
        if (!registry.isReady()) {
            return b.down().withData("reason", "models are loading").build();
        }
        if (!registry.warmedUp()) {
            return b.down().withData("reason", "warm-up generation has not run").build();
        }
        return b.up().withData("warm_up_ms", registry.warmUpMillis()).build();
    }
}
