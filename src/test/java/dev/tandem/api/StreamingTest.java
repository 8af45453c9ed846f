package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.serving.GenerationService;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code stream: true}: Server-Sent Events that add up to the non-streamed completion; a client that leaves stops the work. */
@QuarkusTest
class StreamingTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    GenerationService generation;

    @Inject
    dev.tandem.serving.ModelRegistry registry;

    long engineSteps() {
        dev.tandem.engine.CausalLm lm = registry.target().lm();  // padded where its one-row steps alone differ (AVX2)
        return ((dev.tandem.engine.onnxruntime.OrtCausalLm) (lm instanceof dev.tandem.engine.PaddedSteps p ? p.inner() : lm))
                .steps();
    }

    @TestHTTPResource("/")
    URL base;

    static List<JsonNode> events(String body) throws Exception {
        String raw = given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(200)
                .contentType("text/event-stream").extract().asString();
        List<JsonNode> out = new ArrayList<>();
        String[] blocks = raw.split("\n\n");
        assertEquals("data: [DONE]", blocks[blocks.length - 1].trim(), "the stream ends with [DONE]");
        for (int i = 0; i < blocks.length - 1; i++) {
            assertTrue(blocks[i].startsWith("data: "), blocks[i]);
            out.add(JSON.readTree(blocks[i].substring(6)));
        }
        return out;
    }

    static String text(List<JsonNode> events) {
        StringBuilder b = new StringBuilder();
        for (JsonNode e : events) {
            for (JsonNode c : e.path("choices")) {
                b.append(c.path("text").asText());
            }
        }
        return b.toString();
    }

    @Test
    void streamedTextEqualsTheWholeCompletion() throws Exception {
        for (String extra : new String[] {"", ",\"stop\":[\"LORD\",\"God\"]", ",\"assisted\":true", ",\"echo\":true"}) {
            String body = "{\"prompt\":\"And it came to pass\",\"max_tokens\":40,\"temperature\":0" + extra;
            String whole = given().contentType(ContentType.JSON).body(body + "}").post("/v1/completions")
                    .then().statusCode(200).extract().jsonPath().getString("choices[0].text");
            List<JsonNode> events = events(body + ",\"stream\":true}");
            assertEquals(whole, text(events), "for " + extra);
            assertTrue(events.size() > 3, "several chunks, not one");
            JsonNode last = events.get(events.size() - 1);
            assertNotNull(last.path("choices").get(0).path("finish_reason").textValue(), "the last chunk says why it ended");
            assertFalse(last.path("decoding").isMissingNode() || last.path("decoding").isNull());
            for (int i = 0; i < events.size() - 1; i++) {
                assertTrue(events.get(i).path("choices").get(0).path("finish_reason").isNull());
                for (String stop : new String[] {"LORD", "God"}) {
                    if (!extra.isEmpty() && extra.contains("stop")) {
                        assertFalse(text(events).contains(stop), "a stop string is never streamed");
                    }
                }
            }
        }
    }

    @Test
    void usageComesLastWhenAskedFor() throws Exception {
        List<JsonNode> events = events("{\"prompt\":\"In the beginning\",\"max_tokens\":10,\"temperature\":0,\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}");
        JsonNode usage = events.get(events.size() - 1);
        assertEquals(0, usage.path("choices").size());
        assertEquals(10, usage.path("usage").path("completion_tokens").asInt());
        assertEquals(usage.path("usage").path("prompt_tokens").asInt() + 10, usage.path("usage").path("total_tokens").asInt());
        assertTrue(events.get(0).path("usage").isNull() || events.get(0).path("usage").isMissingNode());
    }

    @Test
    void streamedLogprobsCoverEveryToken() throws Exception {
        List<JsonNode> events = events("{\"prompt\":\"In the beginning\",\"max_tokens\":12,\"temperature\":0,\"stream\":true,\"logprobs\":2}");
        int tokens = 0;
        for (JsonNode e : events) {
            JsonNode lp = e.path("choices").get(0).path("logprobs");
            if (!lp.isNull() && !lp.isMissingNode()) {
                tokens += lp.path("tokens").size();
                for (JsonNode v : lp.path("token_logprobs")) {
                    assertTrue(v.asDouble() <= 0);
                }
            }
        }
        assertEquals(12, tokens);
    }

    @Test
    void streamedTextOffsetsAreTheWholeResponsesOffsets() throws Exception {
        String body = "{\"prompt\":\"In the beginning\",\"max_tokens\":12,\"temperature\":0,\"logprobs\":0,\"ignore_eos\":true";
        List<Integer> whole = given().contentType(ContentType.JSON).body(body + "}").post("/v1/completions").then()
                .statusCode(200).extract().jsonPath().getList("choices[0].logprobs.text_offset");
        List<Integer> streamed = new java.util.ArrayList<>();
        for (JsonNode e : events(body + ",\"stream\":true}")) {
            for (JsonNode o : e.path("choices").get(0).path("logprobs").path("text_offset")) {
                streamed.add(o.asInt());
            }
        }
        assertEquals(whole, streamed, "each token's offset into prompt + completion, as in the non-streamed response");
    }

    @Test
    void streamOptionsWithoutStreamIsRefused() {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}")
                .post("/v1/completions").then().statusCode(400);
    }

    /** Sends a completion request over a raw socket (so the test can read event by event, or walk away). */
    static BufferedReader post(Socket socket, String body) throws java.io.IOException {
        OutputStream out = socket.getOutputStream();
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body)
                .getBytes(StandardCharsets.UTF_8));
        out.flush();
        return new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
    }

    @Test
    void eventsArriveWhileTheModelIsStillGenerating() throws Exception {
        long before = engineSteps();
        long atFirstEvent = -1;
        String body = "{\"prompt\":\"And it came to pass\",\"max_tokens\":240,\"temperature\":0,\"ignore_eos\":true,\"stream\":true}";
        try (Socket socket = new Socket(base.getHost(), base.getPort())) {
            BufferedReader in = post(socket, body);
            String line;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("data: ") && atFirstEvent < 0) {
                    atFirstEvent = engineSteps() - before;
                }
                if (line.startsWith("data: [DONE]")) {
                    break;
                }
            }
        }
        long total = engineSteps() - before;
        assertTrue(total >= 240, "one prefill and 239 decode steps: " + total);
        assertTrue(atFirstEvent < total / 2, "the first event came after " + atFirstEvent + " of " + total + " steps");
    }

    @Test
    void aClientThatDisconnectsStopsItsGeneration() throws Exception {
        long cancelledBefore = generation.cancelled();
        long stepsBefore = engineSteps();
        String body = "{\"prompt\":\"And it came to pass\",\"max_tokens\":240,\"temperature\":0,\"ignore_eos\":true,\"stream\":true}";
        try (Socket socket = new Socket(base.getHost(), base.getPort())) {
            BufferedReader in = post(socket, body);
            String line;
            while ((line = in.readLine()) != null && !line.startsWith("data: ")) {
                // headers and chunk sizes
            }
            assertNotNull(line, "a first event arrived");
        }  // the client leaves after the first token
        long deadline = System.currentTimeMillis() + 5000;
        while ((generation.cancelled() == cancelledBefore || generation.admission().running() > 0)
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(cancelledBefore + 1, generation.cancelled(), "the generation was stopped, not run to 240 tokens");
        assertEquals(0, generation.admission().running(), "its decoding slot was released");
        long stepsAfterCancel = engineSteps();
        Thread.sleep(200);
        assertEquals(stepsAfterCancel, engineSteps(), "the engine's step counter has stopped");
        assertTrue(stepsAfterCancel - stepsBefore < 240, "stopped early: " + (stepsAfterCancel - stepsBefore) + " steps");
    }

    @Test
    void nonStreamedResponsesHaveNoStreamFields() {
        var r = given().contentType(ContentType.JSON).body("{\"prompt\":\"x\",\"max_tokens\":2}").post("/v1/completions")
                .then().statusCode(200).contentType(ContentType.JSON).extract().jsonPath();
        assertNull(r.get("choices[0].logprobs"));
    }
}
