package dev.tandem.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.path.json.JsonPath;
import java.io.IOException;
import java.net.URL;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Slow clients (slowloris) lose their connection within the configured bounds: one that stops
 * sending half-way through its headers is closed by the idle timeout; one that trickles its body
 * (a byte now and then, so the connection is never idle) by the body timeout, with a JSON 408.
 * The bounds are 2 s here so the test is quick; the service's own values are in application.properties.
 */
@QuarkusTest
@TestProfile(SlowClientTest.ShortTimeouts.class)
class SlowClientTest {
    public static class ShortTimeouts implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("quarkus.http.idle-timeout", "2s", "tandem.limits.body-timeout", "2s",
                    // the small bundled model, without a draft: a quick start
                    "tandem.target.model-dir", "models/kjv-draft", "tandem.draft.enabled", "false");
        }
    }

    @TestHTTPResource("/")
    URL server;

    @Test
    void stalledHeadersAreClosedByTheIdleTimeout() throws IOException {
        try (RawHttp http = new RawHttp(server, 15_000)) {
            long start = System.nanoTime();
            http.send("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: app");
            long millis = http.millisUntilClosed(start);
            assertTrue(millis < 6_000, "closed after " + millis + " ms");
        }
    }

    @Test
    void tricklingBodyIsClosedByTheBodyTimeoutWithJson408() throws Exception {
        try (RawHttp http = new RawHttp(server, 15_000)) {
            long start = System.nanoTime();
            http.send("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      + "Content-Length: 100\r\n\r\n{");
            // one byte every 300 ms keeps the connection busy (no idle timeout) but would take 30 s
            Thread trickle = Thread.ofVirtual().start(() -> {
                try {
                    for (int i = 0; i < 99; i++) {
                        Thread.sleep(300);
                        http.send(" ");
                    }
                } catch (IOException | InterruptedException closed) {
                    // the server closed the connection: what the test waits for
                }
            });
            RawHttp.Response r = http.read();
            long millis = (System.nanoTime() - start) / 1_000_000;
            trickle.interrupt();
            assertEquals(408, r.status(), r.body());
            assertTrue(r.header("content-type").startsWith("application/json"), r.header("content-type"));
            assertEquals("request_timeout", JsonPath.from(r.body()).getString("error.code"));
            assertTrue(millis < 6_000, "answered after " + millis + " ms");
            long closed = http.millisUntilClosed(start);
            assertTrue(closed < 8_000, "closed after " + closed + " ms");
        }
    }

    @Test
    void bodyThatNeverComesIsClosed() throws IOException {
        try (RawHttp http = new RawHttp(server, 15_000)) {
            long start = System.nanoTime();
            http.send("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      + "Content-Length: 100\r\n\r\n{\"prompt\":");
            long millis = http.millisUntilClosed(start);
            assertTrue(millis < 6_000, "closed after " + millis + " ms");
        }
    }
}
