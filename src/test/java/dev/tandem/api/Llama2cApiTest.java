package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * A llama2.c checkpoint served through the API (issue 16, item 6): ../shared/models/stories260K as llama2.c ships it,
 * on the reference engine. Its known-good text comes out over HTTP; the OpenAI and TGI routes, streaming, prompt
 * lookup and concurrent requests work on it as on any model; its tokenizer gives the ids of the Hugging Face export of
 * the same model.
 */
@QuarkusTest
@TestProfile(Llama2cProfile.class)
@RequiresSharedModels
class Llama2cApiTest {

    static JsonPath complete(String body) {
        return CompletionsApiTest.complete(body);
    }

    @Test
    void greedyFromBosReproducesTheKnownGoodText() {
        JsonPath r = complete("{\"prompt\":\"\",\"max_tokens\":60,\"temperature\":0}");
        assertEquals(SharedModels.STORIES_GREEDY_60, r.getString("choices[0].text"));
        assertEquals("length", r.getString("choices[0].finish_reason"));
        assertEquals(1, r.getInt("usage.prompt_tokens"));
        assertEquals(60, r.getInt("usage.completion_tokens"));
    }

    @Test
    void theModelIsDescribedAsALlama2cCheckpointOnTheReferenceEngine() {
        JsonPath m = given().get("/v1/models/stories260K").then().statusCode(200).extract().jsonPath();
        assertEquals("reference", m.getString("engine"));
        assertEquals("float32", m.getString("quantization"));
        assertEquals("stories260K.bin", m.getString("graph"));
        assertEquals(512, m.getInt("max_model_len"));
        assertEquals(260_032, m.getLong("memory.weights.parameters"));
        assertTrue(m.getList("memory.unavailable").isEmpty(), m.prettify());
    }

    @Test
    void continuationsStreamingTgiAndPromptLookupAgree() {
        String prompt = "Once upon a time, there was";
        String text = complete("{\"prompt\":\"" + prompt + "\",\"max_tokens\":24,\"temperature\":0}").getString("choices[0].text");
        assertTrue(SharedModels.STORIES_GREEDY_60.startsWith(prompt + text), prompt + text);
        String streamed = given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"" + prompt + "\",\"max_tokens\":24,\"temperature\":0,\"stream\":true}")
                .post("/v1/completions").then().statusCode(200).extract().asString();
        StringBuilder pieces = new StringBuilder();
        for (String line : streamed.split("\n")) {
            if (line.startsWith("data: {")) {
                pieces.append(JsonPath.from(line.substring(6)).getString("choices[0].text"));
            }
        }
        assertEquals(text, pieces.toString(), "streamed pieces concatenate to the text");
        String tgi = given().contentType(ContentType.JSON)
                .body("{\"inputs\":\"" + prompt + "\",\"parameters\":{\"max_new_tokens\":24}}")
                .post("/generate").then().statusCode(200).extract().jsonPath().getString("generated_text");
        assertEquals(text, tgi);
        JsonPath lookup = complete("{\"prompt\":\"" + prompt + "\",\"max_tokens\":24,\"temperature\":0,\"assisted\":true,"
                + "\"assistant\":\"prompt_lookup\",\"prompt_lookup_ngram_size\":2}");
        assertEquals(text, lookup.getString("choices[0].text"), "greedy assisted decoding is plain decoding");
        assertEquals("assisted", lookup.getString("decoding.mode"));
    }

    @Test
    void concurrentRequestsGetWhatEachGetsAlone() throws Exception {
        List<String> prompts = List.of("", "Tom and Sue went", "The little dog", "Once upon a time", "Lily saw a big", "One day");
        List<String> alone = new ArrayList<>();
        for (String p : prompts) {
            alone.add(complete(body(p)).getString("choices[0].text"));
        }
        ExecutorService pool = Executors.newFixedThreadPool(prompts.size());
        try {
            for (int round = 0; round < 2; round++) {
                List<Future<String>> together = new ArrayList<>();
                for (String p : prompts) {
                    together.add(pool.submit(() -> complete(body(p)).getString("choices[0].text")));
                }
                for (int i = 0; i < prompts.size(); i++) {
                    assertEquals(alone.get(i), together.get(i).get(), "'" + prompts.get(i) + "' in a batch of " + prompts.size());
                }
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(SharedModels.STORIES_GREEDY_60.substring(0, alone.getFirst().length()), alone.getFirst());
    }

    private static String body(String prompt) {
        return "{\"prompt\":\"" + prompt + "\",\"max_tokens\":40,\"temperature\":0}";
    }

    @Test
    void itsTokenizerGivesTheIdsOfTheHuggingFaceExportOfTheSameModel() {
        String text = "Once upon a time, Tom said: \"naïve café 🙂\"\n";
        JsonPath r = given().contentType(ContentType.JSON).body(java.util.Map.of("prompt", text, "return_token_strs", true))
                .post("/tokenize").then().statusCode(200).extract().jsonPath();
        try (TextTokenizer hf = TextTokenizer.load(ModelDirectory.open(SharedModels.stories260kHf()))) {
            List<Integer> expected = new ArrayList<>();
            for (int id : hf.encodePrompt(text)) {
                expected.add(id);
            }
            assertEquals(expected, r.getList("tokens", Integer.class));
        }
        assertEquals("<s>", r.getString("token_strs[0]"));
        assertEquals("▁Once", r.getString("token_strs[1]"));
    }

    @Test
    void chatIsRefusedWithA400ForItHasNoTemplate() {
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
                .post("/v1/chat/completions").then().statusCode(400);
    }
}
