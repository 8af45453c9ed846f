package dev.tandem.api;

import dev.tandem.serving.AssistFields;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;

/**
 * The body of {@code POST /v1/chat/completions}: OpenAI's fields ({@code max_completion_tokens}
 * wins over the older {@code max_tokens}), vLLM's {@code top_k}, {@code min_p},
 * {@code repetition_penalty}, and Tandem's assisted-generation controls.
 */
@Schema(name = "CreateChatCompletionRequest",
        example = "{\"messages\": [{\"role\": \"user\", \"content\": \"And God said\"}], \"max_tokens\": 16}")
public record ChatCompletionRequest(
        String model,
        List<Message> messages,
        Integer maxTokens,
        Integer maxCompletionTokens,
        Double temperature,
        Double topP,
        Integer topK,
        Double minP,
        Double repetitionPenalty,
        Double presencePenalty,
        Double frequencyPenalty,
        Long seed,
        @Schema(description = "A string or a list of strings that end the text", implementation = Object.class) JsonNode stop,
        Integer n,
        Boolean stream,
        StreamOptions streamOptions,
        Map<String, Double> logitBias,
        Boolean logprobs,
        Integer topLogprobs,
        String user,
        Boolean ignoreEos,
        Boolean assisted,
        String assistant,
        Integer numAssistantTokens,
        String assistantSchedule,
        Double assistantConfidenceThreshold,
        Integer promptLookupNgramSize) implements SamplingFields, AssistFields {

    @Override
    public Integer maxTokens() {
        return maxCompletionTokens != null ? maxCompletionTokens : maxTokens;
    }

    /** A message: {@code content} is a string or a list of {@code {"type":"text","text":...}} parts. */
    @Schema(name = "ChatCompletionRequestMessage")
    public record Message(String role,
            @Schema(description = "A string, or a list of {\"type\": \"text\", \"text\": ...} parts", implementation = Object.class)
            JsonNode content,
            String name) {
    }
}
