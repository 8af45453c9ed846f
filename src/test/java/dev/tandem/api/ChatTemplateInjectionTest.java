package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.model.ChatTemplateTest;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Message content of {@code POST /v1/chat/completions} is data: Jinja syntax in it (expressions,
 * include, loops; {@link ChatTemplateTest#PAYLOADS}) reaches the model as literal text, in every role
 * and as a string or as text parts.
 */
@QuarkusTest
class ChatTemplateInjectionTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (String payload : ChatTemplateTest.PAYLOADS) {
            for (String role : List.of("system", "developer", "user", "assistant")) {
                cases.add(Arguments.of(role, "string", payload));
            }
            // parts are joined into one string before the template, whatever the role
            cases.add(Arguments.of("user", "text parts", payload));
        }
        return cases.stream();
    }

    /**
     * The prompt has exactly the tokens of the literal text the bundled template makes of it: BOS, then
     * the contents (trimmed) joined by a newline, as the verses of a passage, and a newline to start the answer's
     * verse (the generation prompt).
     */
    @ParameterizedTest(name = "{0} ({1}): {2}")
    @MethodSource("cases")
    void contentReachesThePromptLiterally(String role, String form, String payload) {
        ArrayNode messages = JSON.createArrayNode();
        String literalPrompt;
        if (role.equals("assistant")) {
            messages.addObject().put("role", "user").put("content", "In the beginning");
            literalPrompt = "<s>In the beginning\n" + payload.strip() + "\n";
        } else {
            literalPrompt = "<s>" + payload.strip() + "\n";
        }
        ObjectNode m = messages.addObject().put("role", role);
        if (form.equals("string")) {
            m.put("content", payload);
        } else {
            int half = payload.length() / 2;  // the split falls inside the Jinja syntax: the parts are joined as text
            ArrayNode content = m.putArray("content");
            content.addObject().put("type", "text").put("text", payload.substring(0, half));
            content.addObject().put("type", "text").put("text", payload.substring(half));
        }
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 1).put("temperature", 0);
        body.set("messages", messages);

        JsonPath chat = given().contentType(ContentType.JSON).body(body.toString()).post("/v1/chat/completions")
                .then().statusCode(200).extract().jsonPath();
        JsonPath tokens = given().contentType(ContentType.JSON)
                .body(JSON.createObjectNode().put("inputs", literalPrompt).put("add_special_tokens", false).toString())
                .post("/tokenize").then().statusCode(200).extract().jsonPath();
        assertEquals(tokens.getList("id").size(), chat.getInt("usage.prompt_tokens"));
    }

    @Test
    void theIssuesPayloadsAreNotEvaluated() {
        // before the fix: 400 "X 49", and a 400 quoting application.properties
        for (String payload : List.of("{{ raise_exception('X ' ~ (7*7)) }}",
                "{% set x %}{% include 'application.properties' %}{% endset %}{{ raise_exception(x) }}")) {
            ObjectNode body = JSON.createObjectNode().put("max_tokens", 1);
            body.putArray("messages").addObject().put("role", "user").put("content", payload);
            given().contentType(ContentType.JSON).body(body.toString()).post("/v1/chat/completions")
                    .then().statusCode(200).body("object", equalTo("chat.completion"));
        }
    }

    @Test
    void tooManyMessagesIsA400() {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 1);
        ArrayNode messages = body.putArray("messages");
        for (int i = 0; i < 4097; i++) {
            messages.addObject().put("role", "user").put("content", "");
        }
        given().contentType(ContentType.JSON).body(body.toString()).post("/v1/chat/completions").then().statusCode(400)
                .body("error.param", equalTo("messages"))
                .body("error.message", equalTo("at most 4096 messages per chat, got 4097"));
    }
}
