package dev.tandem.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.RoutingContext;

/**
 * Error responses written by the Vert.x routes that run before any resource (API keys, size limits,
 * slow clients, router failures), in the same JSON as {@link ErrorMappers}: OpenAI's format, or TGI's
 * on the TGI routes. Messages are fixed texts: never a class name, a library setting or request content.
 */
final class RouteErrors {
    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    private RouteErrors() {
    }

    /**
     * Ends the exchange with {@code status} and the error as JSON.
     *
     * @param tgiType TGI's error_type for the same error on the TGI routes
     * @param close   close the connection once the response is written: for a request whose body
     *                is left unread (too large, too slow), so the connection cannot be reused
     */
    static void send(RoutingContext ctx, int status, String message, String type, String code, String tgiType,
                     boolean close) {
        Object body = ErrorMappers.isTgiRoute(ctx.request())
                ? new TgiResponse.Error(message, tgiType)
                : ErrorBody.of(message, type, null, code);
        String json;
        try {
            json = JSON.writeValueAsString(body);
        } catch (JsonProcessingException e) {  // two records of strings: cannot happen
            throw new IllegalStateException(e);
        }
        var response = ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json");
        if (ctx.request().version() == io.vertx.core.http.HttpVersion.HTTP_2) {
            // one stream of a shared connection: end it (its unread body is reset with it), keep the connection
            response.end(json).onComplete(done -> {
                if (!ctx.request().isEnded()) {
                    ctx.response().reset();
                }
            });
            return;
        }
        if (!close) {
            response.end(json);
            return;
        }
        response.putHeader("Connection", "close");
        HttpServerRequest request = ctx.request();
        if (!request.isEnded()) {
            // read and drop what the client is still sending: a client blocked on a full socket
            // buffer, or reset by a close while it sends, would never read this answer
            request.handler(ignored -> {
            });
            request.resume();
        }
        response.end(json).onComplete(done -> ctx.vertx().setTimer(LINGER_MILLIS, id -> request.connection().close()));
    }

    /** How long a connection to be closed stays open after the error response, for the client to read it. */
    static final long LINGER_MILLIS = 2000;
}
