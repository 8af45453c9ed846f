package dev.tandem.serving;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.BatchStep;
import dev.tandem.generation.Sequence;
import java.util.Arrays;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * {@code auto}: every step, chooses k per assisted sequence (0 = none this step) to maximise the
 * batch's expected tokens per second: (expected tokens emitted) / (predicted step time).
 *
 * <ul>
 *   <li>A sequence with k candidates emits E(k) = 1 + p1 + p1 p2 + ... + p1 p2 ... pk tokens in
 *       expectation, where pm is the probability that candidate m is kept given that the ones before
 *       it were (with one p for all positions this is Leviathan et al.'s 1 + a + ... + a^k). The pm
 *       are estimated per sequence from its recent rounds ({@link Sequence#acceptanceByPosition}),
 *       starting from all sequences' recent rounds with the same kind of assistant (a draft model and
 *       prompt lookup are right in different patterns).</li>
 *   <li>The step time is predicted by the {@link StepCostModel}: the target's time from the rows,
 *       tokens and longest feed of the step, the draft's from its calls (the largest k), feeds and
 *       tokens: a sequence's first candidate costs its draft's catch-up with the tokens it has not
 *       seen ({@link Sequence#draftCatchUp}), so a sequence that went without candidates for long pays
 *       more to start again.</li>
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
    /** Weight of a round at a position in the shared estimates after n more rounds judged there (of any sequence with that assistant): 0.98^n. */
    private static final double SHARED_DECAY = 0.98;
    /**
     * The shared estimates' start, 3 kept of 4 judged at every position (0.75), and how fast they return to it in steps
     * where sequences with that kind of assistant decode without candidates: 0.995 per step (halfway in about 140).
     * Estimates only move with rounds, so without the return a run of rejections that made speculation look unprofitable
     * stopped it for every later request too (the trap the per-sequence estimates escape with {@code Sequence.IDLE_DECAY}).
     */
    private static final double PRIOR_JUDGED = 4;
    private static final double PRIOR_KEPT = 3;
    private static final double SHARED_IDLE_DECAY = 0.995;
    private static final int MAX_K = AssistOptions.MAX_ASSISTANT_TOKENS;
    /** Steps a draft's catch-up is spread over when priced (see {@link #draftFed}). */
    private static final double CATCH_UP_SPREAD = 4;
    private static final Logger LOG = Logger.getLogger(AutoSpeculation.class);
    /** Steps between two DEBUG lines of the cost model's error (measured over predicted step time). */
    private static final int REPORT_EVERY = 512;

    private final StepCostModel cost;
    // all sequences' recent rounds by candidate position (judged, kept), one pair per kind of assistant; the prior of a
    // new sequence. They start at PRIOR_KEPT of PRIOR_JUDGED at every position.
    private final double[][] sharedJudged = {filled(PRIOR_JUDGED), filled(PRIOR_JUDGED)};
    private final double[][] sharedKept = {filled(PRIOR_KEPT), filled(PRIOR_KEPT)};
    private final double[][] sharedPrior = new double[2][MAX_K];
    private double[][] p = new double[0][];   // this step's acceptance by position, per sequence (reused)
    // the cost model's error, for the DEBUG report: this step's predicted seconds, and sums since the last report
    private double predictedTarget;
    private double predictedDraft;
    private double sumPredictedTarget;
    private double sumMeasuredTarget;
    private double sumPredictedDraft;
    private double sumMeasuredDraft;
    private int speculatingSteps;
    private int reportSteps;

    AutoSpeculation(StepCostModel cost) {
        this.cost = cost;
    }

    private static double[] filled(double v) {
        double[] a = new double[MAX_K];
        Arrays.fill(a, v);
        return a;
    }

    @Override
    public void choose(List<Sequence> decoding, int[] k) {
        int n = decoding.size();
        if (p.length < n) {
            p = Arrays.copyOf(p, Math.max(n, 2 * p.length));
            for (int i = 0; i < p.length; i++) {
                if (p[i] == null) {
                    p[i] = new double[MAX_K];
                }
            }
        }
        synchronized (this) {
            for (int kind = 0; kind < 2; kind++) {
                for (int m = 0; m < MAX_K; m++) {
                    sharedPrior[kind][m] = sharedKept[kind][m] / sharedJudged[kind][m];
                }
            }
        }
        int[] min = new int[n];
        int[] cap = new int[n];
        int[] catchUp = new int[n];
        boolean[] drafts = new boolean[n];
        for (int i = 0; i < n; i++) {
            Sequence s = decoding.get(i);
            if (s.candidatesFixedByRequest()) {  // honoured as asked; counts in the cost like any other
                min[i] = s.wantedCandidates();
                cap[i] = min[i];
            } else {
                cap[i] = s.maxCandidates();
            }
            drafts[i] = s.usesDraftModel();
            catchUp[i] = drafts[i] ? s.draftCatchUp() : 0;
            s.acceptanceByPosition(sharedPrior[drafts[i] ? 0 : 1], PRIOR_ROUNDS, p[i]);
        }
        choose(p, min, cap, drafts, catchUp, k);
    }

    /** {@link #choose(double[][], int[], int[], boolean[], int[], int[])} with every catch-up one token. */
    double choose(double[][] p, int[] min, int[] cap, boolean[] drafts, int[] k) {
        int[] one = new int[min.length];
        java.util.Arrays.fill(one, 1);
        return choose(p, min, cap, drafts, one, k);
    }

    /**
     * The search on plain numbers: sequence i keeps its candidate m+1 with probability {@code p[i][m]} given the ones
     * before it were kept (at least as many entries as {@code cap[i]}), its draft must first be fed {@code catchUp[i]}
     * tokens, must get at least {@code min[i]} and at
     * most {@code cap[i]} candidates, and drafts with the draft model when {@code drafts[i]}. Returns the predicted
     * tokens per second of the choice.
     */
    double choose(double[][] p, int[] min, int[] cap, boolean[] drafts, int[] catchUp, int[] k) {
        int n = min.length;
        // prompt chunks run in a target call of their own (BatchStep): their time is spent whatever k is chosen and is
        // not decoding, so it is left out of the ratio. (Counted in, a step made long by a chunk made a candidate look
        // cheap beside it, so auto speculated exactly when a chunk already delayed every stream: measured at N = 16.)
        int rows = n;
        int tokens = n;
        int maxFeed = 1;
        int draftCalls = 0;
        int draftRows = 0;
        double draftTokens = 0;
        double emitted = 0;
        for (int i = 0; i < n; i++) {
            k[i] = min[i];
            emitted += expected(p[i], k[i]);
            tokens += k[i];
            maxFeed = Math.max(maxFeed, 1 + k[i]);
            if (k[i] > 0 && drafts[i]) {
                draftCalls = Math.max(draftCalls, k[i]);
                draftRows += k[i];
                draftTokens += draftFed(catchUp[i], k[i]);
            }
        }
        double best = emitted / decodeSeconds(rows, tokens, maxFeed, draftCalls, draftRows, draftTokens);
        while (true) {
            int bestI = -1;
            int bestK = 0;
            double bestRatio = best;
            for (int i = 0; i < n; i++) {
                for (int kk = k[i] + 1; kk <= cap[i]; kk++) {
                    int dk = kk - k[i];
                    double e = emitted - expected(p[i], k[i]) + expected(p[i], kk);
                    double t = decodeSeconds(rows, tokens + dk, Math.max(maxFeed, 1 + kk),
                            drafts[i] ? Math.max(draftCalls, kk) : draftCalls, drafts[i] ? draftRows + dk : draftRows,
                            drafts[i] ? draftTokens + draftFed(catchUp[i], kk) - draftFed(catchUp[i], k[i]) : draftTokens);
                    if (e / t > bestRatio * (1 + 1e-9)) {
                        bestRatio = e / t;
                        bestI = i;
                        bestK = kk;
                    }
                }
            }
            if (bestI < 0) {
                predictedTarget = cost.targetSeconds(rows, tokens, maxFeed);
                predictedDraft = cost.draftSeconds(draftCalls, draftRows, draftTokens);
                return best;
            }
            int dk = bestK - k[bestI];
            emitted += expected(p[bestI], bestK) - expected(p[bestI], k[bestI]);
            tokens += dk;
            maxFeed = Math.max(maxFeed, 1 + bestK);
            if (drafts[bestI]) {
                draftCalls = Math.max(draftCalls, bestK);
                draftRows += dk;
                draftTokens += draftFed(catchUp[bestI], bestK) - draftFed(catchUp[bestI], k[bestI]);
            }
            k[bestI] = bestK;
            best = bestRatio;
        }
    }

    /**
     * Prompts feed the draft too when speculation is on at this load: nothing else is decoding (a lone request, which
     * speculation serves best), or some sequence got candidates in this step.
     */
    @Override
    public boolean draftFollowsPrompts(List<Sequence> decoding, int[] k) {
        for (int i = 0; i < decoding.size(); i++) {
            if (k[i] > 0) {
                return true;
            }
        }
        return decoding.isEmpty();
    }

    @Override
    public synchronized void observe(List<Sequence> decoding, BatchStep.Timing timing) {
        if (LOG.isDebugEnabled()) {
            report(timing);
        }
        cost.observe(timing);
        boolean[] idle = {false, false};    // by kind: sequences with that assistant decoded, none with candidates
        boolean[] rounds = {false, false};
        for (Sequence s : decoding) {
            if (s.assisted() && !s.candidatesFixedByRequest()) {
                int kind = s.usesDraftModel() ? 0 : 1;
                idle[kind] = true;
                rounds[kind] |= s.lastCandidates() > 0;
            }
            if (s.lastCandidates() > 0) {
                int kind = s.usesDraftModel() ? 0 : 1;
                Sequence.recordRound(sharedJudged[kind], sharedKept[kind], SHARED_DECAY, s.lastJudged(), s.lastAccepted());
            }
            if (s.lastShadowPosition() >= 0) {  // the position past the last round's k, judged for free
                int kind = s.usesDraftModel() ? 0 : 1;
                Sequence.recordJudgement(sharedJudged[kind], sharedKept[kind], SHARED_DECAY, s.lastShadowPosition(),
                        s.lastShadowKept());
            }
        }
        for (int kind = 0; kind < 2; kind++) {
            if (idle[kind] && !rounds[kind]) {
                idleStep(kind);
            }
        }
        if (idle[0] && !rounds[0]) {
            cost.draftIdle();  // the draft model's price returns to its profile's too
        }
    }

    /** A step in which sequences with this kind of assistant (0 draft model, 1 prompt lookup) decoded without candidates. */
    synchronized void idleStep(int kind) {
        Sequence.fade(sharedJudged[kind], sharedKept[kind], SHARED_IDLE_DECAY, PRIOR_JUDGED, PRIOR_KEPT);
    }

    /** Adds a round to the shared estimates (for tests; live rounds come through {@link #observe}). */
    synchronized void sharedRound(boolean draftModel, int judged, int kept) {
        int kind = draftModel ? 0 : 1;
        Sequence.recordRound(sharedJudged[kind], sharedKept[kind], SHARED_DECAY, judged, kept);
    }

    /** All recent rounds' estimate that candidate m+1 is kept once 1..m were (draft model or prompt lookup): for tests. */
    synchronized double sharedAcceptance(boolean draftModel, int m) {
        int kind = draftModel ? 0 : 1;
        return sharedKept[kind][m] / sharedJudged[kind][m];
    }

    /** Predicted time of the step's decoding: the draft's proposals and the target's decode call. */
    private double decodeSeconds(int rows, int tokens, int maxFeed, int draftCalls, int draftRows, double draftTokens) {
        return Math.max(1e-6, cost.targetSeconds(rows, tokens, maxFeed) + cost.draftSeconds(draftCalls, draftRows, draftTokens));
    }

    /**
     * Tokens a sequence's draft is fed for k candidates, as priced for this step: its catch-up, then one per further
     * candidate (none for k = 0). A catch-up beyond the one token of a draft in step is paid once for the steps of
     * speculation that follow, so this step is charged a {@link #CATCH_UP_SPREAD}th of it: charged in full, a sequence
     * that went without candidates a while would fall further behind every step and never speculate again, even once
     * the load that stopped it is gone.
     */
    private static double draftFed(int catchUp, int k) {
        return k == 0 ? 0 : 1 + (catchUp - 1) / CATCH_UP_SPREAD + k - 1;
    }

    /**
     * Every {@link #REPORT_EVERY} steps at DEBUG: measured over predicted time of the target's and the draft's parts
     * (1.0 = the model is right; the draft's over the steps that drafted), the coefficients, the shared acceptance of
     * the first candidates. What to look at when auto chooses worse than plain or fixed.
     */
    private void report(BatchStep.Timing t) {
        sumPredictedTarget += predictedTarget;
        sumMeasuredTarget += t.targetNanos() / 1e9;
        if (t.draftCalls() > 0) {
            sumPredictedDraft += predictedDraft;
            sumMeasuredDraft += t.draftNanos() / 1e9;
            speculatingSteps++;
        }
        if (++reportSteps < REPORT_EVERY) {
            return;
        }
        double[] dc = cost.draftCoefficients();
        int rows = Math.max(1, t.targetRows());
        LOG.debugf("cost model over %d steps: target measured/predicted %.3f (%.2f ms/step measured); draft %.3f over %d"
                        + " drafting steps; target at %d rows: coef [1, rows, tokens, rows*maxFeed] ms %s x level %.3f;"
                        + " draft [calls, rows, tokens] ms %s; shared acceptance by position (draft) %.2f %.2f %.2f %.2f",
                reportSteps, sumMeasuredTarget / Math.max(1e-12, sumPredictedTarget), 1e3 * sumMeasuredTarget / reportSteps,
                sumMeasuredDraft / Math.max(1e-12, sumPredictedDraft), speculatingSteps, rows,
                ms(cost.targetCoefficients(rows)), cost.level(rows), ms(dc),
                sharedKept[0][0] / sharedJudged[0][0], sharedKept[0][1] / sharedJudged[0][1],
                sharedKept[0][2] / sharedJudged[0][2], sharedKept[0][3] / sharedJudged[0][3]);
        sumPredictedTarget = sumMeasuredTarget = sumPredictedDraft = sumMeasuredDraft = 0;
        speculatingSteps = reportSteps = 0;
    }

    private static String ms(double[] c) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < c.length; i++) {
            b.append(i == 0 ? "" : ", ").append(String.format(java.util.Locale.ROOT, "%.3f", 1e3 * c[i]));
        }
        return b.append(']').toString();
    }

    /**
     * Expected tokens one step emits with k candidates, candidate m+1 kept with probability p[m] given the ones before
     * it were: 1 + p[0] + p[0] p[1] + ... + p[0] ... p[k-1].
     */
    static double expected(double[] p, int k) {
        double sum = 1;
        double run = 1;
        for (int m = 0; m < k; m++) {
            run *= p[m];
            sum += run;
        }
        return sum;
    }
}
