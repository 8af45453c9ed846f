package dev.tandem.serving;

import dev.tandem.generation.DecodingStats;
import dev.tandem.generation.GenerationResult;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.IntSupplier;

/**
 * Prometheus metrics under vLLM's names with the prefix {@code tandem_}, so dashboards built for
 * vLLM carry over. Every request-level metric is tagged {@code decode_mode} (assisted | plain),
 * {@code assistant} (draft | prompt_lookup | none) and {@code arm} (the experiment arm).
 *
 * <p>Per-step metrics ({@link #steps}) come from each target's scheduler and are tagged {@code model_name}
 * (vLLM's label). The {@code tandem_experiment_*} metrics repeat the experiment's latencies and tokens tagged
 * {@code arm} and {@code load} (the bucket of the mean batch size the request ran under,
 * {@link ExperimentStats#loadBucket}), so a dashboard shows where assisted decoding stops paying; they are separate
 * metrics rather than a {@code load} tag on the request metrics so that those keep their labels and their size.
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

    /** One finished (or cancelled) generation, run under a mean batch size of {@code meanLoad} sequences per step. */
    public void record(String arm, GenerationResult r, long queueNanos, long e2eNanos, long ttftNanos, double meanLoad) {
        DecodingStats s = r.stats();
        Tags tags = Tags.of("decode_mode", s.mode(), "assistant", s.assistant() == null ? "none" : s.assistant(), "arm", arm);
        timer("tandem.request_queue_time", "Time waiting for a decoding slot", tags).record(Duration.ofNanos(queueNanos));
        timer("tandem.e2e_request_latency", "Request latency from arrival to the last token", tags).record(Duration.ofNanos(e2eNanos));
        timer("tandem.time_to_first_token", "Time from arrival to the first token", tags).record(Duration.ofNanos(ttftNanos));
        timer("tandem.request_prefill_time", "Time feeding the prompt, from its first chunk to the first token", tags)
                .record(Duration.ofNanos(r.prefillNanos()));
        timer("tandem.request_decode_time", "Time decoding, from the first token to the last", tags)
                .record(Duration.ofNanos(r.decodeNanos()));
        long itl = r.completionTokens() > 1 ? Math.max(0, e2eNanos - ttftNanos) / (r.completionTokens() - 1) : -1;
        if (itl >= 0) {
            timer("tandem.inter_token_latency", "Mean time between tokens of a request", tags).record(Duration.ofNanos(itl));
        }
        recordByLoad(arm, r.completionTokens(), e2eNanos, ttftNanos, itl, meanLoad);
        counter("tandem.prompt_tokens", "Prompt tokens processed", tags).increment(r.promptTokens());
        counter("tandem.generation_tokens", "Tokens generated", tags).increment(r.completionTokens());
        if (s.assisted()) {
            counter("tandem.spec_decode_num_drafts", "Verification rounds with candidates", tags).increment(s.numSpecSteps());
            counter("tandem.spec_decode_num_draft_tokens", "Candidate tokens proposed", tags).increment(s.numDraftTokens());
            counter("tandem.spec_decode_num_accepted_tokens", "Candidate tokens accepted", tags).increment(s.numAcceptedTokens());
            counter("tandem.spec_decode_num_decode_steps", "Decode steps of assisted requests (with or without candidates)",
                    tags).increment(s.numDecodeSteps());
            counter("tandem.spec_decode_num_proposed_tokens",
                    "Candidates proposed over those steps (the k chosen; per step: divide by num_decode_steps)", tags)
                    .increment(s.numProposedTokens());
            int[] perPos = s.acceptedPerPosition();
            for (int i = 0; i < perPos.length; i++) {
                if (perPos[i] > 0) {
                    counter("tandem.spec_decode_num_accepted_tokens_per_pos", "Accepted candidates by draft position",
                            tags.and("position", Integer.toString(i))).increment(perPos[i]);
                }
            }
        }
    }

    /** The experiment's view by load: e2e time and tokens (tokens/s), TTFT and ITL, per arm and load bucket. */
    private void recordByLoad(String arm, int tokens, long e2eNanos, long ttftNanos, long itlNanos, double meanLoad) {
        Tags tags = Tags.of("arm", arm, "load", ExperimentStats.loadBucket(meanLoad));
        Timer.builder("tandem.experiment_e2e_request_latency").description("Request latency by arm and load (sum: seconds)")
                .tags(tags).register(registry).record(e2eNanos, TimeUnit.NANOSECONDS);
        Counter.builder("tandem.experiment_generation_tokens").description("Tokens generated by arm and load").tags(tags)
                .register(registry).increment(tokens);
        Timer.builder("tandem.experiment_time_to_first_token").description("Time to first token by arm and load").tags(tags)
                .serviceLevelObjectives(LATENCY_BUCKETS).register(registry).record(ttftNanos, TimeUnit.NANOSECONDS);
        if (itlNanos >= 0) {
            Timer.builder("tandem.experiment_inter_token_latency").description("Mean time between tokens by arm and load")
                    .tags(tags).serviceLevelObjectives(LATENCY_BUCKETS).register(registry).record(itlNanos, TimeUnit.NANOSECONDS);
        }
    }

    /** Buckets of the by-load latency histograms: 1 ms to 1 minute, roughly 1-2.5-5 per decade. */
    private static final Duration[] LATENCY_BUCKETS = {Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5),
            Duration.ofMillis(10), Duration.ofMillis(25), Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250),
            Duration.ofMillis(500), Duration.ofSeconds(1), Duration.ofMillis(2500), Duration.ofSeconds(5), Duration.ofSeconds(10),
            Duration.ofSeconds(30), Duration.ofMinutes(1)};

    /** Buckets of the tokens-per-step histograms (vLLM's for {@code iteration_tokens_total}). */
    private static final double[] TOKEN_BUCKETS = {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};

    /** Buckets of the sequences-per-step and candidates-per-step histograms. */
    private static final double[] COUNT_BUCKETS = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256};

    /**
     * The per-step meters of the scheduler of {@code model}, registered here once: the returned listener records a
     * step without looking anything up.
     */
    Consumer<StepStats> steps(String model) {
        return new StepMetrics(registry, Tags.of("model_name", model));
    }

    /** The gauge of the sequences in the running batch of {@code model}'s scheduler. */
    void runningSequences(String model, IntSupplier running) {
        Gauge.builder("tandem.scheduler_running_sequences", running, IntSupplier::getAsInt).strongReference(true)
                .description("Sequences in the scheduler's running batch (vLLM's num_requests_running, per target)")
                .tag("model_name", model).register(registry);
    }

    /** One scheduler's step meters; {@link #accept} runs on the scheduler thread after every step. */
    private static final class StepMetrics implements Consumer<StepStats> {
        private final DistributionSummary sequences;
        private final DistributionSummary iterationTokens;
        private final DistributionSummary fedTokens;
        private final DistributionSummary promptTokens;
        private final DistributionSummary candidates;
        private final Counter decodeSequences;
        private final Counter emittedTokens;
        private final Timer duration;

        StepMetrics(MeterRegistry registry, Tags tags) {
            sequences = summary(registry, "tandem.step_sequences", "Sequences per scheduler step (the batch size)", tags,
                    COUNT_BUCKETS);
            iterationTokens = summary(registry, "tandem.iteration_tokens_total",
                    "Tokens per scheduler step: prompt tokens fed plus tokens generated (vLLM's definition)", tags, TOKEN_BUCKETS);
            fedTokens = summary(registry, "tandem.step_fed_tokens",
                    "Tokens fed the target per step: prompt chunks, decode tokens and candidates", tags, TOKEN_BUCKETS);
            promptTokens = summary(registry, "tandem.step_prompt_tokens",
                    "Prompt tokens fed per step that fed any (chunked prefill)", tags, TOKEN_BUCKETS);
            candidates = summary(registry, "tandem.step_candidates",
                    "Candidates proposed per step that decoded (all sequences; per sequence: divide by step_decode_sequences)",
                    tags, COUNT_BUCKETS);
            decodeSequences = Counter.builder("tandem.step_decode_sequences").description("Sequences that decoded, over all steps")
                    .tags(tags).register(registry);
            emittedTokens = Counter.builder("tandem.step_emitted_tokens")
                    .description("Tokens emitted by scheduler steps, counted as they are made (goodput: rate it)")
                    .tags(tags).register(registry);
            duration = Timer.builder("tandem.step_duration").description("Time of a scheduler step (draft and target calls)")
                    .tags(tags).publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                    .maximumExpectedValue(Duration.ofSeconds(30)).register(registry);
        }

        private static DistributionSummary summary(MeterRegistry registry, String name, String description, Tags tags,
                                                   double[] buckets) {
            return DistributionSummary.builder(name).description(description).tags(tags).serviceLevelObjectives(buckets)
                    .register(registry);
        }

        @Override
        public void accept(StepStats s) {
            sequences.record(s.sequences());
            iterationTokens.record(s.iterationTokens());
            fedTokens.record(s.tokensFed());
            if (s.promptTokensFed() > 0) {
                promptTokens.record(s.promptTokensFed());
            }
            if (s.decoding() > 0) {
                candidates.record(s.candidatesProposed());
                decodeSequences.increment(s.decoding());
            }
            emittedTokens.increment(s.tokensEmitted());
            duration.record(s.nanos(), TimeUnit.NANOSECONDS);
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
