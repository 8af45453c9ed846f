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
 * @param ignoreEos  EOS does not end the generation (vLLM's {@code ignore_eos}): it runs to maxTokens, a stop
 *                   string or the context
 */
public record GenerationRequest(int[] prompt, SamplingParams sampling, int maxTokens, List<String> stop, int logprobs,
                                boolean echo, boolean ignoreEos) {
    public GenerationRequest(int[] prompt, SamplingParams sampling, int maxTokens, List<String> stop, int logprobs,
                             boolean echo) {
        this(prompt, sampling, maxTokens, stop, logprobs, echo, false);
    }

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
