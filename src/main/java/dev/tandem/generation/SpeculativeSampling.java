package dev.tandem.generation;

/**
 * The accept/resample step of speculative sampling (Leviathan et al. 2023; Chen et al. 2023,
 * arXiv:2302.01318). A candidate x drawn from q is kept with probability min(1, p(x)/q(x)); on
 * rejection the token is drawn from normalise(max(0, p - q)). The emitted token is then
 * distributed exactly as p. A deterministic proposal is q = one-hot(x) (q == null here).
 */
final class SpeculativeSampling {
    private SpeculativeSampling() {
    }

    /** min(1, p(x)/q(x)); q == null means one-hot on x. */
    static double acceptanceProbability(float[] p, float[] q, int x) {
        double qx = q == null ? 1.0 : q[x];
        if (qx <= 0) {
            return 0;  // x could not have been proposed; never keep it
        }
        return Math.min(1.0, p[x] / qx);
    }

    /**
     * Overwrites {@code p} with normalise(max(0, p - q)). If rounding leaves nothing (p and q
     * equal), {@code p} is left as it was, which is then the right distribution to draw from.
     */
    static void residual(float[] p, float[] q, int x) {
        double sum = 0;
        if (q == null) {
            sum = 1.0 - p[x];
        } else {
            for (int i = 0; i < p.length; i++) {
                sum += Math.max(0f, p[i] - q[i]);
            }
        }
        if (sum <= 1e-12) {
            return;
        }
        if (q == null) {
            p[x] = 0;
            for (int i = 0; i < p.length; i++) {
                p[i] = (float) (p[i] / sum);
            }
        } else {
            for (int i = 0; i < p.length; i++) {
                p[i] = (float) (Math.max(0f, p[i] - q[i]) / sum);
            }
        }
    }
}
