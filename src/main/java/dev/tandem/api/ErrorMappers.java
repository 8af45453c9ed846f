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

    @ServerExceptionMapper
    public Response api(ApiException e) {
        return json(e.status(), ErrorBody.of(e.getMessage(), e.type(), e.param(), e.code()));
    }

    @ServerExceptionMapper
    public Response rejected(dev.tandem.serving.AdmissionControl.Rejected e) {
        if (e.unavailable()) {
            return json(503, ErrorBody.of(e.getMessage(), "server_error", null, "unavailable"));
        }
        return Response.status(429).type(MediaType.APPLICATION_JSON).header("Retry-After", retryAfterSeconds)
                .entity(ErrorBody.of(e.getMessage(), "rate_limit_error", null, "server_busy")).build();
    }

    @ServerExceptionMapper(priority = 1)
    public Response malformed(JsonParseException e) {
        return json(400, ErrorBody.of("request body is not valid JSON: " + e.getOriginalMessage(),
                "invalid_request_error", null, "invalid_json"));
    }

    /** Wrong JSON types ("5" for an integer, an array for the body); more specific than Quarkus' own mapper. */
    @ServerExceptionMapper(priority = 1)
    public Response mismatched(MismatchedInputException e) {
        return mapping(e);
    }

    @ServerExceptionMapper(priority = 2)
    public Response mapping(JsonProcessingException e) {
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
        return json(400, ErrorBody.of(message, "invalid_request_error", param, "invalid_type"));
    }

    @ServerExceptionMapper
    public Response web(WebApplicationException e) {
        if (e.getCause() instanceof JsonParseException p) {
            return malformed(p);
        }
        if (e.getCause() instanceof JsonProcessingException j) {  // body reading wraps some Jackson errors
            return mapping(j);
        }
        int status = e.getResponse().getStatus();
        if (status >= 500) {
            LOG.error("request failed", e);
        }
        String type = status == 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
        String message = e.getMessage() == null ? Response.Status.fromStatusCode(status).getReasonPhrase() : e.getMessage();
        return json(status, ErrorBody.of(message, type, null, null));
    }

    @ServerExceptionMapper
    public Response unexpected(Exception e) {
        LOG.error("request failed", e);
        return json(500, ErrorBody.of("internal error: " + e.getClass().getSimpleName()
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
