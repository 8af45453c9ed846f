package dev.tandem.generation;

/**
 * Proposes tokens for the target to verify (Hugging Face's {@code CandidateGenerator}, vLLM's
 * proposer). One instance serves one sequence.
 */
interface CandidateGenerator extends AutoCloseable {

    /**
     * Proposes up to {@code max} tokens to follow {@code sequence[0..length)} (the prompt and every
     * token emitted so far) into {@code out}, and returns how many. A generator that samples writes
     * the distribution each candidate was drawn from into {@code out}; one that proposes
     * deterministically leaves them null (one-hot).
     */
    int propose(int[] sequence, int length, int max, Candidates out);

    /** How many of the last {@code proposed} candidates the target accepted (the strategy update). */
    void update(int proposed, int accepted);

    @Override
    void close();
}
