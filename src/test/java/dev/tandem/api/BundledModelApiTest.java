package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.serving.ModelRegistry;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

/** The default configuration serves the bundled pair: the service works, assisted, with zero downloads. */
@QuarkusTest
class BundledModelApiTest {
    @Inject
    ModelRegistry registry;

    @Test
    void servesTheBundledModelByDefault() {
        assertTrue(registry.target().directory().dir().toString().contains("models"), registry.target().directory().dir().toString());
        String body = "{\"prompt\":\"And God said\",\"max_tokens\":24,\"temperature\":0}";
        JsonPath a = given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(200).extract().jsonPath();
        JsonPath b = given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(200).extract().jsonPath();
        String text = a.getString("choices[0].text");
        assertEquals(text, b.getString("choices[0].text"), "greedy is deterministic");
        assertTrue(text.startsWith(" ") && text.trim().split("\\s+").length >= 5, "English words follow the prompt: " + text);
        assertEquals(registry.target().id(), a.getString("model"));
    }

    @Test
    void servesTheBundledTargetWithTheBundledDraft() {
        given().get("/v1/models").then().statusCode(200)
                .body("data[0].id", org.hamcrest.Matchers.equalTo("kjv-target"))
                .body("data[0].draft", org.hamcrest.Matchers.equalTo("kjv-draft"))
                .body("data[0].quantization", org.hamcrest.Matchers.equalTo(registry.target().directory().quantization()));
        // held-out scripture (Ruth 1:16): greedy assisted decoding gives plain decoding's text, and the draft helps
        String plain = "{\"prompt\":\"And Ruth said, Intreat me not to leave thee,\",\"max_tokens\":40,\"temperature\":0}";
        // num_assistant_tokens fixes k: the auto policy alone may judge candidates not worth it on a busy machine
        // (its start-up profile prices them), and this test is about the pair, not about that judgement
        String assisted = plain.replace("}", ",\"assisted\":true,\"assistant\":\"draft\",\"num_assistant_tokens\":4}");
        JsonPath p = given().contentType(ContentType.JSON).body(plain).post("/v1/completions").then().statusCode(200).extract().jsonPath();
        JsonPath a = given().contentType(ContentType.JSON).body(assisted).post("/v1/completions").then().statusCode(200).extract().jsonPath();
        assertEquals(p.getString("choices[0].text"), a.getString("choices[0].text"));
        assertEquals("plain", p.getString("decoding.mode"));
        assertEquals("assisted", a.getString("decoding.mode"));
        assertEquals("draft", a.getString("decoding.assistant"));
        assertTrue(a.getInt("decoding.num_accepted_tokens") > 0, "the draft's candidates are accepted: " + a.getString("decoding"));
    }
}
