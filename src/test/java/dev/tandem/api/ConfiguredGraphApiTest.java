package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code tandem.target.graph} / {@code tandem.draft.graph} choose the graph file of a model directory: here the portable
 * model.onnx for the target on ONNX Runtime (which otherwise runs model_optimized.onnx), the draft left to the engine.
 */
@QuarkusTest
@TestProfile(ConfiguredGraphApiTest.PortableTarget.class)
class ConfiguredGraphApiTest {

    public static class PortableTarget implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("tandem.target.model-dir", "models/kjv-draft", "tandem.target.graph", "model.onnx",
                    "tandem.draft.model-dir", "models/kjv-draft", "tandem.draft.id", "kjv-draft-optimized");
        }
    }

    @Test
    void theConfiguredGraphIsServedAndTheOtherModelKeepsTheEnginesChoice() {
        given().get("/v1/models/kjv-draft").then().statusCode(200)
                .body("graph", equalTo("model.onnx")).body("quantization", equalTo("int8 (MatMulInteger)"));
        given().get("/v1/models/kjv-draft-optimized").then().statusCode(200)
                .body("graph", equalTo("model_optimized.onnx")).body("quantization", equalTo("int8 (MatMulNBits)"));
        // the two graphs, one as the other's draft: greedy assisted output is still the target's own
        String body = "{\"model\":\"kjv-draft\",\"prompt\":\"And God said\",\"max_tokens\":24,\"temperature\":0";
        String plain = given().contentType(ContentType.JSON).body(body + "}").post("/v1/completions").then().statusCode(200)
                .extract().jsonPath().getString("choices[0].text");
        String assisted = given().contentType(ContentType.JSON).body(body + ",\"assisted\":true}").post("/v1/completions")
                .then().statusCode(200).body("decoding.mode", equalTo("assisted")).extract().jsonPath().getString("choices[0].text");
        assertEquals(plain, assisted);
    }
}
