package dev.tandem.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.tandem.generation.DecodingStats;

/**
 * How a completion was decoded: {@code mode} is "assisted" or "plain"; assisted completions carry
 * the speculative-decoding counters under vLLM's names.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Decoding(String mode, String assistant, Integer numSpecSteps, Integer numDraftTokens,
                       Integer numAcceptedTokens, Double draftAcceptanceRate, Double meanAcceptanceLength,
                       int[] acceptanceHistogram) {

    static Decoding of(DecodingStats s) {
        if (!s.assisted()) {
            return new Decoding("plain", null, null, null, null, null, null, null);
        }
        return new Decoding("assisted", s.assistant(), s.numSpecSteps(), s.numDraftTokens(), s.numAcceptedTokens(),
                s.draftAcceptanceRate(), s.meanAcceptanceLength(), s.acceptedPerPosition());
    }
}
