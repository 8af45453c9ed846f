package dev.tandem.serving;

import dev.tandem.generation.DecodingStats;
import dev.tandem.generation.GenerationResult;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;

/**
 * Prometheus metrics under vLLM's names with the prefix {@code tandem_}, so dashboards built for
 * vLLM carry over. Every request-level metric is tagged {@code decode_mode} (assisted | plain),
 * {@code assistant} (draft | prompt_lookup | none) and {@code arm} (the experiment arm).
 */
@ApplicationScoped
public class RequestMetrics {
    private final MeterRegistry registry;

    RequestMetrics(MeterRegistry registry, AdmissionControl admission) {
        this.registry = registry;
        Gauge.builder("tandem.num_requests_running", admission, AdmissionControl::running)
                .description("Requests decoding now").register(registry);
        Gauge.builder("tandem.num_requests_waiting", admission, AdmissionControl::waiting)
                .description("Requests waiting for a decoding slot").register(registry);
        Gauge.builder("tandem.kv_cache_reserved_bytes", admission, AdmissionControl::reservedKvBytes)
                .description("KV-cache bytes reserved by running requests (worst case per request, as allocated)")
                .baseUnit("bytes").register(registry);
        if (admission.budget().limited()) {
            Gauge.builder("tandem.kv_cache_budget_bytes", admission, a -> a.budget().bytes())
                    .description("KV-cache budget (tandem.memory.budget)").baseUnit("bytes").register(registry);
            Gauge.builder("tandem.kv_cache_usage_perc", admission, a -> (double) a.reservedKvBytes() / a.budget().bytes())
                    .description("Reserved share of the KV-cache budget, 0..1 (vLLM's kv_cache_usage_perc)").register(registry);
        }
    }

    /** One finished (or cancelled) generation. */
    public void record(String arm, GenerationResult r, long queueNanos, long e2eNanos, long ttftNanos) {
        DecodingStats s = r.stats();
        Tags tags = Tags.of("decode_mode", s.mode(), "assistant", s.assistant() == null ? "none" : s.assistant(), "arm", arm);
        timer("tandem.request_queue_time", "Time waiting for a decoding slot", tags).record(Duration.ofNanos(queueNanos));
        timer("tandem.e2e_request_latency", "Request latency from arrival to the last token", tags).record(Duration.ofNanos(e2eNanos));
        timer("tandem.time_to_first_token", "Time from arrival to the first token", tags).record(Duration.ofNanos(ttftNanos));
        if (r.completionTokens() > 1) {
            long itl = Math.max(0, e2eNanos - ttftNanos) / (r.completionTokens() - 1);
            timer("tandem.inter_token_latency", "Mean time between tokens of a request", tags).record(Duration.ofNanos(itl));
        }
        counter("tandem.prompt_tokens", "Prompt tokens processed", tags).increment(r.promptTokens());
        counter("tandem.generation_tokens", "Tokens generated", tags).increment(r.completionTokens());
        if (s.assisted()) {
            counter("tandem.spec_decode_num_drafts", "Verification rounds with candidates", tags).increment(s.numSpecSteps());
            counter("tandem.spec_decode_num_draft_tokens", "Candidate tokens proposed", tags).increment(s.numDraftTokens());
            counter("tandem.spec_decode_num_accepted_tokens", "Candidate tokens accepted", tags).increment(s.numAcceptedTokens());
            int[] perPos = s.acceptedPerPosition();
            for (int i = 0; i < perPos.length; i++) {
                if (perPos[i] > 0) {
                    counter("tandem.spec_decode_num_accepted_tokens_per_pos", "Accepted candidates by draft position",
                            tags.and("position", Integer.toString(i))).increment(perPos[i]);
                }
            }
        }
    }

    /** A request that failed: validation, rejected, cancelled, or error. */
    public void failure(String reason) {
        Counter.builder("tandem.request_failures").description("Requests that did not complete, by reason")
                .tag("reason", reason).register(registry).increment();
    }

    private Timer timer(String name, String description, Tags tags) {
        return Timer.builder(name).description(description).tags(tags).publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(2)).register(registry);
    }

    private Counter counter(String name, String description, Tags tags) {
        return Counter.builder(name).description(description).tags(tags).register(registry);
    }
}
