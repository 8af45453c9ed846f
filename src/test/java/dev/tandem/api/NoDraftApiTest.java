package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;

/** Without a draft model: asking for the draft is a clear 400, never a silent fallback; prompt lookup still works. */
@QuarkusTest
@TestProfile(NoDraftProfile.class)
class NoDraftApiTest {

    @Test
    void askingForTheDraftIsA400() {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"hi\",\"assisted\":true,\"assistant\":\"draft\"}")
                .post("/v1/completions").then().statusCode(400)
                .body("error.param", equalTo("assistant")).body("error.message", containsString("draft"));
    }

    @Test
    void assistedWithoutAnAssistantUsesPromptLookup() {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":8,\"assisted\":true}")
                .post("/v1/completions").then().statusCode(200)
                .body("decoding.mode", equalTo("assisted")).body("decoding.assistant", equalTo("prompt_lookup"));
    }

    @Test
    void theModelListShowsNoDraft() {
        given().get("/v1/models").then().statusCode(200).body("data[0].id", equalTo("kjv-draft"))
                .body("data[0].draft", nullValue());
    }

    @Test
    void ignoreEosRunsToMaxTokens() {
        String base = "{\"prompt\":\"And God said\",\"max_tokens\":100,\"temperature\":0";
        io.restassured.path.json.JsonPath normal = given().contentType(ContentType.JSON).body(base + "}")
                .post("/v1/completions").then().statusCode(200).extract().jsonPath();
        for (String assisted : new String[] {"", ",\"assisted\":true,\"assistant\":\"prompt_lookup\""}) {
            io.restassured.path.json.JsonPath ignoring = given().contentType(ContentType.JSON)
                    .body(base + ",\"ignore_eos\":true" + assisted + "}").post("/v1/completions").then().statusCode(200)
                    .extract().jsonPath();
            org.junit.jupiter.api.Assertions.assertEquals(100, ignoring.getInt("usage.completion_tokens"));
            org.junit.jupiter.api.Assertions.assertEquals("length", ignoring.getString("choices[0].finish_reason"));
            org.junit.jupiter.api.Assertions.assertTrue(ignoring.getString("choices[0].text").startsWith(normal.getString("choices[0].text")),
                    "the text up to EOS is the same");
        }
    }
}
