package dev.tandem.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/** OpenAI's chat completion object, and (with {@code delta} instead of {@code message}) its stream chunks. */
public record ChatCompletionResponse(String id, String object, long created, String model, List<Choice> choices,
                                     CompletionResponse.Usage usage, Decoding decoding) {

    /** {@code message} in a completion, {@code delta} in a stream chunk; the other is left out. */
    public record Choice(int index, @JsonInclude(JsonInclude.Include.NON_NULL) Message message,
                         @JsonInclude(JsonInclude.Include.NON_NULL) Message delta, ChatLogprobs logprobs,
                         String finishReason) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Message(String role, String content) {
    }

    /** OpenAI's chat logprobs: one entry per token. */
    public record ChatLogprobs(List<TokenEntry> content) {
    }

    public record TokenEntry(String token, float logprob, int[] bytes, List<TopEntry> topLogprobs) {
    }

    public record TopEntry(String token, float logprob, int[] bytes) {
    }
}
