package dev.tandem.serving;

import dev.tandem.generation.BatchStep;

/**
 * What a step costs on the loaded models.
 *
 * <p><b>The target</b>: its call's time is a function of the sequences it feeds (rows), the tokens it feeds and rows x
 * the longest feed (what a padded batch computes). Its <i>shape</i> comes from the start-up profile
 * ({@link StepProfile}: 1..8 rows, 1..6 tokens each), fitted linearly on those features around each batch size
 * (profile steps of other sizes weigh less the further away they are: 1/4 per doubling), so the cost of one more token
 * in a one-row step is what one-row steps showed, not an average over all sizes. Its <i>level</i> follows live steps:
 * per batch size class (1, 2, 3-4, 5-8, ...), recent measured time over the shape's prediction. Live steps cannot
 * teach the shape: a policy that settles on one k sees steps of one size only, and a line fitted through one point
 * prices the tokens it did not try at random (measured: one stream held at k = 1 because a linear fit of live steps
 * priced a verified token at 0.75 ms where the engine pays 0.31). Without a profile (no observations from it) the
 * shape is a linear fit of the live steps and the level 1.
 *
 * <p><b>The draft</b>: the time of its part of a step as a function of its batched calls, the sequence-feeds in them
 * and the tokens fed (a sequence that speculates after steps without candidates first catches its draft up with the
 * tokens it missed: measured steps carry that cost, and the model must tell it apart from a call's, else rare
 * speculation makes every draft call look dear and speculation rarer still). Fitted by least squares with
 * non-negative coefficients over the profile's draft calls (kept for good) and recent live steps (older ones fade, and
 * all of them fade while assisted sequences decode without drafting, so the price returns to the profile's).
 */
final class StepCostModel {
    /** A step's share in a live fit after n more steps: 0.998^n (the last ~500 steps count). */
    private static final double FORGET = 0.998;
    /**
     * The live draft steps' share after n steps in which assisted sequences decoded without drafting: 0.995^n (halved
     * in about 140; a price 30x the profile's is back near it after a few thousand steps, seconds at one stream), so
     * the draft's price returns to the profile's while nothing drafts. The draft's fit moves only in
     * steps that draft: without the return, a few dear steps (measured at T = 0.8: drafts catching up after steps
     * without candidates, padded to the batch's rows, fitted as 1.7 ms per call where the profile says 0.1) stopped
     * speculation for the life of the service.
     */
    private static final double DRAFT_IDLE_FORGET = 0.995;
    /** A step's share in its size class's level after n more steps of that class: 0.97^n (the last ~30 count). */
    private static final double LEVEL_FORGET = 0.97;
    /** Weight of a profile step in the shape at another batch size, per doubling between the two. */
    private static final double PER_DOUBLING = 0.25;
    private static final int REFIT_EVERY = 16;
    /** Batch sizes whose shape is cached; larger ones use this one's. */
    private static final int MAX_SHAPED_ROWS = 256;
    private static final int CLASSES = 10;   // size classes 1, 2, 3-4, 5-8, ..., 257+

    private final java.util.List<BatchStep.Timing> profile = new java.util.ArrayList<>();
    private final double[][] shapes = new double[MAX_SHAPED_ROWS + 1][];  // per rows: the shape's coefficients, lazily
    private final LeastSquares live = new LeastSquares(4);      // the shape when there is no profile
    private final double[] measured = new double[CLASSES];      // per size class: decayed sums of measured and
    private final double[] predicted = new double[CLASSES];     // shape-predicted seconds of live steps
    private final LeastSquares draftProfile = new LeastSquares(3);  // the profile's draft calls: they never fade
    private final LeastSquares draft = new LeastSquares(3);         // live drafting steps
    private double[] liveCoef = {0, 0, 1e-3, 0};  // before any measurement: 1 ms per token
    private double[] draftCoef = {1e-4, 1e-4, 0};
    private int sinceFit;

    /** Predicted seconds of a target call. */
    synchronized double targetSeconds(int rows, int tokens, int maxFeed) {
        return level(rows) * shapeSeconds(rows, tokens, maxFeed);
    }

    /** Predicted seconds of the draft's part of a step: {@code calls} batched calls feeding {@code rows} sequence-feeds, {@code tokens} tokens in all. */
    synchronized double draftSeconds(int calls, int rows, double tokens) {
        return calls == 0 ? 0 : draftCoef[0] * calls + draftCoef[1] * rows + draftCoef[2] * tokens;
    }

    /** Adds a step timed by the start-up profile: it shapes the target's cost, and anchors the draft's. */
    synchronized void observeProfile(BatchStep.Timing t) {
        if (t.targetRows() > 0) {
            profile.add(t);
            java.util.Arrays.fill(shapes, null);
        }
        if (t.draftCalls() > 0) {
            draftProfile.add(draftFeatures(t), t.draftNanos() / 1e9, 1, 1);
        }
    }

    /** A step in which assisted sequences (with a draft model) decoded and none drafted: live draft steps fade. */
    synchronized void draftIdle() {
        draft.fade(DRAFT_IDLE_FORGET);
        if (++sinceFit >= REFIT_EVERY) {
            refit();
        }
    }

    /** Adds a measured live step: it sets the target's level for its batch size, and refreshes the draft's cost. */
    synchronized void observe(BatchStep.Timing t) {
        if (t.targetRows() > 0) {
            double seconds = t.targetNanos() / 1e9;
            if (profile.isEmpty()) {
                live.add(targetFeatures(t.targetRows(), t.targetTokens(), t.targetMaxFeed()), seconds, FORGET, 1);
            } else {
                int c = sizeClass(t.targetRows());
                measured[c] = LEVEL_FORGET * measured[c] + seconds;
                predicted[c] = LEVEL_FORGET * predicted[c] + shapeSeconds(t.targetRows(), t.targetTokens(), t.targetMaxFeed());
            }
        }
        observeDraft(t);
    }

    private void observeDraft(BatchStep.Timing t) {
        if (t.draftCalls() > 0) {
            draft.add(draftFeatures(t), t.draftNanos() / 1e9, FORGET, 1);
        }
        if (++sinceFit >= REFIT_EVERY) {
            refit();
        }
    }

    /** Recomputes the live fits' coefficients from what was observed (done every few steps, and after the profile). */
    synchronized void refit() {
        sinceFit = 0;
        double[] t = live.solveNonNegative();
        if (t != null) {
            liveCoef = t;
        }
        double[] d = draftProfile.plus(draft).solveNonNegative();
        if (d != null) {
            draftCoef = d;
        }
    }

    /** The target's shape at {@code rows} sequences: seconds = c . [1, rows, tokens, rows * maxFeed]. */
    synchronized double[] targetCoefficients(int rows) {
        return shape(rows).clone();
    }

    /** Measured over shape-predicted time of recent live steps with {@code rows} sequences (1 before any). */
    synchronized double level(int rows) {
        if (profile.isEmpty()) {
            return 1;
        }
        int c = sizeClass(rows);
        for (int d = 0; d < CLASSES; d++) {  // a class without live steps yet: the nearest one's level, smaller first
            for (int cc : new int[] {c - d, c + d}) {
                if (cc >= 0 && cc < CLASSES && predicted[cc] > 0) {
                    return measured[cc] / predicted[cc];
                }
            }
        }
        return 1;
    }

    double[] draftCoefficients() {
        return draftCoef.clone();
    }

    private double shapeSeconds(int rows, int tokens, int maxFeed) {
        double[] c = shape(rows);
        return c[0] + c[1] * rows + c[2] * tokens + c[3] * rows * (double) maxFeed;
    }

    private double[] shape(int rows) {
        if (profile.isEmpty()) {
            return liveCoef;
        }
        int r = Math.max(1, Math.min(rows, MAX_SHAPED_ROWS));
        if (shapes[r] == null) {
            LeastSquares local = new LeastSquares(4);
            for (BatchStep.Timing t : profile) {
                double doublings = Math.abs(Math.log(t.targetRows() / (double) r)) / Math.log(2);
                local.add(targetFeatures(t.targetRows(), t.targetTokens(), t.targetMaxFeed()), t.targetNanos() / 1e9, 1,
                        Math.pow(PER_DOUBLING, doublings));
            }
            double[] c = local.solveNonNegative();
            shapes[r] = c != null ? c : liveCoef;
        }
        return shapes[r];
    }

    private static int sizeClass(int rows) {
        return Math.min(CLASSES - 1, 32 - Integer.numberOfLeadingZeros(Math.max(1, rows) - 1));
    }

    private static double[] draftFeatures(BatchStep.Timing t) {
        return new double[] {t.draftCalls(), t.draftRows(), t.draftTokens()};
    }

    private static double[] targetFeatures(int rows, int tokens, int maxFeed) {
        return new double[] {1, rows, tokens, (double) rows * maxFeed};
    }

    /** Exponentially weighted least squares by its normal equations; non-negative by trying every support set. */
    static final class LeastSquares {
        private final int n;
        private final double[][] xtx;
        private final double[] xty;
        private double weight;
        private double count;

        LeastSquares(int n) {
            this.n = n;
            this.xtx = new double[n][n];
            this.xty = new double[n];
        }

        /** Adds an observation of weight {@code w}, after fading the earlier ones by {@code forget}. */
        void add(double[] x, double y, double forget, double w) {
            for (int i = 0; i < n; i++) {
                xty[i] = forget * xty[i] + w * x[i] * y;
                for (int j = 0; j < n; j++) {
                    xtx[i][j] = forget * xtx[i][j] + w * x[i] * x[j];
                }
            }
            weight = forget * weight + w;
            count = forget * count + 1;
        }

        /** Fades every observation so far by {@code factor} (none added). */
        void fade(double factor) {
            for (int i = 0; i < n; i++) {
                xty[i] *= factor;
                for (int j = 0; j < n; j++) {
                    xtx[i][j] *= factor;
                }
            }
            weight *= factor;
            count *= factor;
        }

        /** A new fit over this one's observations and {@code other}'s. */
        LeastSquares plus(LeastSquares other) {
            LeastSquares sum = new LeastSquares(n);
            for (int i = 0; i < n; i++) {
                sum.xty[i] = xty[i] + other.xty[i];
                for (int j = 0; j < n; j++) {
                    sum.xtx[i][j] = xtx[i][j] + other.xtx[i][j];
                }
            }
            sum.weight = weight + other.weight;
            sum.count = count + other.count;
            return sum;
        }

        /** The coefficients >= 0 with the least squared error, or null before enough observations. */
        double[] solveNonNegative() {
            if (count < n || weight <= 0) {
                return null;
            }
            double[] best = null;
            double bestError = Double.POSITIVE_INFINITY;
            for (int mask = 1; mask < (1 << n); mask++) {
                double[] c = solve(mask);
                if (c == null) {
                    continue;
                }
                boolean nonNegative = true;
                for (double v : c) {
                    nonNegative &= v >= 0;
                }
                if (!nonNegative) {
                    continue;
                }
                double e = error(c);
                if (e < bestError) {
                    bestError = e;
                    best = c;
                }
            }
            return best;
        }

        /** Squared error up to a constant: c'X'Xc - 2c'X'y. */
        private double error(double[] c) {
            double e = 0;
            for (int i = 0; i < n; i++) {
                e -= 2 * c[i] * xty[i];
                for (int j = 0; j < n; j++) {
                    e += c[i] * xtx[i][j] * c[j];
                }
            }
            return e;
        }

        /** Least squares restricted to the features in {@code mask} (others 0), by Gaussian elimination; null if singular. */
        private double[] solve(int mask) {
            int[] idx = new int[Integer.bitCount(mask)];
            for (int i = 0, k = 0; i < n; i++) {
                if ((mask & (1 << i)) != 0) {
                    idx[k++] = i;
                }
            }
            int m = idx.length;
            double[][] a = new double[m][m + 1];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < m; j++) {
                    a[i][j] = xtx[idx[i]][idx[j]];
                }
                a[i][m] = xty[idx[i]];
                a[i][i] += 1e-12 * (1 + xtx[idx[i]][idx[i]]);  // a touch of ridge against exact collinearity
            }
            for (int col = 0; col < m; col++) {
                int pivot = col;
                for (int r = col + 1; r < m; r++) {
                    if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) {
                        pivot = r;
                    }
                }
                if (Math.abs(a[pivot][col]) < 1e-18) {
                    return null;
                }
                double[] t = a[col];
                a[col] = a[pivot];
                a[pivot] = t;
                for (int r = 0; r < m; r++) {
                    if (r != col) {
                        double f = a[r][col] / a[col][col];
                        for (int c = col; c <= m; c++) {
                            a[r][c] -= f * a[col][c];
                        }
                    }
                }
            }
            double[] out = new double[n];
            for (int i = 0; i < m; i++) {
                out[idx[i]] = a[i][m] / a[i][i];
            }
            return out;
        }
    }
}
