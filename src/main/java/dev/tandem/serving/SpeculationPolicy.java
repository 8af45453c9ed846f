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
     * @param decoding      the step's decoding sequences
     * @param prefillRows   sequences feeding a prompt chunk in the same step
     * @param prefillTokens prompt tokens fed in the same step
     * @param longestChunk  the longest prompt chunk in the step (0 for none)
     */
    void choose(List<Sequence> decoding, int prefillRows, int prefillTokens, int longestChunk, int[] k);

    /** What the step ran and how long it took. */
    default void observe(List<Sequence> decoding, BatchStep.Timing timing) {
    }

    /** {@code fixed}: every assisted sequence gets what its draft-length schedule asks for, whatever the load. */
    SpeculationPolicy FIXED = (decoding, prefillRows, prefillTokens, longestChunk, k) -> {
        for (int i = 0; i < decoding.size(); i++) {
            k[i] = decoding.get(i).wantedCandidates();
        }
    };
}
