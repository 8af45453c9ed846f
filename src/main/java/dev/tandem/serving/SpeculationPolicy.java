package dev.tandem.serving;

import dev.tandem.generation.Sequence;

/**
 * How many candidates an assisted sequence gets in a step ({@code tandem.assisted.policy}). A plain
 * sequence never gets any (it has no candidate generator).
 */
interface SpeculationPolicy {

    /** Candidates for {@code s} in this step, with {@code decoding} sequences decoding in it (0 = none this step). */
    int candidates(Sequence s, int decoding);

    /** Today's behaviour: every assisted sequence gets what its draft-length schedule asks for, whatever the load. */
    SpeculationPolicy FIXED = (s, decoding) -> s.wantedCandidates();
}
