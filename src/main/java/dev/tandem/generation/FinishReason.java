package dev.tandem.generation;

/** Why generation ended, with the names OpenAI's API uses. */
public enum FinishReason {
    /** EOS or a stop string. */
    STOP("stop"),
    /** {@code max_tokens} or the model's context was reached. */
    LENGTH("length"),
    /** The client went away (or the request was cancelled) before the end. */
    CANCELLED("cancelled");

    private final String apiName;

    FinishReason(String apiName) {
        this.apiName = apiName;
    }

    public String apiName() {
        return apiName;
    }
}
