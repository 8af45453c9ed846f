package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {
    /** Logits whose softmax is exactly {0.5, 0.3, 0.15, 0.05}. */
    static float[] logits() {
        return new float[] {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
    }

    static SamplingParams params(double t, int k, double p, double minP) {
        return new SamplingParams(t, k, p, minP, 1, 0, 0, 42L);
    }

    static void assertProbs(float[] expected, float[] actual) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-6, "token " + i);
        }
    }

    @Test
    void greedyIsArgmaxAndOneHot() {
        Sampler s = new Sampler(SamplingParams.greedy(), 4, new int[0]);
        assertEquals(0, s.next(logits()));
        assertProbs(new float[] {1, 0, 0, 0}, s.distribution(logits()));
    }

    @Test
    void temperatureOneIsTheSoftmax() {
        assertProbs(new float[] {0.5f, 0.3f, 0.15f, 0.05f}, new Sampler(params(1, 0, 1, 0), 4, new int[0]).distribution(logits()));
    }

    @Test
    void temperatureSharpens() {
        float[] p = new Sampler(params(0.5, 0, 1, 0), 4, new int[0]).distribution(logits());
        double z = 0.25 + 0.09 + 0.0225 + 0.0025;  // p^(1/T) with T = 0.5
        assertProbs(new float[] {(float) (0.25 / z), (float) (0.09 / z), (float) (0.0225 / z), (float) (0.0025 / z)}, p);
    }

    @Test
    void topKKeepsTheKMostLikely() {
        assertProbs(new float[] {0.625f, 0.375f, 0, 0}, new Sampler(params(1, 2, 1, 0), 4, new int[0]).distribution(logits()));
    }

    @Test
    void topPKeepsTheSmallestNucleusReachingP() {
        assertProbs(new float[] {0.625f, 0.375f, 0, 0}, new Sampler(params(1, 0, 0.75, 0), 4, new int[0]).distribution(logits()));
        assertProbs(new float[] {1, 0, 0, 0}, new Sampler(params(1, 0, 0.4, 0), 4, new int[0]).distribution(logits()));
        float[] p = new Sampler(params(1, 0, 0.81, 0), 4, new int[0]).distribution(logits());
        assertProbs(new float[] {0.5f / 0.95f, 0.3f / 0.95f, 0.15f / 0.95f, 0}, p);
    }

    @Test
    void minPDropsTokensFarBelowTheBest() {
        assertProbs(new float[] {0.5f / 0.95f, 0.3f / 0.95f, 0.15f / 0.95f, 0},
                new Sampler(params(1, 0, 1, 0.2), 4, new int[0]).distribution(logits()));
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens() {
        Sampler s = new Sampler(new SamplingParams(0, 0, 1, 0, 2, 0, 0, null), 3, new int[] {0, 1});
        float[] l = {4f, -1f, 2.5f};
        assertEquals(2, s.next(l), "token 0 (4 -> 2) falls below unseen token 2 (2.5)");
        assertArrayEquals(new float[] {2f, -2f, 2.5f}, l);
    }

    @Test
    void presenceAndFrequencyPenaltiesCountGeneratedTokensOnly() {
        Sampler s = new Sampler(new SamplingParams(0, 0, 1, 0, 1, 0.5, 0.25, null), 3, new int[] {2});
        s.accept(0);
        s.accept(0);
        s.accept(1);
        float[] l = {1f, 1f, 1f};
        s.next(l);
        assertArrayEquals(new float[] {1 - 0.5f - 0.5f, 1 - 0.5f - 0.25f, 1f}, l);
    }

    @Test
    void drawsFollowTheDistribution() {
        Sampler s = new Sampler(params(1, 0, 1, 0), 4, new int[0]);
        int[] counts = new int[4];
        int n = 40_000;
        for (int i = 0; i < n; i++) {
            counts[s.next(logits())]++;
        }
        double[] expected = {0.5, 0.3, 0.15, 0.05};
        for (int i = 0; i < 4; i++) {
            double sd = Math.sqrt(expected[i] * (1 - expected[i]) / n);
            assertTrue(Math.abs(counts[i] / (double) n - expected[i]) < 5 * sd, "token " + i + ": " + counts[i]);
        }
    }

    @Test
    void sameSeedSameDrawsDifferentSeedDifferentDraws() {
        int[] a = draws(7L);
        assertArrayEquals(a, draws(7L));
        assertNotEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(draws(8L)));
    }

    @Test
    void nonFiniteLogitsAreRefusedNotTurnedIntoAnInvalidToken() {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] l = logits();
            l[2] = bad;
            var e = assertThrows(InvalidLogitsException.class, () -> new Sampler(params(1, 0, 1, 0), 4, new int[0]).next(l.clone()));
            assertTrue(e.getMessage().contains("token 2"), e.getMessage());
            assertThrows(InvalidLogitsException.class, () -> new Sampler(SamplingParams.greedy(), 4, new int[0]).next(l.clone()));
            assertThrows(InvalidLogitsException.class, () -> new Sampler(params(0.7, 2, 0.9, 0.1), 4, new int[0]).distribution(l.clone()));
        }
    }

    @Test
    void aPenaltyThatOverflowsTheLogitsIsRefused() {
        // a factor the API refuses (1e-300 is 0 as a float): the seen token's logit becomes infinite
        Sampler s = new Sampler(new SamplingParams(1, 0, 1, 0, 1e-300, 0, 0, 1L), 4, new int[] {0});
        float[] l = {1f, 0.5f, 0.25f, 0f};
        assertThrows(InvalidLogitsException.class, () -> s.next(l));
    }

    @Test
    void aTinyTemperatureIsAlmostGreedyNotNaN() {
        // 1/T overflows (to infinity in float from T < 3e-39; in double from 5e-324), and 0 * inf is NaN
        for (double t : new double[] {1e-30, 1e-40, Double.MIN_VALUE}) {
            float[] p = new Sampler(params(t, 0, 1, 0), 4, new int[0]).distribution(logits());
            assertProbs(new float[] {1, 0, 0, 0}, p);
            assertEquals(0, new Sampler(params(t, 0, 1, 0), 4, new int[0]).next(logits()));
        }
    }

    @Test
    void aDrawFromNothingIsRefused() {
        Sampler s = new Sampler(params(1, 0, 1, 0), 4, new int[0]);
        assertThrows(InvalidLogitsException.class, () -> s.draw(new float[4]));
    }

    private static int[] draws(long seed) {
        Sampler s = new Sampler(new SamplingParams(1, 0, 1, 0, 1, 0, 0, seed), 4, new int[0]);
        int[] out = new int[64];
        for (int i = 0; i < out.length; i++) {
            out[i] = s.next(logits());
        }
        return out;
    }
}
