package dev.tandem.serving;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.FinishReason;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs generations under admission control, plain or assisted as each request asks, over the one
 * loaded copy of each model.
 */
@ApplicationScoped
public class GenerationService {
    private final AdmissionControl admission;
    private final AtomicLong finished = new AtomicLong();
    private final AtomicLong cancelled = new AtomicLong();

    GenerationService(AdmissionControl admission) {
        this.admission = admission;
    }

    /** A decoding slot (or {@link AdmissionControl.Rejected}); take it before answering, so a refusal is a status code. */
    public AdmissionControl.Permit admit() {
        return admission.admit();
    }

    /** Generates with a slot already held; closes the slot when done. {@code assist} null means plain decoding. */
    public GenerationResult generate(AdmissionControl.Permit permit, ServedModel model, GenerationRequest request,
                                     AssistOptions assist, GenerationListener listener) {
        try (permit) {
            GenerationResult r = assist == null ? model.decoder().generate(request, listener)
                    : model.assisted().generate(request, assist, listener);
            (r.finishReason() == FinishReason.CANCELLED ? cancelled : finished).incrementAndGet();
            return r;
        }
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
}
