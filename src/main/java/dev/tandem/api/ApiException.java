package dev.tandem.api;

/**
 * A request the service refuses, with what the client needs to fix it; rendered as OpenAI's
 * error JSON {@code {"error":{"message","type","param","code"}}}.
 */
public class ApiException extends RuntimeException {
    private final int status;
    private final String type;
    private final String param;
    private final String code;
    /** Answer in OpenAI's format even on a TGI path: vLLM's bodies on the paths TGI and vLLM share. */
    private final boolean openAiShape;

    public ApiException(int status, String type, String param, String code, String message) {
        this(status, type, param, code, message, false);
    }

    private ApiException(int status, String type, String param, String code, String message, boolean openAiShape) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.openAiShape = openAiShape;
    }

    /**
     * This error in OpenAI's format (status 400 stays 400) wherever it is raised: {@code /tokenize} and
     * {@code /detokenize} are TGI's paths and vLLM's, and a client that sent vLLM's body reads vLLM's errors.
     */
    public ApiException inOpenAiShape() {
        return new ApiException(status, type, param, code, getMessage(), true);
    }

    public boolean openAiShape() {
        return openAiShape;
    }

    /** 400 for a parameter with a bad value. */
    public static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, "invalid_value", message);
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String param() {
        return param;
    }

    public String code() {
        return code;
    }
}
