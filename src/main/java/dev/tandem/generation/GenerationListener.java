package dev.tandem.generation;

import java.util.List;

/**
 * Follows a generation as it happens: text as soon as it is final (never half a character, never
 * a piece that might still turn into a stop string), and a way to stop it early.
 */
public interface GenerationListener {

    /** Text that became final, with the log-probabilities of the tokens it came from (when asked). */
    void onText(String text, List<TokenLogprob> logprobs);

    /** Polled between decoding steps; true ends the generation with {@link FinishReason#CANCELLED}. */
    boolean isCancelled();

    GenerationListener NONE = new GenerationListener() {
        @Override
        public void onText(String text, List<TokenLogprob> logprobs) {
        }

        @Override
        public boolean isCancelled() {
            return false;
        }
    };
}
