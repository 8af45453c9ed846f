package dev.tandem.generation;

/**
 * How a completion was decoded, with vLLM's speculative-decoding counters when it was assisted.
 *
 * @param mode               "plain" or "assisted"
 * @param assistant          "draft", "prompt_lookup", or null for plain decoding
 * @param numSpecSteps       verification rounds in which at least one candidate was proposed
 * @param numDraftTokens     candidates the target judged (those proposed past the end of generation,
 *                           an EOS or stop string inside an accepted block, are not counted)
 * @param numAcceptedTokens  candidates the target accepted
 * @param acceptedPerPosition how often the candidate at each draft position (0-based) was accepted
 * @param numDecodeSteps     decode steps after the prefill (with or without candidates)
 * @param numProposedTokens  candidates proposed over all decode steps (the k the speculation policy chose,
 *                           as far as the generator delivered them; includes any proposed past the end)
 */
public record DecodingStats(String mode, String assistant, int numSpecSteps, int numDraftTokens, int numAcceptedTokens,
                            int[] acceptedPerPosition, int numDecodeSteps, int numProposedTokens) {

    public DecodingStats(String mode, String assistant, int numSpecSteps, int numDraftTokens, int numAcceptedTokens,
                         int[] acceptedPerPosition) {
        this(mode, assistant, numSpecSteps, numDraftTokens, numAcceptedTokens, acceptedPerPosition, 0, 0);
    }

    public static DecodingStats plain() {
        return new DecodingStats("plain", null, 0, 0, 0, new int[0]);
    }

    /** Candidates per decode step, on average: the k chosen (0 for plain decoding). */
    public double meanCandidatesPerStep() {
        return numDecodeSteps == 0 ? 0 : (double) numProposedTokens / numDecodeSteps;
    }

    public boolean assisted() {
        return "assisted".equals(mode);
    }

    /** Accepted / proposed candidates (0 when none was proposed). */
    public double draftAcceptanceRate() {
        return numDraftTokens == 0 ? 0 : (double) numAcceptedTokens / numDraftTokens;
    }

    /** Tokens emitted per verification round: accepted candidates plus the target's own token (vLLM's definition). */
    public double meanAcceptanceLength() {
        return numSpecSteps == 0 ? 0 : 1 + (double) numAcceptedTokens / numSpecSteps;
    }
}
