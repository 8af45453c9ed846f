package dev.tandem.api;

import java.util.List;
import java.util.Map;

/** OpenAI's text completion object. */
public record CompletionResponse(String id, String object, long created, String model, List<Choice> choices, Usage usage,
                                 Decoding decoding) {

    public record Choice(int index, String text, LogprobsBody logprobs, String finishReason) {
    }

    /** OpenAI's completions logprobs: parallel lists, one entry per token. */
    public record LogprobsBody(List<String> tokens, List<Float> tokenLogprobs, List<Map<String, Float>> topLogprobs,
                               List<Integer> textOffset) {
    }

    public record Usage(int promptTokens, int completionTokens, int totalTokens) {
    }
}
