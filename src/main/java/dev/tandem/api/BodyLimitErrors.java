package dev.tandem.api;

import io.vertx.ext.web.Router;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * Refuses a request body over {@code tandem.limits.max-body-bytes} (by its Content-Length) before
 * it is read, with the same JSON error body as every other refusal (OpenAI's format, or TGI's on
 * the TGI routes). {@code quarkus.http.limits.max-body-size} stays above it as a backstop for
 * bodies sent without a length; the HTTP layer answers those with a bare 413.
 */
@ApplicationScoped
public class BodyLimitErrors {
    @ConfigProperty(name = "tandem.limits.max-body-bytes", defaultValue = "1048576")
    long maxBodyBytes;

    void install(@Observes Router router) {
        router.route().order(Integer.MIN_VALUE).handler(ctx -> {
            String length = ctx.request().getHeader("Content-Length");
            long n;
            try {
                n = length == null ? -1 : Long.parseLong(length.trim());
            } catch (NumberFormatException e) {
                n = -1;
            }
            if (n <= maxBodyBytes) {
                ctx.next();
                return;
            }
            String message = "request body of " + n + " bytes is over the limit of " + maxBodyBytes + " bytes";
            String body = ErrorMappers.isTgiRoute(ctx.request())
                    ? "{\"error\":\"" + message + "\",\"error_type\":\"validation\"}"
                    : "{\"error\":{\"message\":\"" + message + "\",\"type\":\"invalid_request_error\",\"param\":null,"
                      + "\"code\":\"request_too_large\"}}";
            ctx.response().setStatusCode(413).putHeader("Content-Type", "application/json").putHeader("Connection", "close")
                    .end(body);
        });
    }
}
