package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.hasItems;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The OpenAPI document covers every route, with snake_case names and Tandem's extension fields. */
@QuarkusTest
class OpenApiTest {
    @Test
    void documentsEveryRouteAndTheExtensionFields() {
        var doc = given().queryParam("format", "json").get("/q/openapi").then().statusCode(200);
        for (String path : new String[] {"/v1/completions", "/v1/chat/completions", "/v1/models", "/generate",
                "/generate_stream", "/tokenize", "/detokenize", "/chat_tokenize"}) {
            doc.body("paths", hasKey(path));
        }
        doc.body("components.schemas.CreateCompletionRequest.properties.keySet()", hasItems("max_tokens", "top_k", "min_p",
                "repetition_penalty", "assisted", "assistant", "num_assistant_tokens", "assistant_schedule",
                "assistant_confidence_threshold", "prompt_lookup_ngram_size", "stream_options"));
        doc.body("components.schemas.CreateChatCompletionRequest.properties.keySet()", hasItems("messages",
                "max_completion_tokens", "top_logprobs", "assisted", "num_assistant_tokens"));
        doc.body("components.schemas.GenerateParameters.properties.keySet()", hasItems("max_new_tokens", "do_sample",
                "decoder_input_details", "top_n_tokens", "assisted"));
        doc.body("paths.'/v1/completions'.post.responses", hasKey("429"));
        doc.body("components.schemas.Decoding.properties.keySet()", hasItems("mode", "num_spec_steps", "num_draft_tokens",
                "num_decode_steps", "mean_candidates_per_step"));
        doc.body("components.schemas.Decoding.properties.mean_candidates_per_step.description", containsString("k chosen"));
    }

    static JsonNode openapi() throws Exception {
        return new ObjectMapper().readTree(given().queryParam("format", "json").get("/q/openapi").then().statusCode(200)
                .extract().asString());
    }

    /**
     * Swagger UI's "Try it out" starts from the request schema's example; every one must be a request the
     * service accepts (a schema without one gets a generated body like max_tokens 0, which it rejects).
     */
    @Test
    void everyRequestExampleIsAcceptedByTheService() throws Exception {
        JsonNode doc = openapi();
        int posted = 0;
        for (Map.Entry<String, JsonNode> path : doc.path("paths").properties()) {
            for (Map.Entry<String, JsonNode> op : path.getValue().properties()) {
                JsonNode content = op.getValue().path("requestBody").path("content").path("application/json");
                if (content.isMissingNode()) {
                    continue;
                }
                JsonNode schema = doc.path("components").path("schemas")
                        .path(content.at("/schema/$ref").asText().replace("#/components/schemas/", ""));
                // OpenAPI 3.1 (what /q/openapi serves): a schema's examples are a list; Swagger UI takes the first
                JsonNode example = content.has("example") ? content.get("example")
                        : schema.has("example") ? schema.get("example") : schema.path("examples").get(0);
                String where = op.getKey().toUpperCase() + " " + path.getKey();
                assertNotNull(example, where + " has no example for Try it out: " + schema);
                assertTrue(example.isObject(), where + ": the example is a JSON object, not " + example);
                int status = given().contentType("application/json").body(example.toString()).request(op.getKey(), path.getKey())
                        .then().extract().statusCode();
                assertTrue(status >= 200 && status < 300, where + " rejects its own example " + example + ": " + status);
                posted++;
            }
        }
        assertTrue(posted >= 6, "completions, chat, generate, generate_stream, tokenize, detokenize: " + posted);
    }

    /** Schema names are the API's (OpenAI's and TGI's where they have one), not Java or library internals. */
    @Test
    void schemaNamesAreTheApisNotJavaInternals() throws Exception {
        JsonNode schemas = openapi().path("components").path("schemas");
        List<String> names = new ArrayList<>();
        schemas.fieldNames().forEachRemaining(names::add);
        for (String n : names) {
            assertFalse(n.matches(".*\\d$"), n + ": a numbered duplicate of a nested class name");
            assertFalse(n.startsWith("Json") || n.equals("Object") || n.endsWith("Fields") || n.endsWith("Params")
                    || n.endsWith("Body") || n.equals("Message") || n.equals("Choice"), n + " is a Java name, not the API's");
        }
        for (String n : List.of("CreateCompletionRequest", "CreateCompletionResponse", "CreateChatCompletionRequest",
                "CreateChatCompletionResponse", "ChatCompletionRequestMessage", "ChatCompletionResponseMessage",
                "ErrorResponse", "GenerateRequest", "GenerateParameters", "GenerateResponse")) {
            assertTrue(names.contains(n), n + " in " + names);
        }
    }
}
