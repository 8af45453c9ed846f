package dev.tandem.generation;

/**
 * The scores a token is chosen from are not all finite numbers (NaN or infinity), so no token can be
 * chosen: the softmax of such a row is undefined, and argmax or a draw over it would pick an arbitrary
 * or invalid id. Request parameters are range-checked so that they cannot produce this from a model's
 * finite logits; when it happens, the model (or its engine) produced the non-finite value. The API
 * answers it as a server error that says so.
 */
public final class InvalidLogitsException extends RuntimeException {
    public InvalidLogitsException(String message) {
        super(message);
    }
}
