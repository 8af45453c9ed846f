package dev.tandem.generation;

import java.util.List;

/**
 * What a generation produced.
 *
 * @param text            the completion (stop string excluded)
 * @param tokens          generated token ids (the EOS that ended generation and a stop string's tokens included)
 * @param promptLogprobs  the prompt's tokens (BOS excluded) when echo was asked, else empty
 * @param logprobs        one entry per generated token when logprobs were asked, else empty
 * @param prefillNanos    time of the prompt's forward pass
 * @param decodeNanos     time of all decode steps (sampling and detokenisation included)
 * @param stats           plain or assisted, with the assisted mode's counters
 */
public record GenerationResult(String text, int[] tokens, FinishReason finishReason, int promptTokens,
                               List<TokenLogprob> promptLogprobs, List<TokenLogprob> logprobs,
                               long prefillNanos, long decodeNanos, DecodingStats stats) {

    public int completionTokens() {
        return tokens.length;
    }
}
