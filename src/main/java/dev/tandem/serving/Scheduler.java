package dev.tandem.serving;

import dev.tandem.generation.BatchStep;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.Sequence;
import java.util.ArrayList;
import java.util.List;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * The decoding loop of one served target: one thread advances every running sequence together,
 * step after step (continuous batching, as vLLM's engine core and OpenVINO GenAI's {@code step()}).
 *
 * <p>Each step:
 * <ol>
 *   <li>takes in the sequences admitted since the last step (they join at once; admission control
 *       has already reserved their slot and KV bytes);</li>
 *   <li>ends the sequences whose client went away or that filled the context;</li>
 *   <li>plans the step under a token budget ({@code tandem.scheduler.max-batched-tokens}, vLLM's
 *       {@code max_num_batched_tokens}): every decoding sequence first, one token plus the candidates
 *       the speculation policy grants it; then prompt chunks, oldest request first, in what the
 *       budget leaves (chunked prefill: a long prompt is fed over several steps, so running streams
 *       keep their inter-token latency), and beside decoding sequences only as many as take about
 *       {@code tandem.scheduler.prefill-ratio} times their decode call ({@link PrefillPace});</li>
 *   <li>runs the step ({@link BatchStep}: the draft's proposal steps batched, then one target call for the
 *       decoding sequences and one for the prompt chunks);</li>
 *   <li>completes the sequences that ended.</li>
 * </ol>
 * Request threads wait on their sequence's future and relay its text to their clients
 * ({@link GenerationService}); nothing a client does can block this loop.
 */
final class Scheduler implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Scheduler.class);
    /** The oldest waiting prompt gets at least this many tokens a step, whatever the decoding sequences take. */
    static final int MIN_CHUNK = Sequence.MIN_PREFILL_CHUNK;

    private final String name;
    private final BatchStep step;
    private final int maxBatchedTokens;
    private final PrefillPace pace;
    private final SpeculationPolicy policy;
    private final Consumer<StepStats> onStep;  // what each step did, for metrics
    private final LinkedBlockingQueue<Entry> inbox = new LinkedBlockingQueue<>();
    private final List<Entry> running = new ArrayList<>();
    private final Thread thread;
    private volatile boolean closed;
    private volatile boolean abandonAll;
    /** System.nanoTime() when the step in progress began; 0 between steps. */
    private volatile long stepStartedAt;
    private volatile int runningCount;
    private int[] ks = new int[16];  // the policy's k per decoding sequence (reused)
    private final Runnable beforeFirstStep;
    private final CountDownLatch started = new CountDownLatch(1);

    /** A sequence in the loop and the future its request thread waits on. */
    static final class Entry {
        final Sequence sequence;
        final CompletableFuture<GenerationResult> done = new CompletableFuture<>();
        /** Running sequences at each step it took part in, summed (with steps: the mean load it ran under). */
        long loadSum;
        int steps;

        Entry(Sequence sequence) {
            this.sequence = sequence;
        }

        /** The mean number of sequences that ran alongside it (itself included); 0 before its first step. */
        double meanLoad() {
            return steps == 0 ? 0 : (double) loadSum / steps;
        }
    }

    /** A loop whose prompt chunks are limited by the token budget only. */
    Scheduler(String name, BatchStep step, int maxBatchedTokens, SpeculationPolicy policy, Consumer<StepStats> onStep) {
        this(name, step, maxBatchedTokens, new PrefillPace(0), policy, onStep, () -> { });
    }

    /**
     * A loop whose prompt chunks beside decoding sequences also follow {@code pace}, running {@code beforeFirstStep}
     * (the start-up profile of the models) on the loop's thread first.
     */
    Scheduler(String name, BatchStep step, int maxBatchedTokens, PrefillPace pace, SpeculationPolicy policy,
              Consumer<StepStats> onStep, Runnable beforeFirstStep) {
        this.beforeFirstStep = beforeFirstStep;
        this.pace = pace;
        this.name = name;
        this.step = step;
        this.maxBatchedTokens = maxBatchedTokens;
        this.policy = policy;
        this.onStep = onStep;
        this.thread = Thread.ofPlatform().name("tandem-scheduler-" + name).daemon().unstarted(this::loop);
        this.thread.start();
    }

    /** Adds {@code s} to the running batch at the next step. */
    Entry submit(Sequence s) {
        Entry e = new Entry(s);
        if (closed) {
            s.close();
            e.done.completeExceptionally(new IllegalStateException("the scheduler of " + name + " has stopped"));
            return e;
        }
        inbox.add(e);
        return e;
    }

    /** Sequences in the running batch. */
    int running() {
        return runningCount;
    }

    /** Seconds the step in progress has taken so far; 0 between steps. */
    double stepSeconds() {
        long started = stepStartedAt;
        return started == 0 ? 0 : (System.nanoTime() - started) / 1e9;
    }

    /** Ends every sequence (running and waiting to join) as cancelled at the next step: shutdown that can wait no longer. */
    void abandonAll() {
        abandonAll = true;
        inbox.add(new Entry(null));  // wakes the loop if it is idle
    }

    /** Whether the loop has run its start-up work (the profile) and steps requests. */
    boolean started() {
        return started.getCount() == 0;
    }

    /** Waits until the loop has run its start-up work (the profile); false if it had not after {@code timeout}. */
    boolean awaitStarted(Duration timeout) throws InterruptedException {
        return started.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void loop() {
        try {
            beforeFirstStep.run();
        } catch (RuntimeException e) {
            LOG.warn("the start-up profile of " + name + " failed; the speculation policy learns from live steps", e);
        } finally {
            started.countDown();
        }
        while (!closed) {
            try {
                if (running.isEmpty()) {
                    Entry first = inbox.poll(1, TimeUnit.SECONDS);
                    if (first != null) {
                        join(first);
                    }
                }
                for (Entry e; (e = inbox.poll()) != null; ) {
                    join(e);
                }
                if (!running.isEmpty()) {
                    runOneStep();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            } catch (RuntimeException | Error e) {  // a bug in the loop: fail what runs, keep serving
                LOG.error("the scheduler of " + name + " failed a step", e);
                failAll(e instanceof RuntimeException re ? re : new IllegalStateException(e));
            }
        }
        failAll(new IllegalStateException("the scheduler of " + name + " has stopped"));
    }

    private void join(Entry e) {
        if (e.sequence != null) {
            running.add(e);
        }
    }

    private void runOneStep() {
        // 1. end what the client left or what filled the context
        List<Entry> batch = new ArrayList<>(running.size());
        for (Entry e : running) {
            if (abandonAll) {
                e.sequence.cancel();
            }
            if (!e.sequence.endIfDone()) {
                batch.add(e);
            }
        }
        // 2. plan: every decoding sequence steps, with the candidates the policy gives it; prompt chunks take what
        //    the token budget leaves, and beside decoding sequences no more than the pace allows (chunks costing about
        //    the prefill ratio times the decode call), oldest first (the oldest always gets at least MIN_CHUNK)
        List<Sequence> decoding = new ArrayList<>(batch.size());
        List<Entry> plannedEntries = new ArrayList<>(batch.size());
        for (Entry e : batch) {
            if (!e.sequence.prefilling()) {
                decoding.add(e.sequence);
                plannedEntries.add(e);
            }
        }
        List<Sequence> prefilling = new ArrayList<>();
        List<Integer> chunks = new ArrayList<>();
        int budget = Math.min(maxBatchedTokens - decoding.size(), pace.promptTokens(decoding.size()));
        for (Entry e : batch) {
            Sequence s = e.sequence;
            if (s.prefilling()) {
                // the oldest prompt is always fed some tokens, so decoding sequences cannot starve it
                int chunk = Math.min(s.promptRemaining(), prefilling.isEmpty() ? Math.max(budget, MIN_CHUNK) : budget);
                if (chunk > 0) {
                    prefilling.add(s);
                    chunks.add(chunk);
                    plannedEntries.add(e);
                    budget -= chunk;
                }
            }
        }
        if (ks.length < decoding.size()) {
            ks = new int[Math.max(decoding.size(), 2 * ks.length)];
        }
        policy.choose(decoding, ks);
        int candidates = 0;
        for (int i = 0; i < decoding.size(); i++) {
            decoding.get(i).planDecode(ks[i]);
            candidates += decoding.get(i).plannedTokens() - 1;
        }
        // candidates come out of the prompt chunks' share of the budget (the newest prompt gives way first)
        for (int i = prefilling.size() - 1; i >= 0 && candidates > 0; i--) {
            int cut = Math.min(candidates, chunks.get(i) - (i == 0 ? Math.min(chunks.get(0), MIN_CHUNK) : 0));
            if (cut > 0) {
                chunks.set(i, chunks.get(i) - cut);
                candidates -= cut;
            }
        }
        List<Sequence> planned = new ArrayList<>(decoding);
        boolean draftsFollow = policy.draftFollowsPrompts(decoding, ks);
        for (int i = 0; i < prefilling.size(); i++) {
            if (chunks.get(i) > 0) {
                prefilling.get(i).planPrefill(chunks.get(i), draftsFollow);
                planned.add(prefilling.get(i));
            } else {
                plannedEntries.remove(batchEntry(plannedEntries, prefilling.get(i)));
            }
        }
        // 3. run it
        if (!planned.isEmpty()) {
            int promptBefore = 0;
            int emittedBefore = 0;
            int proposedBefore = 0;
            int prefillRows = 0;
            for (Sequence s : planned) {
                prefillRows += s.prefilling() ? 1 : 0;
                promptBefore += s.promptRemaining();
                emittedBefore += s.emittedTokens();
                proposedBefore += s.proposedTokens();
            }
            long started = System.nanoTime();
            stepStartedAt = started;
            try {
                step.run(planned);
                BatchStep.Timing timing = step.lastTiming();
                policy.observe(decoding, timing);
                pace.observe(timing);
                if (LOG.isTraceEnabled()) {  // every step: what the averages of the metrics are made of
                    LOG.tracef("step: decode rows %d tokens %d longest %d, %.2f ms; draft calls %d rows %d tokens %d, %.2f ms;"
                                    + " prompt rows %d tokens %d, %.2f ms", timing.targetRows(), timing.targetTokens(),
                            timing.targetMaxFeed(), timing.targetNanos() / 1e6, timing.draftCalls(), timing.draftRows(),
                            timing.draftTokens(), timing.draftNanos() / 1e6, timing.promptRows(), timing.promptTokens(),
                            timing.promptNanos() / 1e6);
                }
            } catch (RuntimeException e) {  // the engine failed the step: every sequence in it fails
                for (Sequence s : planned) {
                    s.fail(e);
                }
            } finally {
                stepStartedAt = 0;
            }
            for (Entry e : plannedEntries) {
                e.loadSum += planned.size();
                e.steps++;
            }
            onStep.accept(stepStats(planned, prefillRows, System.nanoTime() - started, promptBefore, emittedBefore,
                    proposedBefore));
        }
        // 4. complete what ended
        running.removeIf(e -> {
            if (e.sequence.finished()) {
                complete(e);
                return true;
            }
            return false;
        });
        runningCount = running.size();
    }

    private static Entry batchEntry(List<Entry> entries, Sequence s) {
        for (Entry e : entries) {
            if (e.sequence == s) {
                return e;
            }
        }
        return null;
    }

    /** The step's facts, from the planned sequences' counters after the step and their sums before it. */
    private static StepStats stepStats(List<Sequence> planned, int prefilling, long nanos, int promptBefore, int emittedBefore,
                                       int proposedBefore) {
        int promptAfter = 0;
        int emittedAfter = 0;
        int proposedAfter = 0;
        for (Sequence s : planned) {
            promptAfter += s.promptRemaining();
            emittedAfter += s.emittedTokens();
            proposedAfter += s.proposedTokens();
        }
        int prompt = promptBefore - promptAfter;
        int proposed = proposedAfter - proposedBefore;
        int decoding = planned.size() - prefilling;
        return new StepStats(planned.size(), decoding, prefilling, prompt + decoding + proposed, prompt,
                proposed, emittedAfter - emittedBefore, nanos);
    }

    private static void complete(Entry e) {
        try {
            e.done.complete(e.sequence.result());
        } catch (RuntimeException failure) {
            e.done.completeExceptionally(failure);
        }
    }

    private void failAll(RuntimeException cause) {
        for (Entry e : running) {
            e.sequence.fail(cause);
            complete(e);
        }
        running.clear();
        for (Entry e; (e = inbox.poll()) != null; ) {
            if (e.sequence != null) {
                e.sequence.fail(cause);
                complete(e);
            }
        }
        runningCount = 0;
    }

    /** Stops the loop after the step in progress; sequences still running fail. */
    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
