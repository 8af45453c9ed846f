package dev.tandem.serving;

import dev.tandem.generation.BatchStep;

/**
 * What a step costs on the loaded models, learned from measured steps: the target's time as a linear
 * function of the sequences it feeds, the tokens it feeds and rows x the longest feed (what a padded
 * batch computes), and the draft's time as a function of its batched calls, the sequence-feeds in
 * them and the tokens fed (a sequence that speculates after steps without candidates first catches its
 * draft up with the tokens it missed: measured steps carry that cost, and the model must tell it apart
 * from a call's, else rare speculation makes every draft call look dear and speculation rarer still). Fitted by least squares with non-negative coefficients over recent steps (older ones fade),
 * starting from a profile of the loaded models at start-up.
 */
final class StepCostModel {
    /** A step's share in the fit after n more steps: 0.998^n (the last ~500 steps count). */
    private static final double FORGET = 0.998;
    private static final int REFIT_EVERY = 16;

    private final LeastSquares target = new LeastSquares(4);
    private final LeastSquares draft = new LeastSquares(3);
    private double[] targetCoef = {0, 0, 1e-3, 0};  // before any measurement: 1 ms per token
    private double[] draftCoef = {1e-4, 1e-4, 0};
    private int sinceFit;

    /** Predicted seconds of a target call. */
    double targetSeconds(int rows, int tokens, int maxFeed) {
        return dot(targetCoef, targetFeatures(rows, tokens, maxFeed));
    }

    /** Predicted seconds of the draft's part of a step: {@code calls} batched calls feeding {@code rows} sequence-feeds, {@code tokens} tokens in all. */
    double draftSeconds(int calls, int rows, double tokens) {
        return calls == 0 ? 0 : draftCoef[0] * calls + draftCoef[1] * rows + draftCoef[2] * tokens;
    }

    /** Adds a measured step. */
    synchronized void observe(BatchStep.Timing t) {
        if (t.targetRows() > 0) {
            target.add(targetFeatures(t.targetRows(), t.targetTokens(), t.targetMaxFeed()), t.targetNanos() / 1e9, FORGET);
        }
        if (t.draftCalls() > 0) {
            draft.add(new double[] {t.draftCalls(), t.draftRows(), t.draftTokens()}, t.draftNanos() / 1e9, FORGET);
        }
        if (++sinceFit >= REFIT_EVERY) {
            refit();
        }
    }

    /** Recomputes the coefficients from what was observed (done every few steps, and after the profile). */
    synchronized void refit() {
        sinceFit = 0;
        double[] t = target.solveNonNegative();
        if (t != null) {
            targetCoef = t;
        }
        double[] d = draft.solveNonNegative();
        if (d != null) {
            draftCoef = d;
        }
    }

    double[] targetCoefficients() {
        return targetCoef.clone();
    }

    double[] draftCoefficients() {
        return draftCoef.clone();
    }

    private static double[] targetFeatures(int rows, int tokens, int maxFeed) {
        return new double[] {1, rows, tokens, (double) rows * maxFeed};
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** Exponentially weighted least squares by its normal equations; non-negative by trying every support set. */
    static final class LeastSquares {
        private final int n;
        private final double[][] xtx;
        private final double[] xty;
        private double weight;

        LeastSquares(int n) {
            this.n = n;
            this.xtx = new double[n][n];
            this.xty = new double[n];
        }

        void add(double[] x, double y, double forget) {
            for (int i = 0; i < n; i++) {
                xty[i] = forget * xty[i] + x[i] * y;
                for (int j = 0; j < n; j++) {
                    xtx[i][j] = forget * xtx[i][j] + x[i] * x[j];
                }
            }
            weight = forget * weight + 1;
        }

        /** The coefficients >= 0 with the least squared error, or null before enough observations. */
        double[] solveNonNegative() {
            if (weight < n) {
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
