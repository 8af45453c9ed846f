package dev.tandem.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.tandem.generation.DecodingStats;
import org.eclipse.microprofile.openapi.annotations.media.Schema;

/**
 * How a completion was decoded: {@code mode} is "assisted" or "plain"; assisted completions carry
 * the speculative-decoding counters under vLLM's names, and the candidates the speculation policy
 * chose per decode step (it may grant fewer than asked when the server is busy).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Decoding(
        @Schema(description = "\"assisted\" or \"plain\"") String mode,
        @Schema(description = "Where candidates came from: \"draft\" or \"prompt_lookup\" (assisted only)") String assistant,
        @Schema(description = "Verification rounds in which at least one candidate was proposed") Integer numSpecSteps,
        @Schema(description = "Candidates the target judged") Integer numDraftTokens,
        @Schema(description = "Candidates the target accepted") Integer numAcceptedTokens,
        @Schema(description = "num_accepted_tokens / num_draft_tokens") Double draftAcceptanceRate,
        @Schema(description = "Tokens per verification round: 1 + num_accepted_tokens / num_spec_steps") Double meanAcceptanceLength,
        @Schema(description = "Accepted candidates by draft position (0-based)") int[] acceptanceHistogram,
        @Schema(description = "Decode steps after the prompt, with or without candidates") Integer numDecodeSteps,
        @Schema(description = "Candidates proposed per decode step on average: the k chosen for this request")
        Double meanCandidatesPerStep) {

    static Decoding of(DecodingStats s) {
        if (!s.assisted()) {
            return new Decoding("plain", null, null, null, null, null, null, null, null, null);
        }
        return new Decoding("assisted", s.assistant(), s.numSpecSteps(), s.numDraftTokens(), s.numAcceptedTokens(),
                s.draftAcceptanceRate(), s.meanAcceptanceLength(), s.acceptedPerPosition(), s.numDecodeSteps(),
                s.meanCandidatesPerStep());
    }
}
