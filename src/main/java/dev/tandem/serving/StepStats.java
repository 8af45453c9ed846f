package dev.tandem.serving;

/**
 * What one scheduler step did: the facts behind the per-step metrics (batch size, tokens per step,
 * step time, goodput). The scheduler hands one to its listener after each step that ran; one small
 * record per step, nothing per token.
 *
 * @param sequences          sequences in the step (the batch size)
 * @param decoding           of those, sequences that decoded (one token plus any candidates)
 * @param prefilling         of those, sequences fed a prompt chunk
 * @param tokensFed          tokens the target was fed: prompt chunks, plus one token and its candidates per decoding sequence
 * @param promptTokensFed    prompt tokens among them (chunked prefill)
 * @param candidatesProposed candidates proposed in the step, over all decoding sequences (the k the policy chose, summed)
 * @param tokensEmitted      tokens the step emitted (accepted candidates, the target's own tokens, first tokens of prompts
 *                           whose last chunk was fed)
 * @param nanos              time of the step (draft proposals and the target call)
 */
record StepStats(int sequences, int decoding, int prefilling, int tokensFed, int promptTokensFed, int candidatesProposed,
                 int tokensEmitted, long nanos) {

    /** vLLM's tokens per engine step ({@code iteration_tokens_total}): prompt tokens computed plus tokens generated. */
    int iterationTokens() {
        return promptTokensFed + tokensEmitted;
    }
}
