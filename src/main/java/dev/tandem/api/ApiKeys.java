package dev.tandem.api;

import dev.tandem.serving.TandemConfig;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * Optional API keys, as OpenAI's API has them: with {@code tandem.security.api-keys} set, a request
 * must carry {@code Authorization: Bearer <one of the keys>} or gets a 401 with OpenAI's error JSON
 * (code {@code invalid_api_key}) and {@code WWW-Authenticate: Bearer}. Unset or empty: no check.
 * <p>
 * A route on the Vert.x router rather than a JAX-RS filter, so it covers every path the server has:
 * the API, the OpenAPI document and Swagger UI, anything added later. Only the paths in
 * {@code tandem.security.open-paths} (default: health probes and metrics, which kubelets and Prometheus
 * fetch without a key) and what lies under them stay open, matched on the normalised path so that
 * {@code /q/health/../../v1/models} is not open. Keys are compared through their SHA-256 digests with
 * {@link MessageDigest#isEqual} against every configured key, so the time taken says nothing about
 * how much of a key was right, nor which key matched.
 */
@ApplicationScoped
public class ApiKeys {
    private static final Logger LOG = Logger.getLogger(ApiKeys.class);

    /** After the size limits (no point reading huge headers twice), before any body is read. */
    static final int ORDER = Integer.MIN_VALUE + 20;

    private static final String HOW = "send it in an Authorization header: 'Authorization: Bearer YOUR_KEY'";

    @Inject
    TandemConfig config;

    void install(@Observes Router router) {
        List<byte[]> keys = config.security().apiKeys().orElse(List.of()).stream()
                .map(String::trim).filter(k -> !k.isEmpty()).map(ApiKeys::digest).toList();
        if (keys.isEmpty()) {
            LOG.info("tandem.security.api-keys is not set: the API is open to every client that can reach it");
            return;
        }
        List<String> open = config.security().openPaths().stream().map(String::trim).filter(p -> !p.isEmpty())
                .map(p -> p.endsWith("/") ? p.substring(0, p.length() - 1) : p).toList();
        LOG.infof("API keys required (%d configured); open without a key: %s", keys.size(), open);
        router.route().order(ORDER).handler(ctx -> check(ctx, keys, open));
    }

    private static void check(RoutingContext ctx, List<byte[]> keys, List<String> open) {
        String path = ctx.normalizedPath();
        for (String p : open) {
            if (path.equals(p) || path.startsWith(p + "/")) {
                ctx.next();
                return;
            }
        }
        String key = bearer(ctx.request().getHeader("Authorization"));
        if (key == null) {
            refuse(ctx, "no API key: " + HOW);
        } else if (!matchesAny(key, keys)) {
            refuse(ctx, "the API key is not valid: " + HOW + " with a key this server was configured with");
        } else {
            ctx.next();
        }
    }

    /** The token of a Bearer authorization (scheme case-insensitive), or null if there is none. */
    static String bearer(String authorization) {
        if (authorization == null || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        String token = authorization.substring(7).trim();
        return token.isEmpty() ? null : token;
    }

    /** Constant-time in the key's content: every configured key is compared, digest against digest. */
    static boolean matchesAny(String key, List<byte[]> keyDigests) {
        byte[] presented = digest(key);
        boolean match = false;
        for (byte[] k : keyDigests) {
            match |= MessageDigest.isEqual(presented, k);
        }
        return match;
    }

    static byte[] digest(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {  // every JVM has SHA-256
            throw new IllegalStateException(e);
        }
    }

    private static void refuse(RoutingContext ctx, String message) {
        ctx.response().putHeader("WWW-Authenticate", "Bearer");
        // the body, if any, is left unread: close rather than drain it
        RouteErrors.send(ctx, 401, message, "invalid_request_error", "invalid_api_key", "authentication",
                !ctx.request().isEnded());
    }
}
