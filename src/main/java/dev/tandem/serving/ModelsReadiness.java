package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

/**
 * Ready when the target's decoding loop has started (after the auto policy's start-up profile of step
 * costs), a real forward pass through the target (and the draft) has succeeded within the
 * probe interval (run now if the last is older) and the server is not shutting down. A server that
 * is merely saturated stays ready (it answers 429 to what it cannot queue). The data says why it is
 * DOWN.
 */
@Readiness
@ApplicationScoped
public class ModelsReadiness implements HealthCheck {
    private final ModelRegistry registry;
    private final AdmissionControl admission;
    private final GenerationService generation;
    private final long intervalNanos;
    private volatile long lastProbe;
    private volatile String lastFailure;

    ModelsReadiness(ModelRegistry registry, AdmissionControl admission, GenerationService generation, TandemConfig config) {
        this.registry = registry;
        this.admission = admission;
        this.generation = generation;
        this.intervalNanos = config.health().probeInterval().toNanos();
    }

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder b = HealthCheckResponse.named("models");
        if (!registry.isReady()) {
            return b.down().withData("reason", "models are loading").build();
        }
        if (!generation.targetStarted()) {
            return b.down().withData("reason", "timing the target's steps for the speculation policy").build();
        }
        b.withData("target", registry.target().id());
        registry.draft().ifPresent(d -> b.withData("draft", d.id()));
        b.withData("running", admission.running()).withData("waiting", admission.waiting());
        if (admission.draining()) {
            return b.down().withData("reason", "shutting down").build();
        }
        // Saturation does not take the pod out of rotation: 429s shed the excess, and a readiness that
        // flapped with load would move all traffic onto the other pods and saturate them in turn.
        b.withData("saturated", admission.saturated());
        long now = System.nanoTime();
        if (now - lastProbe > intervalNanos) {
            probe();
        }
        if (lastFailure != null) {
            return b.down().withData("reason", "forward pass failed: " + lastFailure).build();
        }
        return b.up().withData("last_forward_pass_ms_ago", (System.nanoTime() - lastProbe) / 1_000_000).build();
    }

    /** One token through each model on a fresh cache: the engine really runs. */
    synchronized void probe() {
        try {
            check(registry.target().lm(), registry.target().tokenizer().bosId());
            registry.draft().ifPresent(d -> check(d.lm(), d.tokenizer().bosId()));
            lastFailure = null;
        } catch (RuntimeException e) {
            lastFailure = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        lastProbe = System.nanoTime();
    }

    private static void check(CausalLm lm, int bos) {
        try (KvCache cache = lm.newCache()) {
            Logits l = lm.forward(cache, Math.max(bos, 0));
            float v = l.get(0, 0);
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                throw new IllegalStateException("logits are not finite");
            }
        }
    }
}
