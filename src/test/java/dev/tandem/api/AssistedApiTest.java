package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.serving.ModelRegistry;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Assisted and plain decoding switched per request over one loaded target. */
@QuarkusTest
@TestProfile(SelfDraftProfile.class)
class AssistedApiTest {
    static final List<String> PROMPTS = List.of("And God said", "In the beginning", "Blessed are the", "The LORD is my",
            "And it came to pass", "Thus saith the LORD", "Hear, O Israel", "And Jesus answered");

    @Inject
    ModelRegistry registry;

    static JsonPath complete(String prompt, String extra) {
        return given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"" + prompt + "\",\"max_tokens\":48,\"temperature\":0" + extra + "}")
                .post("/v1/completions").then().statusCode(200).extract().jsonPath();
    }

    @Test
    void interleavedAssistedAndPlainRequestsGiveTheSameGreedyText() {
        CausalLm target = registry.target().lm();
        for (String p : PROMPTS) {
            JsonPath plain = complete(p, ",\"assisted\":false");
            JsonPath draft = complete(p, ",\"assisted\":true,\"assistant\":\"draft\",\"num_assistant_tokens\":4");
            JsonPath lookup = complete(p, ",\"assisted\":true,\"assistant\":\"prompt_lookup\",\"prompt_lookup_ngram_size\":2");
            JsonPath heuristic = complete(p, ",\"assisted\":true,\"assistant_schedule\":\"heuristic\"");
            String text = plain.getString("choices[0].text");
            assertEquals(text, draft.getString("choices[0].text"), p);
            assertEquals(text, lookup.getString("choices[0].text"), p);
            assertEquals(text, heuristic.getString("choices[0].text"), p);
            assertEquals("plain", plain.getString("decoding.mode"));
            assertEquals("assisted", draft.getString("decoding.mode"));
            assertEquals("draft", draft.getString("decoding.assistant"));
            assertEquals("prompt_lookup", lookup.getString("decoding.assistant"));
            assertEquals(1.0f, draft.getFloat("decoding.draft_acceptance_rate"), "the target is its own draft");
            assertEquals(draft.getInt("decoding.num_draft_tokens"), draft.getInt("decoding.num_accepted_tokens"));
            assertTrue(draft.getInt("decoding.num_spec_steps") > 0);
            assertTrue(draft.getFloat("decoding.mean_acceptance_length") > 1);
            assertEquals(draft.getInt("decoding.num_accepted_tokens"),
                    draft.getList("decoding.acceptance_histogram", Integer.class).stream().mapToInt(Integer::intValue).sum());
            // the k chosen: 4 candidates per decode step to start with (the schedule may grow it), all accepted (the draft is the target); each step emits its
            // accepted candidates and the target's own token (not when an accepted EOS ends it), after the prompt's first
            int steps = draft.getInt("decoding.num_decode_steps");
            double k = draft.getDouble("decoding.mean_candidates_per_step");
            assertTrue(steps >= draft.getInt("decoding.num_spec_steps") && k > 1
                    && k <= AssistOptions.MAX_ASSISTANT_TOKENS, draft.getString("decoding"));
            int byStep = steps + draft.getInt("decoding.num_accepted_tokens");
            int after = draft.getInt("usage.completion_tokens") - 1;
            assertTrue(after == byStep || after == byStep - 1, after + " tokens after the first: " + draft.getString("decoding"));
            assertTrue(Math.round(k * steps) >= draft.getInt("decoding.num_draft_tokens"), "proposed covers judged");
            assertNull(plain.get("decoding.num_decode_steps"), "plain decoding proposes nothing");
        }
        assertSame(target, registry.target().lm(), "one loaded target serves both modes");
        assertEquals(2, registry.loadedModels(), "target and draft were loaded once each");
    }

    @Test
    void absentMeansTheServerDefaultWhichIsPlain() {
        JsonPath r = complete("And God said", "");
        assertEquals("plain", r.getString("decoding.mode"));
    }

    @Test
    void modelsListTheAttachedDraft() {
        given().get("/v1/models").then().statusCode(200).body("data[0].draft", equalTo("kjv-draft-as-draft"))
                // ONNX Runtime runs the directory's model_optimized.onnx (MatMulNBits), not model.onnx (MatMulInteger)
                .body("data[0].quantization", equalTo("int8 (MatMulNBits)"))
                .body("data[0].draft_quantization", equalTo("int8 (MatMulNBits)"))
                .body("data[0].assisted_decoding", equalTo(true))
                .body("data[0]", org.hamcrest.Matchers.hasKey("assisted_decoding_unavailable"))
                .body("data[0].assisted_decoding_unavailable", org.hamcrest.Matchers.nullValue());
        given().get("/v1/models/kjv-draft").then().statusCode(200).body("graph", equalTo("model_optimized.onnx"));
        given().get("/v1/models/kjv-draft-as-draft").then().statusCode(200).body("graph", equalTo("model_optimized.onnx"));
    }

    @Test
    void badAssistedFieldsAreRefused() {
        for (String[] c : new String[][] {
                {",\"assisted\":\"yes\"", "assisted"},
                {",\"assisted\":true,\"assistant\":\"oracle\"", "assistant"},
                {",\"assisted\":true,\"num_assistant_tokens\":0", "num_assistant_tokens"},
                {",\"assisted\":true,\"num_assistant_tokens\":17", "num_assistant_tokens"},
                {",\"assisted\":true,\"assistant_schedule\":\"sometimes\"", "assistant_schedule"},
                {",\"assisted\":true,\"assistant_confidence_threshold\":1.5", "assistant_confidence_threshold"},
                {",\"assisted\":true,\"prompt_lookup_ngram_size\":9", "prompt_lookup_ngram_size"},
                {",\"assisted\":false,\"num_assistant_tokens\":99", "num_assistant_tokens"}}) {
            given().contentType(ContentType.JSON).body("{\"prompt\":\"hi\",\"max_tokens\":4" + c[0] + "}")
                    .post("/v1/completions").then().statusCode(400).body("error.param", equalTo(c[1]));
        }
    }
}
