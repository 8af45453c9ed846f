package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code tandem.target.chat-template} replaces the model's template for every chat route. */
@QuarkusTest
@TestProfile(ConfiguredChatTemplateApiTest.TaggedTemplate.class)
class ConfiguredChatTemplateApiTest {

    /** The small bundled model without a draft, its template replaced by a file whose output is known. */
    public static class TaggedTemplate implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("tandem.target.model-dir", "models/kjv-draft", "tandem.draft.enabled", "false",
                    "tandem.target.chat-template", "src/test/resources/chat-templates/tagged.jinja");
        }
    }

    static final String CHAT = "{\"messages\":[{\"role\":\"system\",\"content\":\"In the beginning\"},"
            + "{\"role\":\"user\",\"content\":\"And God said\"}]";

    @Test
    void theConfiguredTemplateRendersTheChat() {
        JsonPath r = given().contentType(ContentType.JSON).body(CHAT + "}").post("/chat_tokenize").then().statusCode(200)
                .extract().jsonPath();
        assertEquals("<|system|>In the beginning<|end|>\n<|user|>And God said<|end|>\n<|assistant|>", r.getString("templated_text"));
        int promptTokens = given().contentType(ContentType.JSON).body(CHAT + ",\"max_tokens\":1,\"temperature\":0}")
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath().getInt("usage.prompt_tokens");
        assertEquals(r.getList("tokenize_response").size(), promptTokens, "the chat is fed the configured template's prompt");
        int vllm = given().contentType(ContentType.JSON).body(CHAT + ",\"add_generation_prompt\":false}").post("/tokenize").then()
                .statusCode(200).extract().jsonPath().getInt("count");
        int withoutAssistant = given().contentType(ContentType.JSON)
                .body("{\"inputs\":\"<|system|>In the beginning<|end|>\\n<|user|>And God said<|end|>\\n\",\"add_special_tokens\":false}")
                .post("/tokenize").then().statusCode(200).extract().jsonPath().getList("$").size();
        assertEquals(withoutAssistant, vllm);
    }
}
