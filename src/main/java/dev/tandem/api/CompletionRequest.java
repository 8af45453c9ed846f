package dev.tandem.api;

import dev.tandem.serving.AssistFields;
import com.fasterxml.jackson.databind.JsonNode;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import java.util.Map;

/**
 * The body of {@code POST /v1/completions}: OpenAI's fields, plus vLLM's {@code top_k},
 * {@code min_p} and {@code repetition_penalty}, plus Tandem's assisted-generation controls
 * ({@code assisted}, {@code assistant}, {@code num_assistant_tokens}, {@code assistant_schedule},
 * {@code assistant_confidence_threshold}, {@code prompt_lookup_ngram_size}). Types are checked by Jackson (strictly); ranges
 * by {@link CompletionParams}. {@code prompt} and {@code stop} take a string or an array, so
 * they arrive as JSON trees.
 */
@Schema(name = "CreateCompletionRequest", example = "{\"prompt\": \"And God said\", \"max_tokens\": 16, \"temperature\": 0}")
public record CompletionRequest(
        String model,
        @Schema(description = "A string, a list holding one string, or a list of token ids; \"\" starts from BOS",
                implementation = Object.class) JsonNode prompt,
        Integer maxTokens,
        Double temperature,
        Double topP,
        Integer topK,
        Double minP,
        Double repetitionPenalty,
        Double presencePenalty,
        Double frequencyPenalty,
        Long seed,
        @Schema(description = "A string or a list of strings that end the text", implementation = Object.class) JsonNode stop,
        Integer logprobs,
        Boolean echo,
        Integer n,
        Integer bestOf,
        Boolean stream,
        StreamOptions streamOptions,
        String suffix,
        Map<String, Double> logitBias,
        String user,
        @Schema(description = "vLLM extension: keep generating after EOS, up to max_tokens") Boolean ignoreEos,
        @Schema(description = "Tandem: decode assisted (true) or plain (false); absent means the server default") Boolean assisted,
        @Schema(description = "Tandem: draft or prompt_lookup", enumeration = {"draft", "prompt_lookup"}) String assistant,
        @Schema(description = "Tandem: candidates per round, 1..16", minimum = "1", maximum = "16") Integer numAssistantTokens,
        @Schema(description = "Tandem: constant or heuristic", enumeration = {"constant", "heuristic"}) String assistantSchedule,
        @Schema(description = "Tandem: the draft ends a round below this confidence, 0..1") Double assistantConfidenceThreshold,
        @Schema(description = "Tandem: longest n-gram prompt lookup matches, 1..8") Integer promptLookupNgramSize) implements SamplingFields, AssistFields {
}
