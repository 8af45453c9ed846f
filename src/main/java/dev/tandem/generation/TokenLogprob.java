package dev.tandem.generation;

import java.util.List;

/**
 * A token with its log-probability under the model (log-softmax of the raw logits, before any
 * sampling transform) and the most likely alternatives at its position.
 *
 * @param logprob    null for a first token that has no context to be predicted from
 * @param textOffset where the token's text starts in the returned text
 */
public record TokenLogprob(int token, String text, Float logprob, List<Alternative> top, int textOffset) {

    /** One of the most likely tokens at a position. */
    public record Alternative(int token, String text, float logprob) {
    }
}
