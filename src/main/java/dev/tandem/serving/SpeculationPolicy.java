package dev.tandem.serving;

import dev.tandem.generation.BatchStep;
import dev.tandem.generation.Sequence;
import java.util.List;

/**
 * How many candidates each assisted sequence gets in a step ({@code tandem.assisted.policy}). A plain
 * sequence never gets any (it has no candidate generator).
 */
interface SpeculationPolicy {

    /**
     * Chooses k for every decoding sequence of a step into {@code k} (0 = no candidates this step).
     *
     * The step's prompt chunks do not enter the choice: they run in a target call of their own
     * ({@link BatchStep}), whose time no choice of k changes.
     *
     * @param decoding the step's decoding sequences
     */
    void choose(List<Sequence> decoding, int[] k);

    /**
     * Whether this step's prompt chunks are also fed to the assisted sequences' draft models, after {@link #choose}
     * gave {@code k}. Fed along, a new request's first proposal starts caught up; not fed, its draft must catch up with
     * the whole prompt before its first candidate, which the policy then prices. The draft's share of a prompt is
     * wasted while the load keeps speculation off (measured at 16 streams of held-out passages: auto 0.91x plain with
     * every prompt fed to the draft, its candidates all 0). Default: always.
     */
    default boolean draftFollowsPrompts(List<Sequence> decoding, int[] k) {
        return true;
    }

    /** What the step ran and how long it took. */
    default void observe(List<Sequence> decoding, BatchStep.Timing timing) {
    }

    /** {@code fixed}: every assisted sequence gets what its draft-length schedule asks for, whatever the load. */
    SpeculationPolicy FIXED = (decoding, k) -> {
        for (int i = 0; i < decoding.size(); i++) {
            k[i] = decoding.get(i).wantedCandidates();
        }
    };
}
