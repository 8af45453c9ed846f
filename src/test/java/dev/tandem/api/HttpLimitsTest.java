package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.path.json.JsonPath;
import java.io.IOException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

/**
 * The HTTP layer's limits answer in JSON whatever the transfer encoding: a chunked body over
 * tandem.limits.max-body-bytes (1 MiB), headers over tandem.limits.max-header-bytes, a URI over
 * tandem.limits.max-uri-bytes. Sent over a raw socket, as no HTTP client sends these on request.
 */
@QuarkusTest
class HttpLimitsTest {
    @TestHTTPResource("/")
    URL server;

    static final String COMPLETIONS_CHUNKED = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\n"
            + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

    static String chunk(String data) {
        return Integer.toHexString(data.getBytes(StandardCharsets.US_ASCII).length) + "\r\n" + data + "\r\n";
    }

    /**
     * HTTP/2 (cleartext, prior knowledge: Vert.x serves it by default) frames the body in DATA
     * frames with neither Content-Length nor Transfer-Encoding; the limit must hold there too.
     */
    @Test
    void http2BodyWithoutALengthOverTheLimitIs413Json() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            io.vertx.core.http.HttpClient client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                    .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
            String body = "{\"prompt\":\"" + "a".repeat(1024 * 1024 + 1024) + "\",\"max_tokens\":1}";
            var answer = client.request(io.vertx.core.http.HttpMethod.POST, server.getPort(), server.getHost(), "/v1/completions")
                    .compose(req -> {
                        req.putHeader("Content-Type", "application/json").setChunked(true);  // HTTP/2: no length sent
                        req.write(body);
                        req.end();
                        return req.response().compose(resp -> resp.body().map(b -> new String[] {
                                String.valueOf(resp.statusCode()), String.valueOf(resp.version()),
                                String.valueOf(resp.getHeader("content-type")), b.toString()}));
                    }).toCompletionStage().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals("HTTP_2", answer[1]);
            assertEquals("413", answer[0], answer[3]);
            assertTrue(answer[2].startsWith("application/json"), answer[2]);
            assertEquals("request_too_large", JsonPath.from(answer[3]).getString("error.code"));
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void chunkedBodyOverTheLimitIs413Json() throws IOException {
        try (RawHttp http = new RawHttp(server, 20_000)) {
            http.send(COMPLETIONS_CHUNKED).send(chunk("{\"prompt\":\""));
            String piece = "a".repeat(64 * 1024);
            for (int sent = 0; sent < 1024 * 1024 + 64 * 1024; sent += piece.length()) {
                try {
                    http.send(chunk(piece));
                } catch (IOException closedByServer) {
                    break;  // the server may answer and close before the whole body is sent
                }
            }
            try {
                http.send(chunk("\"}") + "0\r\n\r\n");
            } catch (IOException closedByServer) {
                // as above
            }
            RawHttp.Response r = http.read();
            assertEquals(413, r.status(), r.body());
            assertTrue(r.header("content-type").startsWith("application/json"), r.header("content-type"));
            JsonPath json = JsonPath.from(r.body());
            assertEquals("request_too_large", json.getString("error.code"));
            assertEquals("invalid_request_error", json.getString("error.type"));
        }
    }

    @Test
    void chunkedBodyUnderTheLimitIsServed() throws IOException {
        try (RawHttp http = new RawHttp(server, 20_000)) {
            http.send(COMPLETIONS_CHUNKED + chunk("{\"prompt\":\"In the\",") + chunk("\"max_tokens\":2}") + "0\r\n\r\n");
            RawHttp.Response r = http.read();
            assertEquals(200, r.status(), r.body());
            assertEquals("text_completion", JsonPath.from(r.body()).getString("object"));
        }
    }

    @Test
    void emptyChunkedBodyIs400Json() throws IOException {
        try (RawHttp http = new RawHttp(server, 20_000)) {
            http.send(COMPLETIONS_CHUNKED + "0\r\n\r\n");
            RawHttp.Response r = http.read();
            assertEquals(400, r.status(), r.body());
            assertEquals("invalid_request_error", JsonPath.from(r.body()).getString("error.type"));
        }
    }

    @Test
    void chunkedBodyOverTheLimitOnTgiRouteIsTgiJson() throws IOException {
        try (RawHttp http = new RawHttp(server, 20_000)) {
            http.send(COMPLETIONS_CHUNKED.replace("/v1/completions", "/generate"));
            String piece = "a".repeat(64 * 1024);
            try {
                for (int sent = 0; sent < 1024 * 1024 + 64 * 1024; sent += piece.length()) {
                    http.send(chunk(piece));
                }
                http.send("0\r\n\r\n");
            } catch (IOException closedByServer) {
                // the server may answer and close before the whole body is sent
            }
            RawHttp.Response r = http.read();
            assertEquals(413, r.status(), r.body());
            assertEquals("validation", JsonPath.from(r.body()).getString("error_type"));
        }
    }

    @Test
    void headersOverTheLimitAre431Json() throws IOException {
        try (RawHttp http = new RawHttp(server, 20_000)) {
            http.send("GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: " + "b".repeat(32 * 1024) + "\r\n\r\n");
            RawHttp.Response r = http.read();
            assertEquals(431, r.status(), r.body());
            assertTrue(r.header("content-type").startsWith("application/json"), r.header("content-type"));
            assertEquals("request_header_fields_too_large", JsonPath.from(r.body()).getString("error.code"));
        }
    }

    @Test
    void uriOverTheLimitIs414Json() throws IOException {
        try (RawHttp http = new RawHttp(server, 20_000)) {
            http.send("GET /v1/models?q=" + "u".repeat(8 * 1024) + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
            RawHttp.Response r = http.read();
            assertEquals(414, r.status(), r.body());
            assertTrue(r.header("content-type").startsWith("application/json"), r.header("content-type"));
            assertEquals("uri_too_long", JsonPath.from(r.body()).getString("error.code"));
        }
    }

    /**
     * The service closes connections that stay silent, such as a client that stops half-way through
     * its headers (SlowClientTest shows the close); Quarkus' own default would keep them 30 minutes.
     */
    @Test
    void idleTimeoutIsBounded() {
        Duration idle = ConfigProvider.getConfig().getValue("quarkus.http.idle-timeout", Duration.class);
        assertTrue(idle.compareTo(Duration.ofMinutes(10)) <= 0, "quarkus.http.idle-timeout=" + idle);  // Quarkus' default: 30 min
    }

    /** Swagger UI is packaged but off unless quarkus.swagger-ui.enabled=true; the OpenAPI document stays. */
    @Test
    void swaggerUiIsOffByDefault() {
        given().get("/q/swagger-ui/").then().statusCode(404);
        given().get("/q/openapi").then().statusCode(200);
    }
}
