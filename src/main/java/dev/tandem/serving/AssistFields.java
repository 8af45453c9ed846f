package dev.tandem.serving;

/**
 * A request's assisted-decoding fields as the client sent them, null where it did not send one; the
 * same on every generation endpoint (the OpenAI and TGI request bodies implement this). Nothing here
 * is checked or defaulted yet: {@link DecodingPolicy} does both.
 */
public interface AssistFields {
    /** {@code assisted}: true, false, or null when the request does not say. */
    Boolean assisted();

    /** {@code assistant}: "draft" or "prompt_lookup" (checked by the policy). */
    String assistant();

    Integer numAssistantTokens();

    /** {@code assistant_schedule}: "constant" or "heuristic". */
    String assistantSchedule();

    Double assistantConfidenceThreshold();

    Integer promptLookupNgramSize();
}
