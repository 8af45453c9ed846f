package dev.tandem.serving;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready once the configured models are loaded. */
@Readiness
@ApplicationScoped
public class ModelsReadiness implements HealthCheck {
    private final ModelRegistry registry;

    ModelsReadiness(ModelRegistry registry) {
        this.registry = registry;
    }

    @Override
    public HealthCheckResponse call() {
        var b = HealthCheckResponse.named("models");
        if (!registry.isReady()) {
            return b.down().withData("reason", "models are loading").build();
        }
        b.up().withData("target", registry.target().id());
        registry.draft().ifPresent(d -> b.withData("draft", d.id()));
        return b.build();
    }
}
