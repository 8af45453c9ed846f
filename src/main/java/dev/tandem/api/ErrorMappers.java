package dev.tandem.api;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Every error leaves the service as OpenAI-style JSON; a client's mistake is never a 500. */
public class ErrorMappers {
    private static final Logger LOG = Logger.getLogger(ErrorMappers.class);

    @org.eclipse.microprofile.config.inject.ConfigProperty(name = "tandem.serving.retry-after-seconds", defaultValue = "1")
    int retryAfterSeconds;

    @jakarta.inject.Inject
    dev.tandem.serving.RequestMetrics metrics;

    @ServerExceptionMapper
    public Response api(ApiException e, io.vertx.core.http.HttpServerRequest request) {
        return render(request, e.status(), ErrorBody.of(e.getMessage(), e.type(), e.param(), e.code()));
    }

    /** The TGI routes answer in TGI's error format, with 422 for invalid input as TGI does. */
    static boolean isTgiRoute(io.vertx.core.http.HttpServerRequest request) {
        String p = request == null ? "" : request.path();
        return p.equals("/generate") || p.equals("/generate_stream") || p.equals("/tokenize") || p.equals("/detokenize");
    }

    Response render(io.vertx.core.http.HttpServerRequest request, int status, ErrorBody body) {
        metrics.failure(status == 429 || status == 503 ? "rejected" : status >= 500 ? "error" : "validation");
        if (!isTgiRoute(request)) {
            return json(status, body);
        }
        String type = switch (status) {
            case 429 -> "overloaded";
            case 503 -> "unavailable";
            case 413 -> "validation";
            default -> status >= 500 ? "generation" : "validation";
        };
        int tgiStatus = status == 400 ? 422 : status;
        return Response.status(tgiStatus).type(MediaType.APPLICATION_JSON)
                .entity(new TgiResponse.Error(body.error().message(), type)).build();
    }

    @ServerExceptionMapper
    public Response rejected(dev.tandem.serving.AdmissionControl.Rejected e, io.vertx.core.http.HttpServerRequest request) {
        if (e.unavailable()) {
            return render(request, 503, ErrorBody.of(e.getMessage(), "server_error", null, "unavailable"));
        }
        if (e.status() == 413) {  // larger than the whole KV-cache budget: retrying cannot help
            return render(request, 413, ErrorBody.of(e.getMessage(), "invalid_request_error", "max_tokens",
                    "kv_cache_budget_exceeded"));
        }
        Response r = render(request, 429, ErrorBody.of(e.getMessage(), "rate_limit_error", null, "server_busy"));
        return Response.fromResponse(r).header("Retry-After", retryAfterSeconds).build();
    }

    /**
     * The model's scores cannot be sampled (NaN or infinity). Request parameters are range-checked so
     * they cannot cause it, so it is the served model's fault: a 500 that says so, not an index error.
     */
    @ServerExceptionMapper
    public Response invalidLogits(dev.tandem.generation.InvalidLogitsException e, io.vertx.core.http.HttpServerRequest request) {
        LOG.error("generation failed: " + e.getMessage());
        return render(request, 500, ErrorBody.of("generation failed: " + e.getMessage()
                + "; this is a fault of the served model, not of the request", "server_error", null, "invalid_model_output"));
    }

    @ServerExceptionMapper(priority = 1)
    public Response malformed(JsonParseException e, io.vertx.core.http.HttpServerRequest request) {
        return render(request, 400, ErrorBody.of("request body is not valid JSON: " + e.getOriginalMessage(),
                "invalid_request_error", null, "invalid_json"));
    }

    /** Wrong JSON types ("5" for an integer, an array for the body); more specific than Quarkus' own mapper. */
    @ServerExceptionMapper(priority = 1)
    public Response mismatched(MismatchedInputException e, io.vertx.core.http.HttpServerRequest request) {
        return mapping(e, request);
    }

    @ServerExceptionMapper(priority = 2)
    public Response mapping(JsonProcessingException e, io.vertx.core.http.HttpServerRequest request) {
        String param = null;
        if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
            param = m.getPath().stream()
                    .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
                    .collect(Collectors.joining("."));
        } else if (e instanceof StreamReadException r && r.getProcessor() instanceof JsonParser p) {
            param = p.getParsingContext().getCurrentName();  // e.g. a number out of range
        }
        String message = param == null
                ? "request body does not match the schema: " + e.getOriginalMessage()
                : "'" + param + "' has the wrong type or value: " + firstLine(e.getOriginalMessage());
        return render(request, 400, ErrorBody.of(message, "invalid_request_error", param, "invalid_type"));
    }

    @ServerExceptionMapper
    public Response web(WebApplicationException e, io.vertx.core.http.HttpServerRequest request) {
        if (e.getCause() instanceof JsonParseException p) {
            return malformed(p, request);
        }
        if (e.getCause() instanceof JsonProcessingException j) {  // body reading wraps some Jackson errors
            return mapping(j, request);
        }
        int status = e.getResponse().getStatus();
        if (status >= 500) {
            LOG.error("request failed", e);
        }
        String type = status == 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
        String message = e.getMessage() == null ? Response.Status.fromStatusCode(status).getReasonPhrase() : e.getMessage();
        return render(request, status, ErrorBody.of(message, type, null, null));
    }

    @ServerExceptionMapper
    public Response unexpected(Exception e, io.vertx.core.http.HttpServerRequest request) {
        LOG.error("request failed", e);
        return render(request, 500, ErrorBody.of("internal error: " + e.getClass().getSimpleName()
                + (e.getMessage() == null ? "" : ": " + e.getMessage()), "server_error", null, "internal_error"));
    }

    private static String firstLine(String s) {
        int nl = s == null ? -1 : s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    static Response json(int status, ErrorBody body) {
        return Response.status(status).type(MediaType.APPLICATION_JSON).entity(body).build();
    }
}
