package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.media.Schema;
/** OpenAI's error envelope. */
@Schema(name = "ErrorResponse")
public record ErrorBody(Detail error) {

    @Schema(name = "Error")
    public record Detail(String message, String type, String param, String code) {
    }

    public static ErrorBody of(String message, String type, String param, String code) {
        return new ErrorBody(new Detail(message, type, param, code));
    }
}
