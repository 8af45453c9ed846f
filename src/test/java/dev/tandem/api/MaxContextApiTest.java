package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code tandem.target.max-context=100}: the bundled target (built for 1024 tokens) served at 100, as vLLM's
 * {@code --max-model-len}: {@code /v1/models} reports 100, the memory plan counts a sequence's cache at 100 positions
 * (its slot-pool row: 128 columns instead of 1024), a request that asks for more is refused with the context error, and
 * one that fits runs (plain and assisted, the draft at its own 1024).
 */
@QuarkusTest
@TestProfile(MaxContextApiTest.Short.class)
class MaxContextApiTest {

    public static class Short implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("tandem.target.max-context", "100");
        }
    }

    @Test
    void theModelIsServedAtTheConfiguredContext() {
        JsonPath m = given().get("/v1/models/kjv-target").then().statusCode(200).body("max_model_len", equalTo(100))
                .extract().jsonPath();
        assertEquals(100, m.getInt("memory.kv_cache.context_tokens"));
        long perToken = m.getLong("memory.kv_cache.bytes_per_token");
        assertEquals(128 * perToken, m.getLong("memory.kv_cache.allocated_kv_buffer_bytes"),
                "a slot-pool row of 128 positions (100 rounded up to 64), not 1024");
        given().get("/v1/models").then().statusCode(200).body("data.find { it.id == 'kjv-target' }.max_model_len", equalTo(100));
    }

    @Test
    void aRequestBeyondItIsRefusedAndOneWithinItRuns() {
        String prompt = "{\"model\":\"kjv-target\",\"prompt\":\"And God said unto Moses\",\"temperature\":0";
        given().contentType(ContentType.JSON).body(prompt + ",\"max_tokens\":95}").post("/v1/completions").then()
                .statusCode(400).body("error.code", equalTo("context_length_exceeded"))
                .body("error.message", containsString("maximum context length is 100 tokens"));
        for (String assisted : new String[] {"false", "true"}) {
            JsonPath r = given().contentType(ContentType.JSON).body(prompt + ",\"max_tokens\":80,\"ignore_eos\":true,\"assisted\":"
                    + assisted + "}").post("/v1/completions").then().statusCode(200).extract().jsonPath();
            assertEquals(80, r.getInt("usage.completion_tokens"), "assisted=" + assisted);
        }
    }
}
