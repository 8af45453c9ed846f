package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.Logits;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs one step for a batch of planned {@link Sequence}s (vLLM's model runner, OpenVINO GenAI's
 * {@code step()}): the draft model's proposal steps of every assisted sequence as batched calls,
 * then ONE target call that feeds every decoding sequence its block (a decode token, or the last
 * token plus candidates) and one more for the prompt chunks, then each sequence takes its logits
 * and keeps its tokens.
 *
 * <p>Why prompt chunks get a call of their own: a batched call computes every row at the length of
 * its longest feed (a padded batch), so a 16-token chunk beside 16 decoding rows made the call
 * compute 256 tokens for 32 (measured: 100-170 ms steps where a decode step took 9 ms, every stream
 * stalled; and the speculation policy, seeing the rows padded anyway, granted every row a "free"
 * candidate). Apart, the chunk costs one more call's fixed time; the decode call's time is then
 * what the speculation policy's cost model learns from ({@link Timing}).
 *
 * <p>An assisted sequence's draft model is fed its prompt chunk in the same step (batched with the
 * other drafts' chunks, its logits unused), so its first proposal starts caught up: fed at the first
 * proposal instead, the whole prompt would land in a decode step, and the speculation policy, pricing
 * that, would not speculate at all for a new request at one stream (measured: 15-30 tokens of
 * catch-up at N = 1, k = 0 chosen every step, the catch-up growing).
 *
 * <p>A sequence whose own logits fail it (a NaN from the model) fails alone; an engine failure fails
 * the whole step (it is thrown to the step owner).
 */
public final class BatchStep {
    private final CausalLm target;
    private Timing last = Timing.NONE;

    /**
     * What the latest {@link #run} did and how long it took, for the speculation policy's cost model.
     *
     * @param targetRows     decoding sequences fed to the target
     * @param targetTokens   tokens they fed (decode tokens and candidates)
     * @param targetMaxFeed  the most tokens one of them fed (a padded batch computes rows x this)
     * @param targetNanos    time of that target call
     * @param draftCalls     batched calls of the draft model
     * @param draftRows      sequence-feeds over those calls
     * @param draftTokens    tokens fed over those calls (a sequence's first feed catches up with the target's tokens)
     * @param draftNanos     time of the proposals (draft calls and prompt lookup)
     * @param candidates     candidates proposed over all sequences
     * @param promptRows     prompt chunks fed (in a target call of their own)
     * @param promptTokens   their tokens
     * @param promptNanos    time of that call, and of the draft models' calls fed the same chunks
     */
    public record Timing(int targetRows, int targetTokens, int targetMaxFeed, long targetNanos, int draftCalls,
                         int draftRows, int draftTokens, long draftNanos, int candidates, int promptRows,
                         int promptTokens, long promptNanos) {
        static final Timing NONE = new Timing(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

        /** A step without prompt chunks. */
        public Timing(int targetRows, int targetTokens, int targetMaxFeed, long targetNanos, int draftCalls, int draftRows,
                      int draftTokens, long draftNanos, int candidates) {
            this(targetRows, targetTokens, targetMaxFeed, targetNanos, draftCalls, draftRows, draftTokens, draftNanos,
                    candidates, 0, 0, 0);
        }
    }

    public Timing lastTiming() {
        return last;
    }

    public BatchStep(CausalLm target) {
        this.target = target;
    }

    /** Runs the step for {@code batch}, every sequence planned ({@link Sequence#planPrefill} or {@link Sequence#planDecode}). */
    public void run(List<Sequence> batch) {
        long started = System.nanoTime();
        long[] draft = propose(batch);
        long proposed = System.nanoTime();
        List<Sequence> decoding = new ArrayList<>(batch.size());
        List<Feed> decodeFeeds = new ArrayList<>(batch.size());
        List<Sequence> prompts = new ArrayList<>();
        List<Feed> promptFeeds = new ArrayList<>();
        for (Sequence s : batch) {
            if (!s.finished()) {  // a draft's bad logits may have failed it
                boolean prompt = s.prefilling();
                (prompt ? prompts : decoding).add(s);
                (prompt ? promptFeeds : decodeFeeds).add(s.targetFeed());
            }
        }
        int tokens = 0;
        int maxFeed = 0;
        for (Feed f : decodeFeeds) {
            tokens += f.length();
            maxFeed = Math.max(maxFeed, f.length());
        }
        int promptTokens = 0;
        for (Feed f : promptFeeds) {
            promptTokens += f.length();
        }
        long decodeStarted = System.nanoTime();
        List<Logits> decodeLogits = decodeFeeds.isEmpty() ? List.of() : target.forward(decodeFeeds);
        long promptStarted = System.nanoTime();
        List<Logits> promptLogits = promptFeeds.isEmpty() ? List.of() : target.forward(promptFeeds);
        prefillDrafts(prompts);
        long ended = System.nanoTime();
        last = new Timing(decodeFeeds.size(), tokens, maxFeed, promptStarted - decodeStarted, (int) draft[0],
                (int) draft[1], (int) draft[2], proposed - started, tokens - decodeFeeds.size(), promptFeeds.size(),
                promptTokens, ended - promptStarted);
        consume(decoding, decodeLogits);
        consume(prompts, promptLogits);
    }

    private static void consume(List<Sequence> sequences, List<Logits> logits) {
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            try {
                s.consume(logits.get(i));
            } catch (InvalidLogitsException e) {
                s.fail(e);
            }
        }
    }

    /** Feeds each assisted prompt sequence's draft model the chunk its target was fed: one call per draft model. */
    private static void prefillDrafts(List<Sequence> prompts) {
        Map<CausalLm, List<Feed>> byDraft = new IdentityHashMap<>();  // one server has one draft model; tests have more
        for (Sequence s : prompts) {
            Feed f = s.draftPrefillFeed();
            if (f != null) {
                byDraft.computeIfAbsent(s.draftModel(), d -> new ArrayList<>()).add(f);
            }
        }
        // the keys and values are what counts; the logits are not needed
        byDraft.forEach(CausalLm::forward);
    }

    /**
     * Candidates for every decoding sequence: each draft step of all of them in one call per draft model. Returns
     * the draft calls made, the sequence-feeds over them and the tokens fed.
     */
    private static long[] propose(List<Sequence> batch) {
        long calls = 0;
        long rows = 0;
        long fed = 0;
        List<Sequence> drafting = new ArrayList<>();
        List<Feed> feeds = new ArrayList<>();
        for (Sequence s : batch) {
            Feed f = s.startProposal();  // prompt lookup proposes here, without a model
            if (f != null) {
                drafting.add(s);
                feeds.add(f);
            }
        }
        while (!drafting.isEmpty()) {
            CausalLm draft = drafting.get(0).draftModel();
            List<Sequence> same = new ArrayList<>(drafting.size());
            List<Feed> sameFeeds = new ArrayList<>(drafting.size());
            List<Sequence> rest = new ArrayList<>();
            List<Feed> restFeeds = new ArrayList<>();
            for (int i = 0; i < drafting.size(); i++) {  // one server has one draft model; the split is for tests
                boolean mine = drafting.get(i).draftModel() == draft;
                (mine ? same : rest).add(drafting.get(i));
                (mine ? sameFeeds : restFeeds).add(feeds.get(i));
            }
            List<Logits> logits = draft.forward(sameFeeds);
            calls++;
            rows += sameFeeds.size();
            for (Feed f : sameFeeds) {
                fed += f.length();
            }
            for (int i = 0; i < same.size(); i++) {
                Feed next;
                try {
                    next = same.get(i).continueProposal(logits.get(i));
                } catch (InvalidLogitsException e) {
                    same.get(i).fail(e);
                    continue;
                }
                if (next != null) {
                    rest.add(same.get(i));
                    restFeeds.add(next);
                }
            }
            drafting = rest;
            feeds = restFeeds;
        }
        return new long[] {calls, rows, fed};
    }
}
