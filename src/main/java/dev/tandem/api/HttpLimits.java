package dev.tandem.api;

import dev.tandem.serving.TandemConfig;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * The HTTP layer's limits, enforced on the router before any resource so that every refusal is
 * the same JSON as the API's other errors (OpenAI's format, TGI's on the TGI routes):
 * <ul>
 * <li>a URI over {@code tandem.limits.max-uri-bytes}: 414; headers over {@code max-header-bytes}: 431.
 *     The HTTP codec refuses larger ones before the router sees them, without a body and with no hook
 *     to change that in Quarkus, so its limits (quarkus.http.limits.*) are set a few times higher and
 *     only act as a backstop against headers that would take memory;</li>
 * <li>a body over {@code max-body-bytes}: 413, at once by its Content-Length, and for a chunked body
 *     (no length) as soon as the bytes read pass the limit: the body is read here, by a Vert.x
 *     body handler, and the resources take it from there;</li>
 * <li>a body still arriving {@code body-timeout} after the headers: 408 and the connection closed, for
 *     clients that trickle a byte now and then and so never trip the idle timeout;</li>
 * <li>any other failure on the router (an error in a non-REST route): JSON too.</li>
 * </ul>
 * Clients that stall before their headers are complete are closed by {@code quarkus.http.idle-timeout}.
 * Requests the HTTP codec cannot parse at all (a broken request line or header, an invalid
 * percent-escape in the path, sizes over the backstops) never reach the router: Vert.x answers them
 * 400/414/431 with an empty body, and Quarkus 3.37 offers no hook to replace that answer.
 */
@ApplicationScoped
public class HttpLimits {
    private static final Logger LOG = Logger.getLogger(HttpLimits.class);

    /** Route orders: the size limits first, then API keys ({@link ApiKeys#ORDER}), then the body. */
    static final int ORDER_HEAD = Integer.MIN_VALUE + 10;
    static final int ORDER_BODY = Integer.MIN_VALUE + 30;

    @Inject
    TandemConfig config;

    void install(@Observes Router router) {
        TandemConfig.Limits limits = config.limits();
        router.route().order(Integer.MIN_VALUE).failureHandler(this::failure);
        router.route().order(ORDER_HEAD).handler(ctx -> head(ctx, limits));
        // reads a body of unknown length into memory, failing with 413 (to failure() below) past the
        // limit; no file uploads, so nothing is written to disk
        BodyHandler chunked = BodyHandler.create(false).setBodyLimit(limits.maxBodyBytes());
        router.route().order(ORDER_BODY).handler(ctx -> body(ctx, limits, chunked));
        router.route().order(ORDER_BODY + 1).handler(HttpLimits::emptyChunkedBody);
    }

    /** Marks a request whose body the chunked body handler read. */
    private static final String READ_HERE = "tandem.body-read-here";

    /**
     * A chunked body that turned out empty: Quarkus REST reads an empty body from the connection
     * again (a body of any other length it takes from the routing context), and would wait there until
     * the read timeout, as the body has already been read. Answered here as an empty POST would be.
     */
    private static void emptyChunkedBody(RoutingContext ctx) {
        if (ctx.get(READ_HERE) != null && ctx.body().length() <= 0) {  // -1: no data at all
            RouteErrors.send(ctx, 400, "a JSON request body is required", "invalid_request_error", "missing_body",
                    "validation", false);
        } else {
            ctx.next();
        }
    }

    private static void head(RoutingContext ctx, TandemConfig.Limits limits) {
        HttpServerRequest request = ctx.request();
        if (request.uri().length() > limits.maxUriBytes()) {
            RouteErrors.send(ctx, 414, "the request URI is longer than the limit of " + limits.maxUriBytes() + " bytes",
                    "invalid_request_error", "uri_too_long", "validation", true);
            return;
        }
        long headerBytes = 0;
        for (Map.Entry<String, String> h : request.headers()) {
            headerBytes += h.getKey().length() + h.getValue().length() + 4;  // "name: value\r\n"
        }
        if (headerBytes > limits.maxHeaderBytes()) {
            RouteErrors.send(ctx, 431, "the request headers are larger than the limit of " + limits.maxHeaderBytes()
                    + " bytes", "invalid_request_error", "request_header_fields_too_large", "validation", true);
            return;
        }
        ctx.next();
    }

    private static final java.util.Set<io.vertx.core.http.HttpMethod> BODY_METHODS = java.util.Set.of(
            io.vertx.core.http.HttpMethod.POST, io.vertx.core.http.HttpMethod.PUT, io.vertx.core.http.HttpMethod.PATCH);

    private static void body(RoutingContext ctx, TandemConfig.Limits limits, BodyHandler chunked) {
        String length = ctx.request().getHeader("Content-Length");
        long n;
        try {
            n = length == null ? -1 : Long.parseLong(length.trim());
        } catch (NumberFormatException e) {
            n = -1;
        }
        if (n > limits.maxBodyBytes()) {
            RouteErrors.send(ctx, 413, "request body of " + n + " bytes is over the limit of " + limits.maxBodyBytes()
                    + " bytes", "invalid_request_error", "request_too_large", "validation", true);
            return;
        }
        if (ctx.request().isEnded()) {
            ctx.next();
            return;
        }
        long timeoutMillis = limits.bodyTimeout().toMillis();
        long timer = ctx.vertx().setTimer(timeoutMillis, id -> {
            if (!ctx.request().isEnded() && !ctx.response().ended()) {
                if (ctx.response().headWritten()) {
                    ctx.request().connection().close();
                } else {
                    RouteErrors.send(ctx, 408, "the request body did not arrive within " + timeoutMillis / 1000
                            + " s", "invalid_request_error", "request_timeout", "validation", true);
                }
            }
        });
        ctx.addEndHandler(done -> ctx.vertx().cancelTimer(timer));
        boolean http2Body = ctx.request().version() == io.vertx.core.http.HttpVersion.HTTP_2
                && BODY_METHODS.contains(ctx.request().method());  // DATA frames, no content-length header
        if (length == null && (ctx.request().headers().contains("Transfer-Encoding") || http2Body)) {
            ctx.put(READ_HERE, true);
            chunked.handle(ctx);  // the resources then read the body from the routing context
        } else {
            ctx.next();  // the length is known and within the limit; the codec holds the body to it
        }
    }

    /** A failure on the router itself (not in a resource, which has ErrorMappers): JSON, no internals. */
    private void failure(RoutingContext ctx) {
        if (ctx.response().headWritten()) {  // too late for an error response: end the exchange
            ctx.request().connection().close();
            return;
        }
        int status = ctx.statusCode() >= 400 ? ctx.statusCode() : 500;
        if (status == 413) {
            long limit = config.limits().maxBodyBytes();
            RouteErrors.send(ctx, 413, "request body is over the limit of " + limit + " bytes", "invalid_request_error",
                    "request_too_large", "validation", true);
        } else if (status >= 500) {
            LOG.error("request failed on the router", ctx.failure());
            RouteErrors.send(ctx, status, "internal error", "server_error", "internal_error", "generation", false);
        } else {
            String message = status == 400 ? "the request is malformed" : HttpResponseStatus.valueOf(status).reasonPhrase();
            RouteErrors.send(ctx, status, message, status == 404 ? "not_found_error" : "invalid_request_error", null,
                    "validation", status == 400);
        }
    }
}
