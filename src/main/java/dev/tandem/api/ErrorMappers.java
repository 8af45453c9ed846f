package dev.tandem.api;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
        return render(isTgiRoute(request) && !e.openAiShape(), e.status(), ErrorBody.of(e.getMessage(), e.type(),
                e.param(), e.code()));
    }

    /** The TGI routes answer in TGI's error format, with 422 for invalid input as TGI does. */
    static boolean isTgiRoute(io.vertx.core.http.HttpServerRequest request) {
        String p = request == null ? "" : request.path();
        return p.equals("/generate") || p.equals("/generate_stream") || p.equals("/tokenize") || p.equals("/detokenize")
                || p.equals("/chat_tokenize");
    }

    Response render(io.vertx.core.http.HttpServerRequest request, int status, ErrorBody body) {
        return render(isTgiRoute(request), status, body);
    }

    private Response render(boolean tgi, int status, ErrorBody body) {
        metrics.failure(status == 429 || status == 503 ? "rejected" : status >= 500 ? "error" : "validation");
        if (!tgi) {
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

    /**
     * Where the JSON broke and what the parser found there, without the parser's hints about its own
     * settings (Jackson appends "(JSON `StreamReadFeature...` not enabled)"-style text).
     */
    @ServerExceptionMapper(priority = 1)
    public Response malformed(JsonParseException e, io.vertx.core.http.HttpServerRequest request) {
        var at = e.getLocation();
        String where = at == null || at.getLineNr() < 1 ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        String what = withoutParserSettings(firstLine(e.getOriginalMessage()));
        return render(request, 400, ErrorBody.of("request body is not valid JSON" + where + (what.isEmpty() ? "" : ": " + what),
                "invalid_request_error", null, "invalid_json"));
    }

    private static final Pattern PARSER_SETTING = Pattern.compile("`|\\benable\\b|[A-Z][A-Za-z]+Feature\\b");

    /**
     * The parser's message up to any mention of its settings: Jackson ends some messages with
     * "(JSON `StreamReadFeature...` not enabled)" or ": enable `JsonReadFeature...` to allow".
     */
    static String withoutParserSettings(String message) {
        if (message == null) {
            return "";
        }
        Matcher m = PARSER_SETTING.matcher(message);
        if (!m.find()) {
            return message.trim();
        }
        int cut = m.start();
        int clause = Math.max(message.lastIndexOf('(', cut), Math.max(message.lastIndexOf(':', cut),
                message.lastIndexOf(';', cut)));
        return message.substring(0, clause >= 0 ? clause : cut).trim();
    }

    /** Wrong JSON types ("5" for an integer, an array for the body); more specific than Quarkus' own mapper. */
    @ServerExceptionMapper(priority = 1)
    public Response mismatched(MismatchedInputException e, io.vertx.core.http.HttpServerRequest request) {
        return mapping(e, request);
    }

    @ServerExceptionMapper(priority = 2)
    public Response mapping(JsonProcessingException e, io.vertx.core.http.HttpServerRequest request) {
        return api(invalidJson(e), request);
    }

    /** A body that does not map onto a request: a 400 naming the field (as the resources name fields) and what to send. */
    static ApiException invalidJson(JsonProcessingException e) {
        String param = null;
        if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
            StringBuilder b = new StringBuilder();  // messages[0].content, as the resources name fields
            for (JsonMappingException.Reference r : m.getPath()) {
                b.append(r.getFieldName() != null ? (b.isEmpty() ? "" : ".") + r.getFieldName() : "[" + r.getIndex() + "]");
            }
            param = b.toString();
        } else if (e instanceof StreamReadException r && r.getProcessor() instanceof JsonParser p) {
            param = p.getParsingContext().getCurrentName();  // e.g. a number out of range
        }
        String message = (param == null ? "request body" : "'" + param + "'") + " " + problem(e);
        return new ApiException(400, "invalid_request_error", param, "invalid_type", message);
    }

    /**
     * What is wrong, in the API's words: Jackson's own messages name Java types ({@code java.lang.Integer},
     * the request records), which are internals a client cannot act on.
     */
    static String problem(JsonProcessingException e) {
        Throwable cause = e;  // Jackson wraps a parser's error in a mapping error carrying the field's path
        while (cause.getCause() instanceof JsonProcessingException inner && inner != cause) {
            cause = inner;
        }
        if (cause instanceof InputCoercionException c) {  // a number too large for its field: Jackson's text is plain
            return "is out of range: " + withoutParserSettings(firstLine(c.getOriginalMessage()));
        }
        if (cause instanceof StreamConstraintsException) {
            return "is over a JSON parsing limit (nesting depth, or length of a number, string or name)";
        }
        if (cause instanceof JsonParseException p) {  // bad JSON inside a field's value, e.g. a duplicate name
            return "is not valid JSON: " + withoutParserSettings(firstLine(p.getOriginalMessage()));
        }
        if (e instanceof MismatchedInputException m && m.getTargetType() != null) {
            // what Jackson found is only in its message: "from Array value", "Cannot coerce String value ("5")"
            Matcher found = FOUND.matcher(String.valueOf(m.getOriginalMessage()));
            String got = found.find() ? jsonKind(found.group(1)) : null;
            return "must be " + expected(m.getTargetType()) + (got == null ? "" : ", got " + got);
        }
        return "has the wrong type or value";
    }

    private static final Pattern FOUND = Pattern.compile("\\b(String|Integer|Floating-point|Array|Object|Boolean|Null) value\\b");

    /** The JSON kind a client must send for a Java type. */
    private static String expected(Class<?> type) {
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "an integer";
        }
        if (type == Double.class || type == double.class || type == Float.class || type == float.class) {
            return "a number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == String.class) {
            return "a string";
        }
        if (type.isArray() || java.util.Collection.class.isAssignableFrom(type)) {
            return "an array";
        }
        return "an object";
    }

    private static String jsonKind(String token) {
        return switch (token) {
            case "Object" -> "an object";
            case "Array" -> "an array";
            case "String" -> "a string";
            case "Integer" -> "an integer";
            case "Floating-point" -> "a number with a fraction or exponent";
            case "Boolean" -> "a boolean";
            case "Null" -> "null";
            default -> null;
        };
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
        if (clientWentAway(e)) {  // the client closed the connection while its body was read: nothing to answer
            LOG.debugf("client closed the connection: %s", e.getMessage());
        } else {
            LOG.error("request failed", e);  // the details are for the log, not for the client
        }
        return render(request, 500, ErrorBody.of("internal error", "server_error", null, "internal_error"));
    }

    private static boolean clientWentAway(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof io.vertx.core.http.HttpClosedException || t instanceof java.nio.channels.ClosedChannelException) {
                return true;
            }
        }
        return false;
    }

    private static String firstLine(String s) {
        int nl = s == null ? -1 : s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    static Response json(int status, ErrorBody body) {
        return Response.status(status).type(MediaType.APPLICATION_JSON).entity(body).build();
    }
}
