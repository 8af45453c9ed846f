package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.media.Schema;
import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/** OpenAI's chat completion object, and (with {@code delta} instead of {@code message}) its stream chunks. */
@Schema(name = "CreateChatCompletionResponse")
public record ChatCompletionResponse(String id, String object, long created, String model, List<Choice> choices,
                                     CompletionResponse.Usage usage, Decoding decoding) {

    /** {@code message} in a completion, {@code delta} in a stream chunk; the other is left out. */
    @Schema(name = "ChatCompletionChoice")
    public record Choice(int index, @JsonInclude(JsonInclude.Include.NON_NULL) Message message,
                         @JsonInclude(JsonInclude.Include.NON_NULL) Message delta, ChatLogprobs logprobs,
                         String finishReason) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    @Schema(name = "ChatCompletionResponseMessage")
    public record Message(String role, String content) {
    }

    /** OpenAI's chat logprobs: one entry per token. */
    @Schema(name = "ChatCompletionLogprobs")
    public record ChatLogprobs(List<TokenEntry> content) {
    }

    @Schema(name = "ChatCompletionTokenLogprob")
    public record TokenEntry(String token, float logprob, int[] bytes, List<TopEntry> topLogprobs) {
    }

    @Schema(name = "ChatCompletionTopLogprob")
    public record TopEntry(String token, float logprob, int[] bytes) {
    }
}
