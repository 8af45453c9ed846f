package dev.tandem.generation;

import java.util.List;

/**
 * One completion to generate.
 *
 * @param prompt     prompt token ids (BOS included when the model uses one); at least one id
 * @param sampling   how tokens are chosen
 * @param maxTokens  most tokens to generate
 * @param stop       strings that end the text (not included in it)
 * @param logprobs   -1: no log-probabilities; n &ge; 0: the chosen token's and the n most likely
 * @param echo       also return the prompt's tokens and their log-probabilities
 */
public record GenerationRequest(int[] prompt, SamplingParams sampling, int maxTokens, List<String> stop, int logprobs,
                                boolean echo) {
    public GenerationRequest {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("a prompt needs at least one token");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be at least 1");
        }
        stop = List.copyOf(stop);
    }

    public boolean wantsLogprobs() {
        return logprobs >= 0;
    }
}
