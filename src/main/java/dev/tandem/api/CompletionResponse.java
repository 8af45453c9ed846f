package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.media.Schema;
import java.util.List;
import java.util.Map;

/** OpenAI's text completion object. */
@Schema(name = "CreateCompletionResponse")
public record CompletionResponse(String id, String object, long created, String model, List<Choice> choices, Usage usage,
                                 Decoding decoding) {

    @Schema(name = "CompletionChoice")
    public record Choice(int index, String text, LogprobsBody logprobs, String finishReason) {
    }

    /** OpenAI's completions logprobs: parallel lists, one entry per token. */
    @Schema(name = "CompletionLogprobs")
    public record LogprobsBody(List<String> tokens, List<Float> tokenLogprobs, List<Map<String, Float>> topLogprobs,
                               List<Integer> textOffset) {
    }

    @Schema(name = "CompletionUsage")
    public record Usage(int promptTokens, int completionTokens, int totalTokens) {
    }
}
