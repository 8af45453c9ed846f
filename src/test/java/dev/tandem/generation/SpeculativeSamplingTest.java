package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;

/**
 * The accept/resample step leaves the target's distribution unchanged: for a proposal x ~ q, the
 * emitted token y has P(y) = q(y) min(1, p(y)/q(y)) + P(reject) residual(y) = p(y). Checked by
 * exact arithmetic over the whole vocabulary, not by sampling.
 */
class SpeculativeSamplingTest {

    /** The exact distribution of the emitted token when candidates come from q (null: one-hot on x0). */
    static double[] emitted(float[] p, float[] q, int x0) {
        int v = p.length;
        double[] out = new double[v];
        for (int x = 0; x < v; x++) {
            double qx = q == null ? (x == x0 ? 1 : 0) : q[x];
            if (qx == 0) {
                continue;
            }
            double accept = SpeculativeSampling.acceptanceProbability(p, q, x);
            out[x] += qx * accept;
            float[] residual = p.clone();
            SpeculativeSampling.residual(residual, q, x);
            for (int y = 0; y < v; y++) {
                out[y] += qx * (1 - accept) * residual[y];
            }
        }
        return out;
    }

    static float[] random(SplittableRandom r, int v, double zeros) {
        float[] d = new float[v];
        double sum = 0;
        for (int i = 0; i < v; i++) {
            d[i] = r.nextDouble() < zeros ? 0 : (float) Math.pow(r.nextDouble(), 3);
            sum += d[i];
        }
        if (sum == 0) {
            d[0] = 1;
            sum = 1;
        }
        for (int i = 0; i < v; i++) {
            d[i] = (float) (d[i] / sum);
        }
        return d;
    }

    @RepeatedTest(20)
    void draftProposalsLeaveTheTargetDistribution(org.junit.jupiter.api.RepetitionInfo info) {
        SplittableRandom r = new SplittableRandom(info.getCurrentRepetition());
        int v = 64;
        float[] p = random(r, v, 0.3);   // filtered tokens (top-k/top-p) are zeros
        float[] q = random(r, v, 0.3);
        double[] out = emitted(p, q, -1);
        for (int y = 0; y < v; y++) {
            assertEquals(p[y], out[y], 1e-6, "token " + y);
        }
    }

    @RepeatedTest(10)
    void oneHotProposalsLeaveTheTargetDistribution(org.junit.jupiter.api.RepetitionInfo info) {
        SplittableRandom r = new SplittableRandom(100 + info.getCurrentRepetition());
        int v = 32;
        float[] p = random(r, v, 0.2);
        for (int x0 = 0; x0 < v; x0++) {
            double[] out = emitted(p, null, x0);
            for (int y = 0; y < v; y++) {
                assertEquals(p[y], out[y], 1e-6, "candidate " + x0 + ", token " + y);
            }
        }
    }

    @Test
    void identicalDistributionsAlwaysAccept() {
        float[] p = {0.2f, 0.5f, 0.3f};
        for (int x = 0; x < 3; x++) {
            assertEquals(1.0, SpeculativeSampling.acceptanceProbability(p, p.clone(), x), 1e-12);
        }
    }

    @Test
    void aCandidateTheTargetRulesOutIsAlwaysRejected() {
        float[] p = {0.0f, 1.0f};
        float[] q = {0.9f, 0.1f};
        assertEquals(0.0, SpeculativeSampling.acceptanceProbability(p, q, 0));
        float[] residual = p.clone();
        SpeculativeSampling.residual(residual, q, 0);
        assertEquals(0.0f, residual[0]);
        assertEquals(1.0f, residual[1]);
    }
}
