package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@code tandem.target.generation-config=auto} (the default): an OpenAI request that leaves a sampling field out gets
 * the model's generation_config.json value ({@link GreedyFiveTokenModel}: temperature 0, max_new_tokens 5), a field it
 * sets wins, and the TGI route keeps TGI's defaults.
 */
@QuarkusTest
@TestProfile(GenerationConfigApiTest.ModelDefaults.class)
class GenerationConfigApiTest {

    public static class ModelDefaults implements QuarkusTestProfile {
        @Override
        public List<TestResourceEntry> testResources() {
            return List.of(new TestResourceEntry(GreedyFiveTokenModel.class));
        }
    }

    static final String PROMPT = "{\"prompt\":\"And God said unto Moses\"";
    static final int FIVE = GreedyFiveTokenModel.MAX_NEW_TOKENS;

    static JsonPath post(String path, String body) {
        return given().contentType(ContentType.JSON).body(body).post(path).then().statusCode(200).extract().jsonPath();
    }

    static JsonPath complete(String fields) {
        return post("/v1/completions", PROMPT + fields + "}");
    }

    @Test
    void theModelEntryShowsWhatRequestsGet() {
        Map<String, Object> defaults = given().get("/v1/models/" + GreedyFiveTokenModel.ID).then().statusCode(200)
                .extract().jsonPath().getMap("sampling_defaults");
        assertEquals(2, defaults.size(), defaults.toString());
        assertEquals(0.0, ((Number) defaults.get("temperature")).doubleValue());
        assertEquals(FIVE, ((Number) defaults.get("max_tokens")).intValue());
    }

    /** Without temperature and max_tokens a request is greedy (whatever its seed) and gets the model's 5 tokens. */
    @Test
    void aRequestThatLeavesThemOutGetsTheModelsDefaults() {
        JsonPath greedy = complete(",\"temperature\":0,\"max_tokens\":" + FIVE);
        assertEquals(FIVE, greedy.getInt("usage.completion_tokens"), "the prompt is chosen so greedy runs 5 tokens");
        for (String fields : List.of("", ",\"seed\":1", ",\"seed\":2", ",\"seed\":3", ",\"temperature\":null,\"max_tokens\":null")) {
            JsonPath r = complete(fields);
            assertEquals(greedy.getString("choices[0].text"), r.getString("choices[0].text"), fields);
            assertEquals(FIVE, r.getInt("usage.completion_tokens"), fields);
            assertEquals("length", r.getString("choices[0].finish_reason"), fields);
        }
    }

    /** A field the request sets wins; the ones it leaves out still come from the model. */
    @Test
    void theRequestsOwnFieldsWin() {
        JsonPath greedy8 = complete(",\"temperature\":0,\"max_tokens\":8");
        for (int seed = 1; seed <= 3; seed++) {  // max_tokens from the request, temperature still the model's 0
            JsonPath r = complete(",\"max_tokens\":8,\"seed\":" + seed);
            assertEquals(8, r.getInt("usage.completion_tokens"));
            assertEquals(greedy8.getString("choices[0].text"), r.getString("choices[0].text"));
        }
        String greedy = complete(",\"temperature\":0").getString("choices[0].text");
        Set<String> sampled = new HashSet<>();
        for (int seed = 1; seed <= 8; seed++) {  // temperature from the request, max_tokens still the model's 5
            JsonPath r = complete(",\"temperature\":1.5,\"seed\":" + seed);
            assertEquals(FIVE, r.getInt("usage.completion_tokens"));
            sampled.add(r.getString("choices[0].text"));
        }
        sampled.remove(greedy);
        assertTrue(!sampled.isEmpty(), "temperature 1.5 sampled only the greedy text in 8 seeds");
    }

    @Test
    void chatGetsThemToo() {
        String messages = "{\"messages\":[{\"role\":\"user\",\"content\":\"And God said unto Moses\"}]";
        JsonPath greedy = post("/v1/chat/completions", messages + ",\"temperature\":0,\"max_completion_tokens\":" + FIVE + "}");
        for (int seed = 1; seed <= 3; seed++) {
            JsonPath r = post("/v1/chat/completions", messages + ",\"seed\":" + seed + "}");
            assertEquals(greedy.getString("choices[0].message.content"), r.getString("choices[0].message.content"));
            assertEquals(FIVE, r.getInt("usage.completion_tokens"));
        }
    }

    /** The defaults set the request's sampling; assisted decoding is still chosen per request and stays exact. */
    @Test
    void assistedDecodingSamplesWithThemAndKeepsItsMode() {
        String greedy = complete(",\"temperature\":0").getString("choices[0].text");
        JsonPath r = complete(",\"assisted\":true,\"assistant\":\"prompt_lookup\",\"seed\":7");
        assertEquals("assisted", r.getString("decoding.mode"));
        assertEquals(greedy, r.getString("choices[0].text"));
        assertEquals(FIVE, r.getInt("usage.completion_tokens"));
        assertEquals("plain", complete("").getString("decoding.mode"));
    }

    /** TGI does not read generation_config.json for sampling: its route keeps max_new_tokens 20 and do_sample's rule. */
    @Test
    void onlyTheOpenAiRoutesGetThem() {
        JsonPath tgi = post("/generate", "{\"inputs\":\"And God said unto Moses\",\"parameters\":{\"details\":true,"
                + "\"decoder_input_details\":false}}");
        assertEquals(20, tgi.getInt("details.generated_tokens"));
        assertEquals(FIVE, complete("").getInt("usage.completion_tokens"));
        JsonPath sampled = post("/generate", "{\"inputs\":\"And God said unto Moses\",\"parameters\":{\"details\":true,"
                + "\"do_sample\":true,\"seed\":3,\"max_new_tokens\":" + FIVE + "}}");
        assertNotEquals(complete(",\"seed\":3").getString("choices[0].text"), sampled.getString("generated_text"),
                "do_sample samples at TGI's temperature 1, not the model's 0");
    }
}
