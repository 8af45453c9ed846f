package dev.tandem.serving;

import dev.tandem.generation.BatchStep;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.Sequence;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import jakarta.annotation.PreDestroy;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Runs generations under admission control, plain or assisted as each request's {@link DecodingPolicy.Decision}
 * says, over the one loaded copy of each model: each request joins its model's {@link Scheduler} (the running batch) and
 * its thread relays the text; measures them (metrics, the A/B experiment) and reports the step in
 * progress to the liveness watchdog.
 */
@ApplicationScoped
public class GenerationService {
    /** How long start-up waits for the step profile (3-4 s on the bundled pair); readiness waits for it in any case. */
    private static final Duration PROFILE_TIMEOUT = Duration.ofSeconds(60);
    private static final Logger LOG = Logger.getLogger(GenerationService.class);
    private final AdmissionControl admission;
    private final ModelRegistry registry;
    private final RequestMetrics metrics;
    private final ExperimentStats experiment;
    private final AtomicLong finished = new AtomicLong();
    private final AtomicLong cancelled = new AtomicLong();
    /** Set when shutdown can wait no longer: every running generation stops at its next step. */
    private volatile boolean abandonAll;
    /** The decoding loop of each served target, by model id. */
    private final Map<String, Scheduler> schedulers = new ConcurrentHashMap<>();
    private final int maxBatchedTokens;
    private final double prefillRatio;
    private final String policy;
    /** How the scheduler feeds the models, for the KV demand (chunked prompts, a draft that may lag). */
    private final KvDemand.Feeds feeds;

    GenerationService(AdmissionControl admission, ModelRegistry registry, RequestMetrics metrics, ExperimentStats experiment,
                      TandemConfig config) {
        this.maxBatchedTokens = config.scheduler().maxBatchedTokens();
        this.prefillRatio = config.scheduler().prefillRatio();
        new PrefillPace(prefillRatio);  // a bad value fails start-up here, naming the key
        this.policy = config.assisted().policy();
        if (!policy.equals("auto") && !policy.equals("fixed")) {
            throw new IllegalArgumentException("tandem.assisted.policy must be 'auto' or 'fixed', is '" + policy + "'");
        }
        if (maxBatchedTokens < 1) {
            throw new IllegalArgumentException("tandem.scheduler.max-batched-tokens must be at least 1, is " + maxBatchedTokens);
        }
        this.feeds = KvDemand.Feeds.of(config);
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
     * draft when {@code decision} uses it), or {@link AdmissionControl.Rejected} (413 when they exceed
     * the whole budget, 429 when they do not fit in time). The generation releases both when it ends.
     */
    public AdmissionControl.Permit admit(ServedModel model, GenerationRequest request, DecodingPolicy.Decision decision) {
        return admission.admit(KvDemand.of(model, registry.draft().orElse(null), request, decision.decoding(), feeds));
    }

    /**
     * Generates with a slot already held, decoded as {@code decision} says ({@link DecodingPolicy}), and records the
     * request under its experiment arm; closes the slot when done. The sequence joins the model's scheduler (the
     * running batch) at its next step; this thread relays its text to {@code listener} and passes on a cancellation,
     * so a slow or vanished client never holds up the batch.
     */
    public GenerationResult generate(AdmissionControl.Permit permit, ServedModel model, GenerationRequest request,
                                     DecodingPolicy.Decision decision, GenerationListener listener) {
        try (permit) {
            Relay relay = new Relay();
            Sequence sequence = switch (decision.decoding()) {
                case DecodingMode.Plain plain -> model.decoder().newSequence(request, relay);
                case DecodingMode.Assisted assisted -> model.assisted().newSequence(request, assisted, relay);
            };
            Scheduler.Entry entry = scheduler(model).submit(sequence);
            GenerationResult r = relay.relay(entry.done, listener, this);
            long end = System.nanoTime();
            if (r.finishReason() == FinishReason.CANCELLED) {
                cancelled.incrementAndGet();
                metrics.failure("cancelled");
                return r;
            }
            finished.incrementAndGet();
            long e2e = end - permit.requestedAt();
            long ttft = (relay.firstText == 0 ? end : relay.firstText) - permit.requestedAt();
            metrics.record(decision.arm(), r, permit.queueNanos(), e2e, ttft, entry.meanLoad());
            experiment.record(decision.arm(), r.completionTokens(), e2e / 1e9, ttft / 1e9, r.stats().numDraftTokens(),
                    r.stats().numAcceptedTokens(), entry.meanLoad());
            return r;
        }
    }

    /**
     * Starts the target's decoding loop at start-up and waits for its profile of step costs (auto policy, a few
     * seconds), so that the profile runs before the first request and is not timed beside the rest of start-up.
     */
    void onStart(@Observes @jakarta.annotation.Priority(jakarta.interceptor.Interceptor.Priority.APPLICATION + 1000)
                 StartupEvent event) throws InterruptedException {  // after ModelRegistry's (default priority) has loaded the models
        if (registry.isReady() && !scheduler(registry.target()).awaitStarted(PROFILE_TIMEOUT)) {
            LOG.warnf("the step profile of %s is still running after %s; readiness waits for it", registry.target().id(), PROFILE_TIMEOUT);
        }
    }

    /**
     * The decoding loop of {@code model}, started on first use (the target's at start-up), its steps measured
     * ({@link RequestMetrics#steps}).
     */
    private Scheduler scheduler(ServedModel model) {
        return schedulers.computeIfAbsent(model.id(), id -> {
            dev.tandem.engine.CausalLm draft = registry.draft().map(ServedModel::lm).orElse(null);
            Scheduler s;
            if ("auto".equals(policy)) {
                StepCostModel cost = new StepCostModel();
                s = new Scheduler(id, new BatchStep(model.lm()), maxBatchedTokens, new PrefillPace(prefillRatio),
                        new AutoSpeculation(cost), metrics.steps(id), () -> StepProfile.run(model.lm(), draft, cost));
            } else {
                s = new Scheduler(id, new BatchStep(model.lm()), maxBatchedTokens, new PrefillPace(prefillRatio),
                        SpeculationPolicy.FIXED, metrics.steps(id), () -> { });
            }
            metrics.runningSequences(id, s::running);
            return s;
        });
    }

    /**
     * Whether the target's decoding loop has run its start-up profile (auto policy) and steps requests. The profile
     * times steps for a few seconds: requests that arrived meanwhile would wait, and work beside it (another process
     * starting, a benchmark's load) would distort the prices the policy keeps for the life of the service.
     */
    public boolean targetStarted() {
        if (!registry.isReady()) {
            return false;
        }
        Scheduler s = schedulers.get(registry.target().id());
        return s != null && s.started();
    }

    /** Seconds the longest decoding step in progress has taken so far (0 when none runs): the liveness watchdog's input. */
    public double longestStepSeconds() {
        return schedulers.values().stream().mapToDouble(Scheduler::stepSeconds).max().orElse(0);
    }

    /** Stops every running generation at its next decoding step (shutdown past its time limit). */
    void abandonAll() {
        abandonAll = true;
        schedulers.values().forEach(Scheduler::abandonAll);
    }

    @PreDestroy
    void stopSchedulers() {
        schedulers.values().forEach(Scheduler::close);
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

    /**
     * The sequence's listener on the scheduler thread, and the request thread's side: text is queued by the
     * scheduler and written to the client by the request thread; the request thread polls its client for
     * cancellation and raises a flag the scheduler reads at its next step.
     */
    private static final class Relay implements GenerationListener {
        private static final Object DONE = new Object();
        private final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        private volatile boolean cancelled;
        private long firstText;

        private record Text(String text, List<TokenLogprob> logprobs) {
        }

        @Override
        public void onText(String text, List<TokenLogprob> logprobs) {  // scheduler thread
            events.add(new Text(text, logprobs));
        }

        @Override
        public boolean isCancelled() {  // scheduler thread
            return cancelled;
        }

        /** Request thread: relays text to {@code client} until the sequence is done, then returns its result. */
        GenerationResult relay(CompletableFuture<GenerationResult> done, GenerationListener client,
                               GenerationService service) {
            done.whenComplete((r, e) -> events.add(DONE));
            try {
                while (true) {
                    Object event = events.poll(50, TimeUnit.MILLISECONDS);
                    if (event == DONE) {
                        break;
                    }
                    if (event instanceof Text t) {
                        if (firstText == 0) {
                            firstText = System.nanoTime();
                        }
                        client.onText(t.text(), t.logprobs());
                    }
                    if (!cancelled && (client.isCancelled() || service.abandonAll)) {
                        cancelled = true;
                    }
                }
            } catch (InterruptedException e) {
                cancelled = true;
                Thread.currentThread().interrupt();
            }
            try {
                return done.join();
            } catch (CompletionException e) {
                if (e.getCause() instanceof RuntimeException re) {
                    throw re;
                }
                throw e;
            }
        }
    }
}
