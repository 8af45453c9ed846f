package dev.tandem.api;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;

/**
 * The body of {@code POST /v1/completions}: OpenAI's fields, plus vLLM's {@code top_k},
 * {@code min_p} and {@code repetition_penalty}, plus Tandem's assisted-generation controls
 * ({@code assisted}, {@code assistant}, {@code num_assistant_tokens}, {@code assistant_schedule},
 * {@code assistant_confidence_threshold}, {@code prompt_lookup_ngram_size}). Types are checked by Jackson (strictly); ranges
 * by {@link CompletionParams}. {@code prompt} and {@code stop} take a string or an array, so
 * they arrive as JSON trees.
 */
public record CompletionRequest(
        String model,
        JsonNode prompt,
        Integer maxTokens,
        Double temperature,
        Double topP,
        Integer topK,
        Double minP,
        Double repetitionPenalty,
        Double presencePenalty,
        Double frequencyPenalty,
        Long seed,
        JsonNode stop,
        Integer logprobs,
        Boolean echo,
        Integer n,
        Integer bestOf,
        Boolean stream,
        StreamOptions streamOptions,
        String suffix,
        Map<String, Double> logitBias,
        String user,
        Boolean assisted,
        String assistant,
        Integer numAssistantTokens,
        String assistantSchedule,
        Double assistantConfidenceThreshold,
        Integer promptLookupNgramSize) implements SamplingFields, AssistFields {
}
