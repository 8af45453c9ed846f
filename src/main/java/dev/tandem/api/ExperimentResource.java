package dev.tandem.api;

import dev.tandem.serving.Experiment;
import dev.tandem.serving.ExperimentStats;
import dev.tandem.serving.ModelRegistry;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.Map;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;

/** {@code GET /v1/experiments/assisted}: the A/B experiment between assisted and plain decoding, per arm. */
@Path("/v1/experiments/assisted")
@Tag(name = "Experiment")
public class ExperimentResource {
    private final Experiment experiment;
    private final ExperimentStats stats;
    private final ModelRegistry registry;

    ExperimentResource(Experiment experiment, ExperimentStats stats, ModelRegistry registry) {
        this.experiment = experiment;
        this.stats = stats;
        this.registry = registry;
    }

    @GET
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "Per arm: requests, tokens, tokens/s, TTFT and inter-token latency percentiles, acceptance,"
            + " and the estimated speed-up of assisted decoding with a bootstrap 95% interval; by_load repeats the"
            + " comparison per load bucket (mean sequences decoding together while the request ran: 1, 2, 3-4, 5-8, 9-16,"
            + " 17+) with the assisted/plain ratios, to show where assisted decoding stops paying")
    public Map<String, Object> report() {
        // configured on, but without an assisted arm on a target that cannot be rolled back (see DecodingPolicy)
        boolean running = experiment.enabled() && registry.target().assistedUnavailableReason().isEmpty();
        return stats.report(running, experiment.assistedShare());
    }
}
