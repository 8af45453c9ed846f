package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.generation.BatchStep;
import org.junit.jupiter.api.Test;

/** The draft's price: anchored by the profile, learnt from live steps, back to the profile while nothing drafts. */
class StepCostModelTest {
    /** The profile's draft: 0.05 ms a call, 0.02 ms a row, 0.01 ms a token. */
    private static long profileNanos(int calls, int rows, int tokens) {
        return Math.round(1e6 * (0.05 * calls + 0.02 * rows + 0.01 * tokens));
    }

    private static StepCostModel profiled() {
        StepCostModel cost = new StepCostModel();
        for (int rows : new int[] {1, 2, 4, 8}) {
            for (int feed : new int[] {1, 8}) {
                cost.observeProfile(new BatchStep.Timing(0, 0, 0, 0, 1, rows, rows * feed, profileNanos(1, rows, rows * feed), 0));
            }
        }
        cost.refit();
        return cost;
    }

    @Test
    void theProfilePricesTheDraft() {
        double priced = profiled().draftSeconds(3, 3, 3);
        double truth = profileNanos(3, 3, 3) / 1e9;
        assertTrue(Math.abs(priced - truth) < 0.05 * truth, "priced " + priced + " s, profile " + truth + " s");
    }

    /**
     * A few dear drafting steps (drafts catching up, padded) make drafting look dear; while assisted sequences then
     * decode without drafting, the price returns to the profile's, so the policy tries again. Without the return the
     * price stayed for the life of the service.
     */
    @Test
    void aDearDraftPriceFadesWhileNothingDrafts() {
        StepCostModel cost = profiled();
        double profile = cost.draftSeconds(3, 3, 3);
        for (int i = 0; i < 20; i++) {  // 3 calls of one row, one token each, at 30x the profile's time
            cost.observe(new BatchStep.Timing(1, 4, 4, 2_000_000, 3, 3, 3, 30 * profileNanos(3, 3, 3), 3));
        }
        cost.refit();
        double dear = cost.draftSeconds(3, 3, 3);
        assertTrue(dear > 10 * profile, "after dear steps: " + dear + " s against the profile's " + profile);
        for (int i = 0; i < 3000; i++) {  // a few seconds of steps at one stream
            cost.draftIdle();
        }
        cost.refit();
        double back = cost.draftSeconds(3, 3, 3);
        assertTrue(back < 1.5 * profile, "after 3000 steps without drafting: " + back + " s against the profile's " + profile);
    }
}
