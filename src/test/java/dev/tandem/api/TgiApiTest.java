package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.emptyOrNullString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Text Generation Inference's routes: schema round trips, details, streaming, tokenize, errors. */
@QuarkusTest
class TgiApiTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonPath post(String path, String body) {
        return given().contentType(ContentType.JSON).body(body).post(path).then().statusCode(200).extract().jsonPath();
    }

    @Test
    void generateMatchesTheOpenAiRoute() {
        String text = post("/generate", "{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":20}}").getString("generated_text");
        String openai = post("/v1/completions", "{\"prompt\":\"And God said\",\"max_tokens\":20,\"temperature\":0}")
                .getString("choices[0].text");
        assertEquals(openai, text, "TGI is greedy unless do_sample");
        String full = post("/generate", "{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":20,\"return_full_text\":true}}")
                .getString("generated_text");
        assertEquals("And God said" + text, full);
    }

    @Test
    void detailsDescribeEveryToken() {
        JsonPath r = post("/generate", "{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":8,\"details\":true,"
                + "\"decoder_input_details\":true,\"top_n_tokens\":3,\"seed\":5}}");
        assertEquals("length", r.getString("details.finish_reason"));
        assertEquals(8, r.getInt("details.generated_tokens"));
        List<Map<String, Object>> tokens = r.getList("details.tokens");
        assertEquals(8, tokens.size());
        StringBuilder joined = new StringBuilder();
        tokens.forEach(t -> joined.append(t.get("text")));
        assertEquals(r.getString("generated_text"), joined.toString());
        assertEquals(8, r.getList("details.top_tokens").size());
        assertEquals(3, r.getList("details.top_tokens[0]").size());
        assertEquals(r.getFloat("details.tokens[0].logprob"), r.getFloat("details.top_tokens[0][0].logprob"));
        assertEquals(1, r.getInt("details.prefill[0].id"), "BOS opens the prefill");
        assertNull(r.get("details.prefill[0].logprob"));
        assertEquals(4, r.getList("details.prefill").size());
        assertEquals(5, r.getInt("details.seed"));
    }

    /** A prompt the bundled target ends with EOS within 60 tokens, greedily (25 tokens). */
    static final String CHAPTER_END = "Amen.";

    @Test
    void finishReasonsInTgiTerms() {
        // the bundled models end a chapter with EOS (greedy: "Amen." a few times, then EOS)
        JsonPath eos = post("/generate", "{\"inputs\":\"" + CHAPTER_END + "\",\"parameters\":{\"max_new_tokens\":60,\"details\":true}}");
        assertEquals("eos_token", eos.getString("details.finish_reason"));
        List<Map<String, Object>> tokens = eos.getList("details.tokens");
        assertEquals(true, tokens.get(tokens.size() - 1).get("special"));
        // a word from the middle of the greedy text as the stop sequence: the text ends just before it
        String full = post("/generate", "{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":40}}")
                .getString("generated_text");
        String[] words = full.trim().split("\\s+");
        String word = words[words.length / 2];
        JsonPath stop = post("/generate", "{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":40,\"details\":true,"
                + "\"stop\":[\"" + word + "\"]}}");
        assertEquals("stop_sequence", stop.getString("details.finish_reason"), "stop " + word + " in " + full);
        assertEquals(full.substring(0, full.indexOf(word)), stop.getString("generated_text"));
    }

    @Test
    void streamEndsWithTheWholeTextAndDetails() throws Exception {
        String raw = given().contentType(ContentType.JSON)
                .body("{\"inputs\":\"" + CHAPTER_END + "\",\"parameters\":{\"max_new_tokens\":60}}")
                .post("/generate_stream").then().statusCode(200).contentType("text/event-stream").extract().asString();
        String whole = post("/generate", "{\"inputs\":\"" + CHAPTER_END + "\",\"parameters\":{\"max_new_tokens\":60}}")
                .getString("generated_text");
        StringBuilder text = new StringBuilder();
        JsonNode last = null;
        int index = 0;
        for (String block : raw.split("\n\n")) {
            assertTrue(block.startsWith("data: "), block);
            JsonNode e = JSON.readTree(block.substring(6));
            assertEquals(index++, e.path("index").asInt());
            if (!e.path("token").path("special").asBoolean()) {
                text.append(e.path("token").path("text").asText());
            }
            if (!e.path("generated_text").isNull()) {
                assertTrue(last == null, "only the last event carries generated_text");
                last = e;
            }
        }
        assertEquals(whole, text.toString());
        assertEquals(whole, last.path("generated_text").asText());
        assertEquals("eos_token", last.path("details").path("finish_reason").asText());
        assertEquals(index, last.path("details").path("generated_tokens").asInt(), "one event per generated token");
    }

    @Test
    void tokenizeAndDetokenize() {
        JsonPath t = post("/tokenize", "{\"inputs\":\"And God said\"}");
        List<Integer> ids = t.getList("id", Integer.class);
        assertEquals(1, ids.get(0));
        assertEquals("And God said".length(), t.getInt("stop[" + (ids.size() - 1) + "]"));
        assertEquals("God", "And God said".substring(t.getInt("start[2]") + 1, t.getInt("stop[2]")));
        String back = post("/detokenize", "{\"tokens\":" + ids + "}").getString("text");
        assertEquals("And God said", back);
    }

    @Test
    void errorsUseTgiFormat() {
        for (String[] c : new String[][] {
                {"/generate", "{\"parameters\":{}}"},
                {"/generate", "{\"inputs\":\"x\",\"parameters\":{\"max_new_tokens\":0}}"},
                {"/generate", "{\"inputs\":\"x\",\"parameters\":{\"do_sample\":true,\"temperature\":0}}"},
                {"/generate", "{\"inputs\":\"x\",\"parameters\":{\"top_k\":0}}"},
                {"/generate", "{\"inputs\":\"x\",\"parameters\":{\"top_n_tokens\":99}}"},
                {"/generate", "{\"inputs\":\"x\",\"parameters\":{\"max_new_tokens\":\"many\"}}"},
                {"/generate", "{\"inputs\":\"x\""},
                {"/generate_stream", "{\"inputs\":\"x\",\"parameters\":{\"best_of\":2}}"},
                {"/tokenize", "{}"},
                {"/detokenize", "{\"tokens\":[1,999999]}"}}) {
            given().contentType(ContentType.JSON).body(c[1]).post(c[0]).then().statusCode(422)
                    .body("error", not(emptyOrNullString())).body("error_type", equalTo("validation"));
        }
    }
}
