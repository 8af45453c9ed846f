package dev.tandem.serving;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.InvalidLogitsException;
import io.quarkus.test.junit.QuarkusMock;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A generation that fails after its stream has begun (the 200 and some text are out) ends the stream
 * with an error event in the route's format, not with a cut connection: vLLM's {@code data: {"error":
 * ...}} then {@code [DONE]}, TGI's {@code {"error","error_type"}}. The failure here is the model's
 * NaN (an {@link InvalidLogitsException} after the first piece of text).
 */
@QuarkusTest
class MidStreamFailureTest {
    @Inject
    AdmissionControl admission;
    @Inject
    ModelRegistry registry;
    @Inject
    RequestMetrics metrics;
    @Inject
    ExperimentStats experiment;
    @Inject
    TandemConfig config;

    @BeforeEach
    void failAfterTheFirstText() {
        QuarkusMock.installMockForType(new GenerationService(admission, registry, metrics, experiment, config) {
            @Override
            public GenerationResult generate(AdmissionControl.Permit permit, ServedModel model, GenerationRequest request,
                                             DecodingPolicy.Decision decision, GenerationListener listener) {
                try (permit) {
                    listener.onText(" And", List.of());
                    throw new InvalidLogitsException("the model produced a non-finite score (NaN) for token 7, so no"
                            + " token can be chosen");
                }
            }
        }, GenerationService.class);
    }

    @Test
    void openAiStreamsEndWithAnErrorEventThenDone() {
        for (String[] route : new String[][] {
                {"/v1/completions", "{\"prompt\":\"And God said\",\"max_tokens\":8,\"stream\":true}"},
                {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"And\"}],\"max_tokens\":8,\"stream\":true}"}}) {
            String body = given().contentType(ContentType.JSON).body(route[1]).post(route[0]).then().statusCode(200)
                    .extract().asString().trim();
            assertTrue(body.contains("And"), route[0] + ": the text before the failure went out: " + body);
            String[] events = body.split("\n\n");
            assertTrue(events[events.length - 1].equals("data: [DONE]"), route[0] + ": " + body);
            String error = events[events.length - 2];
            assertTrue(error.startsWith("data: {\"error\":{") && error.contains("\"type\":\"server_error\"")
                    && error.contains("non-finite score") && !error.contains("Exception"), route[0] + ": " + body);
        }
    }

    @Test
    void tgiStreamEndsWithItsErrorEvent() {
        String body = given().contentType(ContentType.JSON).body("{\"inputs\":\"And\",\"parameters\":{\"max_new_tokens\":8}}")
                .post("/generate_stream").then().statusCode(200).extract().asString().trim();
        String[] events = body.split("\n\n");
        String last = events[events.length - 1];
        assertTrue(last.startsWith("data: {\"error\":\"") && last.contains("\"error_type\":\"generation\""), body);
    }
}
