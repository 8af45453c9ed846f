package dev.tandem.api;

/** The per-request assisted-generation fields, shared by every generation endpoint's request. */
public interface AssistFields {
    Boolean assisted();

    String assistant();

    Integer numAssistantTokens();

    String assistantSchedule();

    Double assistantConfidenceThreshold();

    Integer promptLookupNgramSize();
}
