package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.notNullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.serving.ModelRegistry;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code POST /v1/completions} and {@code GET /v1/models} on stories260K, a model trained elsewhere. */
@QuarkusTest
@TestProfile(Stories260KProfile.class)
@RequiresSharedModels
class CompletionsApiTest {
    @Inject
    ModelRegistry registry;

    static JsonPath complete(String body) {
        return given().contentType(ContentType.JSON).body(body).post("/v1/completions")
                .then().statusCode(200).extract().jsonPath();
    }

    @Test
    void greedyFromBosReproducesTheKnownGoodText() {
        JsonPath r = complete("{\"prompt\":\"\",\"max_tokens\":60,\"temperature\":0}");
        assertEquals(SharedModels.STORIES_GREEDY_60, r.getString("choices[0].text"));
        assertEquals("length", r.getString("choices[0].finish_reason"));
        assertEquals("text_completion", r.getString("object"));
        assertEquals(1, r.getInt("usage.prompt_tokens"));
        assertEquals(60, r.getInt("usage.completion_tokens"));
        assertEquals(61, r.getInt("usage.total_tokens"));
        assertNull(r.get("choices[0].logprobs"));
    }

    @Test
    void promptPlusTextReadsAsTheFullText() {
        String prompt = "Once upon a time, there was";
        JsonPath r = complete("{\"prompt\":\"" + prompt + "\",\"max_tokens\":12,\"temperature\":0}");
        String text = r.getString("choices[0].text");
        assertTrue(text.startsWith(" "), "the continuation keeps its leading space: '" + text + "'");
        assertTrue(SharedModels.STORIES_GREEDY_60.startsWith(prompt + text), prompt + text);
    }

    @Test
    void modelMayBeNamedOrOmitted() {
        String id = registry.target().id();
        JsonPath r = complete("{\"model\":\"" + id + "\",\"prompt\":\"Once\",\"max_tokens\":3,\"temperature\":0}");
        assertEquals(id, r.getString("model"));
    }

    @Test
    void sameSeedSameTextDifferentSeedsDifferentText() {
        for (String prompt : List.of("Once upon a time", "The little dog", "Tom and Sue went")) {
            String a = sampled(prompt, 1);
            assertEquals(a, sampled(prompt, 1), "same seed must give the same text");
            assertNotEquals(a, sampled(prompt, 2), "different seeds should differ for '" + prompt + "'");
        }
    }

    private static String sampled(String prompt, long seed) {
        return complete("{\"prompt\":\"" + prompt + "\",\"max_tokens\":40,\"temperature\":1.0,\"top_p\":0.95,\"seed\":" + seed + "}")
                .getString("choices[0].text");
    }

    @Test
    void stopStringsCutTheText() {
        JsonPath r = complete("{\"prompt\":\"\",\"max_tokens\":60,\"temperature\":0,\"stop\":[\"Lily\"]}");
        assertEquals("Once upon a time, there was a little girl named ", r.getString("choices[0].text"));
        assertEquals("stop", r.getString("choices[0].finish_reason"));
    }

    @Test
    void logprobsAndEchoAreLogSoftmaxOfTheModelsLogits() {
        JsonPath r = complete("{\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"temperature\":0,\"logprobs\":3,\"echo\":true}");
        List<Float> lps = r.getList("choices[0].logprobs.token_logprobs", Float.class);
        List<String> tokens = r.getList("choices[0].logprobs.tokens");
        List<Integer> offsets = r.getList("choices[0].logprobs.text_offset");
        List<Map<String, Float>> tops = r.getList("choices[0].logprobs.top_logprobs");
        String text = r.getString("choices[0].text");
        assertTrue(text.startsWith("Once upon a time"), text);

        CausalLm lm = registry.target().lm();
        int[] prompt = registry.target().tokenizer().encodePrompt("Once upon a time");
        int promptTokens = prompt.length - 1;  // BOS is not echoed
        assertEquals(promptTokens + 5, tokens.size());
        int[] all = new int[prompt.length + 5];
        System.arraycopy(prompt, 0, all, 0, prompt.length);
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, prompt);
            for (int i = 1; i < prompt.length; i++) {
                assertEquals(logSoftmax(logits.row(i - 1), prompt[i]), lps.get(i - 1), 1e-4, "prompt token " + i);
            }
            float[] row = logits.row(prompt.length - 1);
            for (int g = 0; g < 5; g++) {
                int best = argmax(row);
                assertEquals(logSoftmax(row, best), lps.get(promptTokens + g), 1e-4, "generated token " + g);
                float topValue = tops.get(promptTokens + g).values().stream().max(Float::compare).orElseThrow();
                assertEquals(logSoftmax(row, best), topValue, 1e-4, "the greedy token is the top alternative");
                assertEquals(3, tops.get(promptTokens + g).size());
                row = lm.forward(cache, best).row(0);
            }
        }
        for (int i = 0; i < tokens.size(); i++) {
            assertEquals(tokens.get(i), text.substring(offsets.get(i), offsets.get(i) + tokens.get(i).length()),
                    "text_offset of token " + i);
        }
    }

    static float logSoftmax(float[] row, int token) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        return (float) (row[token] - max - Math.log(sum));
    }

    static int argmax(float[] row) {
        int b = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[b]) {
                b = i;
            }
        }
        return b;
    }

    @Test
    void tokenIdPromptsAreAccepted() {
        JsonPath r = complete("{\"prompt\":[1],\"max_tokens\":60,\"temperature\":0}");
        assertEquals(SharedModels.STORIES_GREEDY_60, r.getString("choices[0].text"));
    }

    @Test
    void listsTheServedModel() {
        given().get("/v1/models").then().statusCode(200)
                .body("object", equalTo("list"))
                .body("data[0].id", equalTo(registry.target().id()))
                .body("data[0].object", equalTo("model"))
                .body("data[0].max_model_len", equalTo(512))
                .body("data[0].engine", equalTo("onnxruntime"))
                .body("data[0]", hasKey("draft"))
                .body("data[0].quantization", equalTo("float32"));
    }

    @Test
    void readinessIsUpWithTheModels() {
        given().get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"))
                .body("checks.find { it.name == 'models' }.data.target", notNullValue());
    }
}
