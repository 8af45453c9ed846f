package dev.tandem.serving;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs generations under admission control, plain or assisted as each request asks, over the one
 * loaded copy of each model; measures them (metrics, the A/B experiment) and keeps a heartbeat per
 * running generation for the liveness watchdog.
 */
@ApplicationScoped
public class GenerationService {
    private final AdmissionControl admission;
    private final ModelRegistry registry;
    private final RequestMetrics metrics;
    private final ExperimentStats experiment;
    private final AtomicLong finished = new AtomicLong();
    private final AtomicLong cancelled = new AtomicLong();
    private final AtomicLong ids = new AtomicLong();
    /** Set when shutdown can wait no longer: every running generation stops at its next step. */
    private volatile boolean abandonAll;
    /** Running generation -> System.nanoTime() of its last decoding step. */
    private final Map<Long, AtomicLong> heartbeats = new ConcurrentHashMap<>();

    GenerationService(AdmissionControl admission, ModelRegistry registry, RequestMetrics metrics, ExperimentStats experiment) {
        this.admission = admission;
        this.registry = registry;
        this.metrics = metrics;
        this.experiment = experiment;
    }

    /** A decoding slot (or {@link AdmissionControl.Rejected}); take it before answering, so a refusal is a status code. */
    public AdmissionControl.Permit admit() {
        return admission.admit();
    }

    /**
     * A decoding slot and the request's worst-case KV-cache bytes ({@link KvDemand}: target, plus the
     * draft when {@code assist} uses it), or {@link AdmissionControl.Rejected} (413 when they exceed
     * the whole budget, 429 when they do not fit in time). The generation releases both when it ends.
     */
    public AdmissionControl.Permit admit(ServedModel model, GenerationRequest request, AssistOptions assist) {
        return admission.admit(KvDemand.of(model, registry.draft().orElse(null), request, assist));
    }

    /** Generates with a slot already held; closes the slot when done. {@code assist} null means plain decoding. */
    public GenerationResult generate(AdmissionControl.Permit permit, ServedModel model, GenerationRequest request,
                                     AssistOptions assist, GenerationListener listener) {
        return generate(permit, model, request, assist, listener, Experiment.NONE);
    }

    /** As above, recording the request under experiment arm {@code arm}. */
    public GenerationResult generate(AdmissionControl.Permit permit, ServedModel model, GenerationRequest request,
                                     AssistOptions assist, GenerationListener listener, String arm) {
        long id = ids.incrementAndGet();
        AtomicLong heartbeat = new AtomicLong(System.nanoTime());
        heartbeats.put(id, heartbeat);
        Tracking tracking = new Tracking(listener, heartbeat, this);
        try (permit) {
            GenerationResult r = assist == null ? model.decoder().generate(request, tracking)
                    : model.assisted().generate(request, assist, tracking);
            long end = System.nanoTime();
            if (r.finishReason() == FinishReason.CANCELLED) {
                cancelled.incrementAndGet();
                metrics.failure("cancelled");
                return r;
            }
            finished.incrementAndGet();
            long e2e = end - permit.requestedAt();
            long ttft = (tracking.firstText == 0 ? end : tracking.firstText) - permit.requestedAt();
            metrics.record(arm, r, permit.queueNanos(), e2e, ttft);
            experiment.record(arm, r.completionTokens(), e2e / 1e9, ttft / 1e9, r.stats().numDraftTokens(),
                    r.stats().numAcceptedTokens());
            return r;
        } finally {
            heartbeats.remove(id);
        }
    }

    /** Seconds since the least recent decoding step of any running generation (0 when none runs). */
    public double longestStepSeconds() {
        long now = System.nanoTime();
        return heartbeats.values().stream().mapToLong(h -> now - h.get()).max().orElse(0) / 1e9;
    }

    /** Stops every running generation at its next decoding step (shutdown past its time limit). */
    void abandonAll() {
        abandonAll = true;
    }

    /** Generations that ran to their end (EOS, stop string, length). */
    public long finished() {
        return finished.get();
    }

    /** Generations stopped because the client went away. */
    public long cancelled() {
        return cancelled.get();
    }

    public AdmissionControl admission() {
        return admission;
    }

    /** Passes everything through, noting the first text and a heartbeat at every step (decoders poll isCancelled each step). */
    private static final class Tracking implements GenerationListener {
        private final GenerationListener inner;
        private final AtomicLong heartbeat;
        private final GenerationService service;
        private volatile long firstText;

        Tracking(GenerationListener inner, AtomicLong heartbeat, GenerationService service) {
            this.inner = inner;
            this.heartbeat = heartbeat;
            this.service = service;
        }

        @Override
        public void onText(String text, List<TokenLogprob> logprobs) {
            if (firstText == 0) {
                firstText = System.nanoTime();
            }
            inner.onText(text, logprobs);
        }

        @Override
        public boolean isCancelled() {
            heartbeat.set(System.nanoTime());
            return service.abandonAll || inner.isCancelled();
        }
    }
}
