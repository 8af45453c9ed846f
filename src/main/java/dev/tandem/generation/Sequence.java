package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.model.TextTokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * One request being decoded: its tokens, its KV cache in the target, its sampler, its candidate
 * generator (none for plain decoding), its stop and stream state and its counters.
 *
 * <p>A sequence does not run itself: a step owner (the scheduler, or {@link PlainDecoder} and
 * {@link AssistedDecoder} for a batch of one) plans each step for it, {@link BatchStep} runs the
 * engine calls for every planned sequence together, and the sequence takes its share of the logits.
 * A step is one of:
 * <ul>
 *   <li><b>prefill</b>: the next chunk of the prompt ({@link #planPrefill}); after the last chunk the
 *       first token is sampled from the prompt's last row;</li>
 *   <li><b>decode</b> with k candidates ({@link #planDecode}): the candidate generator proposes up to
 *       k tokens, the target scores the last emitted token and the candidates in one feed, and the
 *       {@link Verifier} keeps between 1 and k+1 tokens; the cache is then rolled back to the kept
 *       tokens. k = 0 is a plain decoding step.</li>
 * </ul>
 * Used by one thread at a time.
 */
public final class Sequence implements AutoCloseable {
    private static final int[] NO_EOS = {};
    /** Weight of a round at a position in the acceptance estimate after n more rounds judged there: 0.9^n (about the last ten count). */
    static final double ACCEPTANCE_DECAY = 0.9;
    /**
     * Weight of a sequence's rounds after n decode steps of it without candidates: 0.99^n (halved in about 70 steps).
     * The rounds that made a policy stop speculating fade while it is stopped, the estimate returns to the prior, and
     * the policy tries again: without this a few rejections right after the prompt stopped a sequence's speculation
     * for the rest of its life, since only a round with candidates could raise the estimate again (measured with
     * ONNX Runtime's spinning pool: auto at one stream proposed nothing in 3 runs where k = 3 was 1.1x faster).
     */
    static final double IDLE_DECAY = 0.99;
    /**
     * The fewest prompt tokens a scheduler feeds the oldest waiting prompt in a step, whatever the decoding sequences
     * take (serving's Scheduler). Here, beside {@link #planPrefill}, so that the memory figures (the planner tool
     * too, which cannot see serving) learn the largest chunk from the same rule: {@link #largestPrefillChunk}.
     */
    public static final int MIN_PREFILL_CHUNK = 16;

    /**
     * The most prompt tokens one step feeds a sequence under a step budget of {@code maxBatchedTokens}
     * ({@code tandem.scheduler.max-batched-tokens}): the budget, or {@link #MIN_PREFILL_CHUNK} when that is smaller.
     * Its caches' step buffers grow only to the largest feed, so this bounds what they take (dev.tandem.memory).
     */
    public static int largestPrefillChunk(int maxBatchedTokens) {
        return Math.max(maxBatchedTokens, MIN_PREFILL_CHUNK);
    }

    private final GenerationRequest request;
    private final CausalLm target;
    private final KvCache cache;
    private final Sampler sampler;
    private final CompletionBuilder out;
    private final GenerationListener listener;
    private final Verifier verifier;
    private final CandidateGenerator proposer;   // null: plain decoding
    /** The assisted options, or null for plain decoding: read off the {@link DecodingMode} the sequence was made with. */
    private final AssistOptions options;
    private final DraftLength draftLength;       // null: plain decoding
    private final Candidates candidates;
    private final PromptLogprobs promptLogprobs; // null unless echo with logprobs
    private final int maxContext;
    private final int[] prompt;
    private final int[] feed = new int[AssistOptions.MAX_ASSISTANT_TOKENS + 1];
    private final int[] acceptedAt = new int[AssistOptions.MAX_ASSISTANT_TOKENS];
    private final Verifier.Output emit = this::emit;

    /** The prompt and emitted tokens; the target's cache holds all of them but the last once decoding. */
    private int[] seq;
    private int length;
    private int prefilled;            // prompt tokens in the cache
    private int plannedChunk;         // this step's prefill chunk, or 0
    private boolean plannedDraftPrefill;  // and whether the draft model is fed it too
    private int plannedK = -1;        // this step's candidates asked for, or -1 when not decoding this step
    private boolean finished;
    private RuntimeException failure;

    private int specSteps;
    private int drafted;
    private int accepted;
    private int longestRound;
    private int lastK;                // candidates proposed in the latest decode step
    private int decodeSteps;
    private int proposedTotal;
    private int lastAccepted;         // of the latest decode step's candidates, how many were kept
    private int lastJudged;           // and how many were judged in order (the kept ones and the first rejected one)
    private int shadowPosition = -1;  // the latest round kept all its k candidates: position k (candidate k+1) is judged in shadow
    private int lastShadowPosition = -1;  // the latest decode step's shadow judgement: its position, or -1
    private double lastShadowKept;        // and the probability that candidate was kept
    // the acceptance estimate by candidate position, over recent rounds (decayed per round): how often candidate m+1
    // was judged (candidates 1..m all kept) and how often it was kept
    private final double[] recentJudged = new double[AssistOptions.MAX_ASSISTANT_TOKENS];
    private final double[] recentKept = new double[AssistOptions.MAX_ASSISTANT_TOKENS];
    private long prefillStartedAt;
    private long prefillEndedAt;
    private long prefillNanos;
    private long finishedAt;
    private RoundListener rounds;

    /** Sees the target's cache and the sequence after each decode step (tests use it to check rollbacks). */
    interface RoundListener {
        void afterRound(KvCache targetCache, int[] sequence, int length, int proposed, int accepted);
    }

    /**
     * A sequence for {@code request} on {@code target}, decoded as {@code mode} says; when assisted, candidates
     * come from {@code draft} (may be null when no draft is configured; then only prompt lookup is possible).
     */
    Sequence(CausalLm target, CausalLm draft, TextTokenizer tokenizer, int[] eosIds, GenerationRequest request,
             DecodingMode mode, GenerationListener listener) {
        this.request = request;
        this.target = target;
        this.options = switch (mode) {
            case DecodingMode.Plain p -> null;
            case DecodingMode.Assisted a -> a.options();
        };
        this.listener = listener;
        int vocab = target.shape().vocabSize();
        this.maxContext = target.shape().maxContext();
        this.prompt = request.prompt();
        int[] eos = request.ignoreEos() ? NO_EOS : eosIds;
        this.proposer = options == null ? null : proposer(draft, eos);
        this.cache = target.newCache();
        this.sampler = new Sampler(request.sampling(), vocab, prompt);
        this.verifier = new Verifier(sampler, request.sampling().isGreedy(), vocab, request.wantsLogprobs());
        this.out = new CompletionBuilder(tokenizer, request, eos, listener);
        this.draftLength = options == null ? null : new DraftLength(options);
        this.candidates = new Candidates(AssistOptions.MAX_ASSISTANT_TOKENS, vocab);
        this.promptLogprobs = PromptLogprobs.of(request, tokenizer, vocab);
        this.seq = Arrays.copyOf(prompt, prompt.length + request.maxTokens());
        this.length = prompt.length;
    }

    private CandidateGenerator proposer(CausalLm draft, int[] eos) {
        return switch (options.assistant()) {
            case PROMPT_LOOKUP -> new PromptLookupCandidates(options.ngramSize());
            case DRAFT -> {
                if (draft == null) {
                    throw new IllegalStateException("no draft model is configured");
                }
                yield new DraftModelCandidates(draft, request.sampling(), prompt, options.confidenceThreshold(), eos);
            }
        };
    }

    void onRound(RoundListener rounds) {
        this.rounds = rounds;
    }

    // ---- what the step owner asks

    public boolean finished() {
        return finished;
    }

    /** True while prompt tokens remain to be fed. */
    public boolean prefilling() {
        return prefilled < prompt.length;
    }

    /** Prompt tokens not yet fed. */
    public int promptRemaining() {
        return prompt.length - prefilled;
    }

    /** Whether this sequence is assisted (has a candidate generator); false for plain decoding. */
    public boolean assisted() {
        return proposer != null;
    }

    /** Whether its candidates come from a draft model (so proposing costs draft steps). */
    public boolean usesDraftModel() {
        return proposer != null && proposer.model() != null;
    }

    /** Tokens the draft model would be fed before its first candidate if this sequence speculated now (0 without one). */
    public int draftCatchUp() {
        return proposer == null ? 0 : proposer.catchUp(length);
    }

    /**
     * Candidates this sequence would like in its next decode step: the request's draft length schedule,
     * capped by what can still be emitted (a step adds one token of the target's own) and by the context; 0 for
     * plain decoding.
     */
    public int wantedCandidates() {
        if (proposer == null) {
            return 0;
        }
        int room = Math.min(out.remaining() - 1, maxContext - length - 1);
        return Math.max(0, Math.min(draftLength.current(), room));
    }

    /**
     * The most candidates a policy may give this sequence in its next decode step: what can still be emitted (a
     * step adds one token of the target's own) and held, at most {@link AssistOptions#MAX_ASSISTANT_TOKENS}; 0 for
     * plain decoding.
     */
    public int maxCandidates() {
        if (proposer == null) {
            return 0;
        }
        return Math.max(0, Math.min(AssistOptions.MAX_ASSISTANT_TOKENS, Math.min(out.remaining() - 1, maxContext - length - 1)));
    }

    /**
     * Whether this sequence keeps its own schedule's k (a load-aware policy must not choose it): the request set
     * num_assistant_tokens itself, or it samples with a seed. Speculative sampling draws from the request's random
     * stream differently for another k, so a seeded request gives the same text whatever the load only if its k
     * does not depend on the load. (Greedy output does not depend on k at all.)
     */
    public boolean candidatesFixedByRequest() {
        return options != null && (options.lengthFixed()
                || request.sampling().seed() != null && !request.sampling().isGreedy());
    }

    /**
     * This sequence's acceptance by candidate position, into {@code out[m]} for m below {@code out.length}: the
     * probability that candidate m+1 is kept given that candidates 1..m were, estimated from its recent rounds as
     * kept / judged at that position, shrunk towards {@code prior[m]} with the weight of {@code priorRounds} rounds
     * (so a new sequence starts at the prior).
     *
     * <p>Why by position and not one probability a: acceptance comes in runs. Where the draft knows the text (a
     * formula, a quotation, the rest of a verse) it is right many tokens in a row; where it does not, it is wrong at
     * the first. Measured on the bundled pair, the first candidate is kept about half the time and the later ones,
     * once the first was, far more often; one a fitted to all candidates (a geometric series) undervalues long
     * blocks, and the policy then chose k of 1-2 where 3-5 was faster.
     */
    public void acceptanceByPosition(double[] prior, double priorRounds, double[] out) {
        for (int m = 0; m < out.length; m++) {
            out[m] = Math.min(0.995, (recentKept[m] + prior[m] * priorRounds) / (recentJudged[m] + priorRounds));
        }
    }

    /**
     * Adds one verification round to acceptance counts by position (judged[m], kept[m] for candidate m+1): the first
     * {@code judged} candidates were judged, the first {@code kept} kept. Only the positions judged fade (by
     * {@code decay}) before the round is added: a position that rounds rarely reach keeps what it learned when they
     * did. (Faded by every round, its counts melted away while k stayed below it, and the next single rejection there
     * set its estimate near 0 for good: the policy then never chose a k that reached it again; measured, one stream
     * held at k = 1 with positions 3 and 4 stuck at 0.17 and 0.05.)
     */
    public static void recordRound(double[] judgedAt, double[] keptAt, double decay, int judged, int kept) {
        for (int m = 0; m < Math.min(judged, judgedAt.length); m++) {
            recordJudgement(judgedAt, keptAt, decay, m, m < kept ? 1 : 0);
        }
    }

    /**
     * Fades acceptance counts at every position towards {@code judgedFloor} judged of which {@code keptFloor} kept
     * (a prior's weight; 0, 0 forgets): each count c becomes floor + decay (c - floor). For the steps without rounds.
     */
    public static void fade(double[] judgedAt, double[] keptAt, double decay, double judgedFloor, double keptFloor) {
        for (int m = 0; m < judgedAt.length; m++) {
            judgedAt[m] = judgedFloor + decay * (judgedAt[m] - judgedFloor);
            keptAt[m] = keptFloor + decay * (keptAt[m] - keptFloor);
        }
    }

    /** Adds one judgement at position {@code m} (candidate m+1), kept with probability {@code kept}, fading that position. */
    public static void recordJudgement(double[] judgedAt, double[] keptAt, double decay, int m, double kept) {
        judgedAt[m] = decay * judgedAt[m] + 1;
        keptAt[m] = decay * keptAt[m] + kept;
    }

    /** Candidates the latest decode step kept. */
    public int lastAccepted() {
        return lastAccepted;
    }

    /**
     * Candidates the latest decode step judged in order: the kept ones and the first rejected one (none after a
     * rejection is judged; fewer when generation ended inside the block). Acceptance by position is conditional on the
     * earlier candidates being kept, so these are the rounds that count for each position.
     */
    public int lastJudged() {
        return lastJudged;
    }

    /**
     * Position m of the latest decode step's shadow judgement, or -1 when it made none. After a round that kept all its
     * k candidates nobody judged a candidate k+1, and a policy that chose k would never learn whether more pays (it
     * chose k from an estimate at position k+1 that no round updated: measured, auto stuck at 2.9 candidates a step
     * where the heuristic's 4.4 were faster). But that candidate's fate is known for free: the target's bonus token is
     * its own choice at that position, and the next proposal feeds the draft the last candidate anyway, which gives
     * the draft's choice there (prompt lookup knows it from its match). So every such round also judges position k,
     * at no engine cost, and the estimate one past the chosen k stays live.
     */
    public int lastShadowPosition() {
        return lastShadowPosition;
    }

    /** The probability that the shadow candidate was kept (0 or 1 when greedy; see {@link #lastShadowPosition}). */
    public double lastShadowKept() {
        return lastShadowKept;
    }

    /** Candidates proposed in the latest decode step (the k the policy chose and the generator delivered). */
    public int lastCandidates() {
        return lastK;
    }

    /** Tokens emitted so far (what {@link GenerationResult#completionTokens()} will count). */
    public int emittedTokens() {
        return length - prompt.length;
    }

    /** Candidates proposed over all its decode steps so far. */
    public int proposedTokens() {
        return proposedTotal;
    }

    /**
     * Ends the sequence now if its listener asks to stop or if it has filled the context; true when it has ended
     * (then it takes part in no more steps).
     */
    public boolean endIfDone() {
        if (finished) {
            return true;
        }
        if (listener.isCancelled()) {
            out.cancel();
            finish();
        } else if (!prefilling() && length >= maxContext) {
            out.endByLength();
            finish();
        }
        return finished;
    }

    /** Ends the sequence as cancelled (shutdown that can wait no longer). */
    public void cancel() {
        if (!finished) {
            out.cancel();
            finish();
        }
    }

    /** Ends the sequence with a failure (a fault of the model or engine); {@link #result} rethrows it. */
    public void fail(RuntimeException e) {
        if (!finished) {
            failure = e;
            finish();
        }
    }

    /** Plans this step as the next {@code chunk} prompt tokens. */
    public void planPrefill(int chunk) {
        planPrefill(chunk, true);
    }

    /**
     * Plans this step as the next {@code chunk} prompt tokens; {@code withDraft}: the draft model (if any) is fed them
     * too (see {@link CandidateGenerator#prefill}), otherwise it catches up at its first proposal.
     */
    public void planPrefill(int chunk, boolean withDraft) {
        if (chunk < 1 || chunk > promptRemaining()) {
            throw new IllegalArgumentException("prefill chunk " + chunk + " with " + promptRemaining() + " prompt tokens left");
        }
        plannedChunk = chunk;
        plannedDraftPrefill = withDraft;
        plannedK = -1;
        if (prefilled == 0) {
            prefillStartedAt = System.nanoTime();
        }
    }

    /** Plans this step as a decode step with at most {@code k} candidates (0: a plain step). */
    public void planDecode(int k) {
        if (prefilling()) {
            throw new IllegalStateException("the prompt is not fed yet");
        }
        plannedChunk = 0;
        plannedK = proposer == null ? 0 : Math.max(0, Math.min(k, wantedCandidates()));
    }

    /** Tokens this step feeds the target at most (for the step's token budget). */
    public int plannedTokens() {
        return plannedChunk > 0 ? plannedChunk : plannedK + 1;
    }

    // ---- what BatchStep does with it

    /** Begins this step's proposal; returns the draft model's first feed, or null when none is needed. */
    Feed startProposal() {
        candidates.clear();
        candidates.judgeShadow(-1, null);
        if (plannedChunk > 0 || plannedK <= 0) {
            return null;
        }
        if (shadowPosition >= 0) {  // the verifier's row still holds the distribution the bonus was drawn from
            candidates.judgeShadow(seq[length - 1], request.sampling().isGreedy() ? null : verifier.lastDistribution());
        }
        return proposer.start(seq, length, plannedK, candidates);
    }

    /** The draft model's share of this step's prompt chunk ({@link CandidateGenerator#prefill}), or null. */
    Feed draftPrefillFeed() {
        return plannedChunk > 0 && plannedDraftPrefill && proposer != null ? proposer.prefill(prefilled + plannedChunk) : null;
    }

    /** The draft's logits for the last proposal feed; the next feed or null. */
    Feed continueProposal(Logits draftLogits) {
        return proposer.next(draftLogits, candidates);
    }

    CausalLm draftModel() {
        return proposer == null ? null : proposer.model();
    }

    /** This step's feed for the target: a prompt chunk, or the last emitted token and the candidates. */
    Feed targetFeed() {
        if (plannedChunk > 0) {
            return new Feed(cache, prompt, prefilled, plannedChunk);
        }
        feed[0] = seq[length - 1];
        System.arraycopy(candidates.tokens, 0, feed, 1, candidates.count);
        return new Feed(cache, feed, 0, candidates.count + 1);
    }

    /** Takes the target's logits for {@link #targetFeed()}. */
    void consume(Logits logits) {
        if (plannedChunk > 0) {
            consumePrefill(logits);
        } else {
            consumeDecode(logits);
        }
        plannedChunk = 0;
        plannedK = -1;
    }

    private void consumePrefill(Logits logits) {
        if (promptLogprobs != null) {
            promptLogprobs.add(logits, prefilled);
        }
        prefilled += plannedChunk;
        if (prefilling()) {
            return;
        }
        prefillEndedAt = System.nanoTime();
        prefillNanos = prefillEndedAt - prefillStartedAt;
        if (verifier.first(logits, emit)) {  // the first token comes from the prompt's last row
            finish();
        }
    }

    private void consumeDecode(Logits logits) {
        int proposed = candidates.count;
        // the shadow judgement of the previous round's position k, made by this step's proposal (before the verifier
        // below overwrites the distribution it read)
        lastShadowPosition = Double.isNaN(candidates.shadowKept) ? -1 : shadowPosition;
        if (lastShadowPosition >= 0) {
            lastShadowKept = candidates.shadowKept;
            recordJudgement(recentJudged, recentKept, ACCEPTANCE_DECAY, lastShadowPosition, lastShadowKept);
        }
        Verifier.Outcome o = verifier.verify(logits, candidates, proposed, emit);
        cache.truncate(Math.min(cache.length(), length - 1));  // keep the keys and values of kept tokens only
        lastK = proposed;
        lastAccepted = o.accepted();
        // judged in order: the kept candidates and the first rejected one. The ones after a rejection were never judged
        // (the verifier counts them as examined, for the drafted-token statistics); counted as judged and not kept,
        // they made every later position's estimate the unconditional rate, so that the policy multiplied the first
        // rejection in again at each position (measured: shared estimates 0.67, 0.00, 0.01 by position at one
        // stream, and auto never chose k > 1)
        lastJudged = Math.min(o.examined(), o.accepted() + 1);
        if (proposed > 0) {
            recordRound(recentJudged, recentKept, ACCEPTANCE_DECAY, lastJudged, o.accepted());
        } else if (proposer != null) {
            fade(recentJudged, recentKept, IDLE_DECAY, 0, 0);
        }
        shadowPosition = proposed > 0 && o.accepted() == proposed && !o.ended() && proposed < recentJudged.length
                ? proposed : -1;
        decodeSteps++;
        proposedTotal += proposed;
        if (proposed > 0) {
            longestRound = Math.max(longestRound, proposed);
            specSteps++;
            drafted += o.examined();
            accepted += o.accepted();
            for (int i = 0; i < o.accepted(); i++) {
                acceptedAt[i]++;
            }
        }
        if (proposer != null) {
            proposer.update(proposed, o.accepted());
            draftLength.update(proposed, o.accepted());
        }
        if (o.ended()) {
            finish();
        } else if (rounds != null) {
            rounds.afterRound(cache, seq, length, proposed, o.accepted());
        }
    }

    private boolean emit(int token, float[] raw) {
        seq[length++] = token;
        return out.add(token, raw);
    }

    private void finish() {
        finished = true;
        finishedAt = System.nanoTime();
        close();
    }

    /** The completion; rethrows the failure that ended it, if one did. */
    public GenerationResult result() {
        if (!finished) {
            throw new IllegalStateException("the sequence has not finished");
        }
        if (failure != null) {
            throw failure;
        }
        long decodeNanos = prefillEndedAt == 0 ? 0 : finishedAt - prefillEndedAt;
        DecodingStats stats = proposer == null ? DecodingStats.plain()
                : new DecodingStats("assisted", options.assistant().apiName(), specSteps, drafted, accepted,
                        Arrays.copyOf(acceptedAt, longestRound), decodeSteps, proposedTotal);
        List<TokenLogprob> echo = promptLogprobs == null ? List.of() : promptLogprobs.result();
        return out.result(echo, prefillNanos, decodeNanos, stats);
    }

    /** Frees the caches (the target's and the draft's). Idempotent; {@link #finish} does it. */
    @Override
    public void close() {
        cache.close();
        if (proposer != null) {
            proposer.close();
        }
    }
}
