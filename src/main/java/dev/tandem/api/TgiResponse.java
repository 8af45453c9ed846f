package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.media.Schema;
import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/** Text Generation Inference's response shapes. */
public final class TgiResponse {
    private TgiResponse() {
    }

    /** {@code POST /generate}. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    @Schema(name = "GenerateResponse")
    public record Generated(String generatedText, Details details, Decoding decoding) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Details(String finishReason, int generatedTokens, Long seed, List<PrefillToken> prefill,
                          List<Token> tokens, List<List<Token>> topTokens) {
    }

    public record PrefillToken(int id, String text, Float logprob) {
    }

    public record Token(int id, String text, Float logprob, boolean special) {
    }

    /** One {@code POST /generate_stream} event; the last carries the whole text and the details. */
    @Schema(name = "StreamResponse")
    public record StreamEvent(int index, Token token, List<Token> topTokens, String generatedText, Details details,
                              Decoding decoding) {
    }

    /** One entry of {@code POST /tokenize}. */
    public record TokenSpan(int id, String text, int start, int stop) {
    }

    /** {@code POST /detokenize}. */
    public record Detokenized(String text) {
    }

    /** TGI's error body. */
    @Schema(name = "TgiErrorResponse")
    public record Error(String error, String errorType) {
    }
}
