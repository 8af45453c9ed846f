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

/** The default configuration serves the bundled model: the service works with zero downloads. */
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
}
