package dev.tandem.serving;

import dev.tandem.memory.KvFootprint;
import dev.tandem.memory.MemoryPlan;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The memory plan of each served model (target and draft), computed once on first request from the
 * loaded model: weights from its graph, the cache geometry from its engine, the budget admission
 * control enforces, with the prompt fed as the scheduler feeds it ({@link KvDemand.Feeds}).
 */
@ApplicationScoped
public class MemoryPlans {
    private final ModelRegistry registry;
    private final AdmissionControl admission;
    private final KvDemand.Feeds feeds;
    private final Map<String, MemoryPlan> plans = new ConcurrentHashMap<>();

    MemoryPlans(ModelRegistry registry, AdmissionControl admission, TandemConfig config) {
        this.registry = registry;
        this.admission = admission;
        this.feeds = KvDemand.Feeds.of(config);
    }

    /** The plan for the served model {@code m}. */
    public MemoryPlan plan(ServedModel m) {
        boolean isTarget = m == registry.target();
        return plans.computeIfAbsent((isTarget ? "target:" : "draft:") + m.id(), key -> {
            ServedModel draft = registry.draft().orElse(null);
            KvFootprint draftWorst = isTarget && draft != null
                    ? KvFootprint.worst(KvDemand.layout(draft), draft.lm().shape(), Math.min(m.maxContext(), draft.maxContext()),
                    KvDemand.MAX_STEP_FEED, feeds.draftPrefillChunk()).footprint() : null;
            // the draft's own plan (GET /v1/models/{draft}) counts its feeds as it is fed beside the target
            int chunk = isTarget ? feeds.prefillChunk() : feeds.draftPrefillChunk();
            return MemoryPlan.of(m.directory(), m.lm().shape(), "engine", m.maxContext(), KvDemand.layout(m),
                    KvDemand.MAX_STEP_FEED, chunk, admission.budget(), draftWorst);
        });
    }
}
