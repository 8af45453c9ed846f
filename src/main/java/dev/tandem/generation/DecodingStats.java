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
 */
public record DecodingStats(String mode, String assistant, int numSpecSteps, int numDraftTokens, int numAcceptedTokens,
                            int[] acceptedPerPosition) {

    public static DecodingStats plain() {
        return new DecodingStats("plain", null, 0, 0, 0, new int[0]);
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
