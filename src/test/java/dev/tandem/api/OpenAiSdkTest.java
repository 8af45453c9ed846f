package dev.tandem.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import java.net.URL;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Assertions;

/** The official OpenAI Java SDK, unchanged, against the running service: completions and chat, whole and streamed, assisted on and off. */
@QuarkusTest
@TestProfile(SelfDraftProfile.class)
class OpenAiSdkTest {
    @TestHTTPResource("/v1")
    URL base;

    OpenAIClient client() {
        return OpenAIOkHttpClient.builder().baseUrl(base.toString()).apiKey("not-needed").maxRetries(0).build();
    }

    static Map<String, JsonValue> assisted(boolean on) {
        return Map.of("assisted", JsonValue.from(on), "assistant", JsonValue.from("draft"));
    }

    /** As {@link #assisted}, and EOS does not end the completion (so it has exactly max_tokens tokens). */
    static Map<String, JsonValue> assistedIgnoringEos(boolean on) {
        return Map.of("assisted", JsonValue.from(on), "assistant", JsonValue.from("draft"), "ignore_eos", JsonValue.from(true));
    }

    @Test
    void completions() {
        OpenAIClient c = client();
        String[] texts = new String[2];
        for (int i = 0; i < 2; i++) {
            Completion r = c.completions().create(CompletionCreateParams.builder().model("kjv-draft")
                    .prompt("And God said").maxTokens(20).temperature(0.0).additionalBodyProperties(assistedIgnoringEos(i == 1)).build());
            texts[i] = r.choices().get(0).text();
            assertEquals(20, r.usage().orElseThrow().completionTokens());
            Map<?, ?> decoding = r._additionalProperties().get("decoding").convert(Map.class);
            assertEquals(i == 1 ? "assisted" : "plain", decoding.get("mode"));
        }
        assertEquals(texts[0], texts[1], "assisted greedy equals plain greedy");
        assertEquals(io.restassured.RestAssured.given().contentType(io.restassured.http.ContentType.JSON)
                .body("{\"prompt\":\"And God said\",\"max_tokens\":20,\"temperature\":0,\"ignore_eos\":true}").post("/v1/completions")
                .then().statusCode(200).extract().jsonPath().getString("choices[0].text"), texts[0],
                "the SDK sees what a plain HTTP client sees");

        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<Completion> s = c.completions().createStreaming(CompletionCreateParams.builder().model("kjv-draft")
                .prompt("And God said").maxTokens(20).temperature(0.0).additionalBodyProperties(assistedIgnoringEos(true)).build())) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> streamed.append(ch.text())));
        }
        assertEquals(texts[0], streamed.toString());
    }

    @Test
    void chat() {
        OpenAIClient c = client();
        String[] texts = new String[2];
        for (int i = 0; i < 2; i++) {
            ChatCompletion r = c.chat().completions().create(ChatCompletionCreateParams.builder().model("kjv-draft")
                    .addSystemMessage("In the beginning").addUserMessage("God created").maxCompletionTokens(24)
                    .temperature(0.0).additionalBodyProperties(assisted(i == 1)).build());
            texts[i] = r.choices().get(0).message().content().orElseThrow();
            assertTrue(r.usage().orElseThrow().promptTokens() > 3);
        }
        assertEquals(texts[0], texts[1]);
        assertEquals(io.restassured.RestAssured.given().contentType(io.restassured.http.ContentType.JSON)
                .body("{\"messages\":[{\"role\":\"system\",\"content\":\"In the beginning\"},"
                        + "{\"role\":\"user\",\"content\":\"God created\"}],\"max_completion_tokens\":24,\"temperature\":0}")
                .post("/v1/chat/completions").then().statusCode(200).extract().jsonPath()
                .getString("choices[0].message.content"), texts[0], "the SDK sees what a plain HTTP client sees");

        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = c.chat().completions().createStreaming(ChatCompletionCreateParams.builder()
                .model("kjv-draft").addSystemMessage("In the beginning").addUserMessage("God created")
                .maxCompletionTokens(24).temperature(0.0).additionalBodyProperties(assisted(false)).build())) {
            s.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
        }
        assertEquals(texts[0], streamed.toString());
    }

    @Test
    void errorsAreOpenAiErrors() {
        BadRequestException e = Assertions.assertThrows(BadRequestException.class, () -> client().completions()
                .create(CompletionCreateParams.builder().model("kjv-draft").prompt("x").maxTokens(0).build()));
        assertEquals(400, e.statusCode());
        assertTrue(e.getMessage().contains("max_tokens"), e.getMessage());
    }
}
