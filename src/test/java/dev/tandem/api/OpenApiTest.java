package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.hasItems;

import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/** The OpenAPI document covers every route, with snake_case names and Tandem's extension fields. */
@QuarkusTest
class OpenApiTest {
    @Test
    void documentsEveryRouteAndTheExtensionFields() {
        var doc = given().queryParam("format", "json").get("/q/openapi").then().statusCode(200);
        for (String path : new String[] {"/v1/completions", "/v1/chat/completions", "/v1/models", "/generate",
                "/generate_stream", "/tokenize", "/detokenize"}) {
            doc.body("paths", hasKey(path));
        }
        doc.body("components.schemas.CompletionRequest.properties.keySet()", hasItems("max_tokens", "top_k", "min_p",
                "repetition_penalty", "assisted", "assistant", "num_assistant_tokens", "assistant_schedule",
                "assistant_confidence_threshold", "prompt_lookup_ngram_size", "stream_options"));
        doc.body("components.schemas.ChatCompletionRequest.properties.keySet()", hasItems("messages",
                "max_completion_tokens", "top_logprobs", "assisted", "num_assistant_tokens"));
        doc.body("components.schemas.Parameters.properties.keySet()", hasItems("max_new_tokens", "do_sample",
                "decoder_input_details", "top_n_tokens", "assisted"));
        doc.body("paths.'/v1/completions'.post.responses", hasKey("429"));
    }
}
