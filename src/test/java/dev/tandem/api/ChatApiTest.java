package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.emptyOrNullString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** {@code POST /v1/chat/completions} on the bundled model and its chat template. */
@QuarkusTest
class ChatApiTest {

    @Test
    void aChatIsTheCompletionOfItsRenderedPrompt() {
        // the bundled template joins the messages as the verses of a passage and starts a new verse for the answer
        JsonPath chat = given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"system\",\"content\":\"And God said,\"},"
                + "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Let there be\"}]}],\"max_tokens\":16,\"temperature\":0}")
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        JsonPath completion = given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"And God said,\\nLet there be\\n\",\"max_tokens\":16,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200).extract().jsonPath();
        assertEquals(completion.getString("choices[0].text"), chat.getString("choices[0].message.content"));
        assertEquals("assistant", chat.getString("choices[0].message.role"));
        assertEquals("chat.completion", chat.getString("object"));
        assertEquals(completion.getInt("usage.prompt_tokens"), chat.getInt("usage.prompt_tokens"));
    }

    @Test
    void aQuestionGetsAnAnswer() {
        // the first edition's template continued the user's verse: a complete sentence often got EOS at once, an
        // empty reply. The second edition's starts a verse of its own after the message (issue 18)
        for (String question : new String[] {"And the LORD spake unto Moses, saying,", "Who is like unto thee?",
                "What shall we do?", "Rejoice in the Lord alway: and again I say, Rejoice."}) {
            String answer = given().contentType(ContentType.JSON)
                    .body("{\"messages\":[{\"role\":\"user\",\"content\":\"" + question + "\"}],\"max_tokens\":24,\"temperature\":0}")
                    .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath().getString("choices[0].message.content");
            assertTrue(answer.strip().split("\\s+").length >= 5, question + " -> '" + answer + "'");
        }
    }

    @Test
    void logprobsInChatFormat() {
        JsonPath r = given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"In the beginning\"}],"
                + "\"max_tokens\":5,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3}")
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath();
        assertEquals(5, r.getList("choices[0].logprobs.content").size());
        assertEquals(3, r.getList("choices[0].logprobs.content[0].top_logprobs").size());
        assertEquals(r.getFloat("choices[0].logprobs.content[0].logprob"), r.getFloat("choices[0].logprobs.content[0].top_logprobs[0].logprob"));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            {"max_tokens":5}                                                              | messages
            {"messages":[]}                                                               | messages
            {"messages":[{"role":"tool","content":"x"}]}                                  | messages[0].role
            {"messages":[{"content":"x"}]}                                                | messages[0].role
            {"messages":[{"role":"user"}]}                                                | messages[0].content
            {"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]} | messages[0].content
            {"messages":[{"role":"user","content":42}]}                                   | messages[0].content
            {"messages":[{"role":"user","content":"x"}],"top_logprobs":2}                 | top_logprobs
            {"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21} | top_logprobs
            {"messages":[{"role":"user","content":"x"}],"max_completion_tokens":0}        | max_tokens
            {"messages":[{"role":"user","content":"x"}],"temperature":-1}                 | temperature
            {"messages":[{"role":"user","content":"x"}],"n":3}                            | n
            {"messages":"hello"}                                                          | messages
            """)
    void badChatRequests(String body, String param) {
        given().contentType(ContentType.JSON).body(body).post("/v1/chat/completions").then().statusCode(400)
                .body("error.message", not(emptyOrNullString())).body("error.param", equalTo(param));
    }
}
