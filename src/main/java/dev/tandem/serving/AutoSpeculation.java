package dev.tandem.serving;

import dev.tandem.generation.BatchStep;
import dev.tandem.generation.Sequence;
import java.util.List;

/**
 * {@code auto}: every step, chooses k per assisted sequence (0 = none this step) to maximise the
 * batch's expected tokens per second: (expected tokens emitted) / (predicted step time).
 *
 * <ul>
 *   <li>A sequence whose candidates are accepted with probability a, given k candidates, emits
 *       E(k) = 1 + a + a^2 + ... + a^k tokens in expectation (Leviathan et al. 2023); a is estimated
 *       per sequence from its recent rounds ({@link Sequence#acceptance}), starting from the mean of
 *       all sequences' recent rounds.</li>
 *   <li>The step time is predicted by the {@link StepCostModel}: the target's time from the rows,
 *       tokens and longest feed of the step, the draft's from its calls (the largest k) and feeds.</li>
 *   <li>Search: start from k = 0 everywhere (plain decoding's step: the ratio any choice must beat),
 *       then repeatedly raise the one sequence's k that increases the ratio most, to any larger value
 *       (so a fixed cost paid once, such as the first draft call, is weighed against all it buys),
 *       until no raise increases it.</li>
 * </ul>
 * So with the cost model right, a step is never predicted slower per token than the plain one; at low
 * load speculation fills idle compute, at high load the batch's own rows use it and k falls to 0. A
 * request that fixed {@code num_assistant_tokens} itself gets its schedule's k.
 */
final class AutoSpeculation implements SpeculationPolicy {
    /** Weight of the shared prior in a sequence's acceptance estimate, in rounds. */
    private static final double PRIOR_ROUNDS = 2;
    /** Longer feeds run in a call of their own on a batching engine (OrtCausalLm.LONG_FEED). */
    private static final int LONG_FEED = 16;

    private final StepCostModel cost;
    private double acceptedWeight = 3;   // all sequences' recent rounds: candidates accepted (decayed) ...
    private double rejectedWeight = 1;   // ... and rejections; the prior a starts at 0.75

    AutoSpeculation(StepCostModel cost) {
        this.cost = cost;
    }

    /** The acceptance all sequences showed recently: the prior of a new sequence. */
    double sharedAcceptance() {
        return acceptedWeight / (acceptedWeight + rejectedWeight);
    }

    @Override
    public void choose(List<Sequence> decoding, int prefillRows, int prefillTokens, int longestChunk, int[] k) {
        int n = decoding.size();
        double prior = sharedAcceptance();
        double[] a = new double[n];
        int[] min = new int[n];
        int[] cap = new int[n];
        boolean[] drafts = new boolean[n];
        for (int i = 0; i < n; i++) {
            Sequence s = decoding.get(i);
            if (s.candidatesFixedByRequest()) {  // honoured as asked; counts in the cost like any other
                min[i] = s.wantedCandidates();
                cap[i] = min[i];
            } else {
                cap[i] = s.maxCandidates();
            }
            a[i] = s.acceptance(prior, PRIOR_ROUNDS);
            drafts[i] = s.usesDraftModel();
        }
        choose(a, min, cap, drafts, prefillRows, prefillTokens, longestChunk, k);
    }

    /**
     * The search on plain numbers: sequence i has acceptance {@code a[i]}, must get at least {@code min[i]} and at
     * most {@code cap[i]} candidates, and drafts with the draft model when {@code drafts[i]}. Returns the predicted
     * tokens per second of the choice.
     */
    double choose(double[] a, int[] min, int[] cap, boolean[] drafts, int prefillRows, int prefillTokens,
                  int longestChunk, int[] k) {
        int n = a.length;
        // prompt chunks: in the same call when short, else a call of their own (OrtCausalLm.LONG_FEED); their cost is
        // the same whatever k is chosen, and it weighs in the ratio as the time the step takes anyway
        boolean chunkApart = longestChunk > LONG_FEED;
        int rows = n + (chunkApart ? 0 : prefillRows);
        int tokens = n + (chunkApart ? 0 : prefillTokens);
        int maxFeed = Math.max(1, chunkApart ? 1 : longestChunk);
        double apart = chunkApart ? cost.targetSeconds(prefillRows, prefillTokens, longestChunk) : 0;
        int draftCalls = 0;
        int draftRows = 0;
        double emitted = 0;
        for (int i = 0; i < n; i++) {
            k[i] = min[i];
            emitted += expected(a[i], k[i]);
            tokens += k[i];
            maxFeed = Math.max(maxFeed, 1 + k[i]);
            if (k[i] > 0 && drafts[i]) {
                draftCalls = Math.max(draftCalls, k[i]);
                draftRows += k[i];
            }
        }
        double best = emitted / (apart + seconds(rows, tokens, maxFeed, draftCalls, draftRows));
        while (true) {
            int bestI = -1;
            int bestK = 0;
            double bestRatio = best;
            for (int i = 0; i < n; i++) {
                for (int kk = k[i] + 1; kk <= cap[i]; kk++) {
                    int dk = kk - k[i];
                    double e = emitted - expected(a[i], k[i]) + expected(a[i], kk);
                    double t = apart + seconds(rows, tokens + dk, Math.max(maxFeed, 1 + kk),
                            drafts[i] ? Math.max(draftCalls, kk) : draftCalls, drafts[i] ? draftRows + dk : draftRows);
                    if (e / t > bestRatio * (1 + 1e-9)) {
                        bestRatio = e / t;
                        bestI = i;
                        bestK = kk;
                    }
                }
            }
            if (bestI < 0) {
                return best;
            }
            int dk = bestK - k[bestI];
            emitted += expected(a[bestI], bestK) - expected(a[bestI], k[bestI]);
            tokens += dk;
            maxFeed = Math.max(maxFeed, 1 + bestK);
            if (drafts[bestI]) {
                draftCalls = Math.max(draftCalls, bestK);
                draftRows += dk;
            }
            k[bestI] = bestK;
            best = bestRatio;
        }
    }

    @Override
    public synchronized void observe(List<Sequence> decoding, BatchStep.Timing timing) {
        cost.observe(timing);
        for (Sequence s : decoding) {
            if (s.lastCandidates() > 0) {
                acceptedWeight = 0.98 * acceptedWeight + s.lastAccepted();
                rejectedWeight = 0.98 * rejectedWeight + (s.lastAccepted() < s.lastJudged() ? 1 : 0);
            }
        }
    }

    private double seconds(int rows, int tokens, int maxFeed, int draftCalls, int draftRows) {
        return Math.max(1e-6, cost.targetSeconds(rows, tokens, maxFeed) + cost.draftSeconds(draftCalls, draftRows));
    }

    /** Expected tokens one step emits with k candidates accepted with probability a each: 1 + a + ... + a^k. */
    static double expected(double a, int k) {
        double sum = 1;
        double p = 1;
        for (int j = 0; j < k; j++) {
            p *= a;
            sum += p;
        }
        return sum;
    }
}
