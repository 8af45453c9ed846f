package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.Logits;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs one step for a batch of planned {@link Sequence}s (vLLM's model runner, OpenVINO GenAI's
 * {@code step()}): the draft model's proposal steps of every assisted sequence as batched calls,
 * then ONE target call that feeds every sequence its block (a prompt chunk, a decode token, or the
 * last token plus candidates), then each sequence takes its logits and keeps its tokens.
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
     * @param targetRows     sequences fed to the target
     * @param targetTokens   tokens fed to the target (prompt chunks, decode tokens and candidates)
     * @param targetMaxFeed  the most tokens one sequence fed (a padded batch computes rows x this)
     * @param targetNanos    time of the target call
     * @param draftCalls     batched calls of the draft model
     * @param draftRows      sequence-feeds over those calls
     * @param draftTokens    tokens fed over those calls (a sequence's first feed catches up with the target's tokens)
     * @param draftNanos     time of the proposals (draft calls and prompt lookup)
     * @param candidates     candidates proposed over all sequences
     */
    public record Timing(int targetRows, int targetTokens, int targetMaxFeed, long targetNanos, int draftCalls,
                         int draftRows, int draftTokens, long draftNanos, int candidates) {
        static final Timing NONE = new Timing(0, 0, 0, 0, 0, 0, 0, 0, 0);
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
        List<Sequence> live = new ArrayList<>(batch.size());
        List<Feed> feeds = new ArrayList<>(batch.size());
        for (Sequence s : batch) {
            if (!s.finished()) {  // a draft's bad logits may have failed it
                live.add(s);
                feeds.add(s.targetFeed());
            }
        }
        if (live.isEmpty()) {
            return;
        }
        int tokens = 0;
        int maxFeed = 0;
        int candidates = 0;
        for (int i = 0; i < feeds.size(); i++) {
            tokens += feeds.get(i).length();
            maxFeed = Math.max(maxFeed, feeds.get(i).length());
            candidates += live.get(i).prefilling() ? 0 : feeds.get(i).length() - 1;
        }
        List<Logits> logits = target.forward(feeds);
        last = new Timing(feeds.size(), tokens, maxFeed, System.nanoTime() - proposed, (int) draft[0], (int) draft[1],
                (int) draft[2], proposed - started, candidates);
        for (int i = 0; i < live.size(); i++) {
            Sequence s = live.get(i);
            try {
                s.consume(logits.get(i));
            } catch (InvalidLogitsException e) {
                s.fail(e);
            }
        }
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
