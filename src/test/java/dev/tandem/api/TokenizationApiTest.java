package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.tandem.serving.ModelRegistry;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * Inspecting the prompt a chat is fed: TGI's {@code POST /chat_tokenize}, and vLLM's {@code POST /tokenize}
 * and {@code POST /detokenize}, which share their paths with TGI's routes (told apart by the body).
 */
@QuarkusTest
class TokenizationApiTest {
    /** The bundled template makes the messages the verses of a passage and starts a verse for the answer. */
    static final String CHAT = "{\"messages\":[{\"role\":\"system\",\"content\":\"And God said,\"},"
            + "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Let there be\"}]}]";
    static final String RENDERED = "<s>And God said,\nLet there be\n";

    @Inject
    ModelRegistry registry;

    static JsonPath post(String path, String body) {
        return given().contentType(ContentType.JSON).body(body).post(path).then().statusCode(200).extract().jsonPath();
    }

    static List<Integer> ids(JsonPath tgiTokens, String path) {
        return tgiTokens.getList(path + "id", Integer.class);
    }

    // ---- TGI's /chat_tokenize ----

    @Test
    void chatTokenizeShowsWhatAChatCompletionIsFed() {
        JsonPath r = post("/chat_tokenize", CHAT + ",\"max_tokens\":3,\"temperature\":0}");
        assertEquals(RENDERED, r.getString("templated_text"));
        List<Integer> ids = ids(r, "tokenize_response.");
        int[] fed = registry.target().tokenizer().encode(RENDERED);  // what the chat route encodes: no BOS on top
        assertEquals(java.util.Arrays.stream(fed).boxed().toList(), ids);
        int promptTokens = post("/v1/chat/completions", CHAT + ",\"max_tokens\":1,\"temperature\":0}").getInt("usage.prompt_tokens");
        assertEquals(ids.size(), promptTokens);
        // each token's span is where it sits in the templated text
        List<Map<String, Object>> tokens = r.getList("tokenize_response");
        Map<String, Object> last = tokens.getLast();
        assertEquals(RENDERED.length(), last.get("stop"));
    }

    @Test
    void chatTokenizeAnswersInTgisErrorFormat() {
        given().contentType(ContentType.JSON).body("{\"messages\":[]}").post("/chat_tokenize").then().statusCode(422)
                .body("error_type", equalTo("validation")).body("error", containsString("messages"));
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":5}]}").post("/chat_tokenize")
                .then().statusCode(422).body("error_type", equalTo("validation"));
        given().contentType(ContentType.JSON).body(CHAT + ",\"model\":\"nope\"}").post("/chat_tokenize").then().statusCode(404)
                .body("error", containsString("nope"));
    }

    // ---- vLLM's /tokenize ----

    @Test
    void vllmTokenizeOfAPromptIsTheTokenizersEncoding() {
        JsonPath tgi = post("/tokenize", "{\"inputs\":\"And God said\"}");
        JsonPath vllm = post("/tokenize", "{\"model\":\"kjv-target\",\"prompt\":\"And God said\"}");
        assertEquals(ids(tgi, ""), vllm.getList("tokens", Integer.class));
        assertEquals(vllm.getList("tokens").size(), vllm.getInt("count"));
        assertEquals(registry.target().maxContext(), vllm.getInt("max_model_len"));
        assertNull(vllm.get("token_strs"));
        assertEquals(1, vllm.getInt("tokens[0]"), "BOS, add_special_tokens being true by default");
        JsonPath plain = post("/tokenize", "{\"prompt\":\"And God said\",\"add_special_tokens\":false,\"return_token_strs\":true}");
        assertEquals(ids(tgi, "").subList(1, ids(tgi, "").size()), plain.getList("tokens", Integer.class));
        assertEquals(tgi.getList("text").subList(1, ids(tgi, "").size()), plain.getList("token_strs"));
    }

    @Test
    void vllmTokenizeOfMessagesIsTheChatsPrompt() {
        List<Integer> chat = ids(post("/chat_tokenize", CHAT + "}"), "tokenize_response.");
        JsonPath vllm = post("/tokenize", CHAT + ",\"return_token_strs\":true}");
        assertEquals(chat, vllm.getList("tokens", Integer.class), "add_generation_prompt is true by default, as a chat renders");
        assertEquals("<s>", vllm.getString("token_strs[0]"), "the template writes BOS; none is added on top");

        JsonPath noPrompt = post("/tokenize", CHAT + ",\"add_generation_prompt\":false}");
        assertEquals(registry.target().tokenizer().encode("<s>And God said,\nLet there be").length, noPrompt.getInt("count"));

        JsonPath bos = post("/tokenize", CHAT + ",\"add_special_tokens\":true}");
        assertEquals(chat.size() + 1, bos.getInt("count"));
        assertEquals(List.of(1, 1), bos.getList("tokens", Integer.class).subList(0, 2), "BOS added on top of the template's");

        // the template trims the last message, so the prompt ends after its text
        JsonPath cont = post("/tokenize", "{\"messages\":[{\"role\":\"user\",\"content\":\"In the beginning\"},"
                + "{\"role\":\"assistant\",\"content\":\"God created \"}],\"add_generation_prompt\":false,\"continue_final_message\":true}");
        assertEquals(java.util.Arrays.stream(registry.target().tokenizer().encode("<s>In the beginning\nGod created")).boxed().toList(),
                cont.getList("tokens", Integer.class));
    }

    /** vLLM's fields that Tandem does not honour are refused by name, in OpenAI's error format. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            {"messages":[{"role":"user","content":"x"}],"chat_template":"{{ 1 }}"}                 | chat_template
            {"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":{"enable_thinking":false}} | chat_template_kwargs
            {"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}              | tools
            {"messages":[{"role":"user","content":"x"}],"mm_processor_kwargs":{"a":1}}             | mm_processor_kwargs
            {"messages":[{"role":"user","content":"x"}],"temperature":0}                           | temperature
            {"prompt":"x","add_generation_prompt":true}                                            | add_generation_prompt
            {"prompt":"x","messages":[{"role":"user","content":"x"}]}                              | prompt
            {"messages":[{"role":"user","content":"x"}],"continue_final_message":true}              | messages
            {"messages":[{"role":"tool","content":"x"}]}                                           | messages[0].role
            {"messages":[]}                                                                         | messages
            {"prompt":5}                                                                            | prompt
            {"messages":[{"role":"user","content":"x"}],"add_special_tokens":"yes"}                 | add_special_tokens
            """)
    void vllmTokenizeRefusesWhatItCannotHonour(String body, String param) {
        given().contentType(ContentType.JSON).body(body).post("/tokenize").then().statusCode(400)
                .body("error.param", equalTo(param)).body("error.type", equalTo("invalid_request_error"))
                .body("error_type", nullValue());
    }

    @Test
    void vllmTokenizeOfAnUnknownModelIsOpenAisNotFound() {
        given().contentType(ContentType.JSON).body("{\"model\":\"nope\",\"prompt\":\"x\"}").post("/tokenize").then().statusCode(404)
                .body("error.code", equalTo("model_not_found"));
    }

    @Test
    void emptyOrUnsetRefusedFieldsAskForNothing() {
        JsonPath r = post("/tokenize", CHAT + ",\"tools\":[],\"chat_template_kwargs\":{},\"chat_template\":null}");
        assertEquals(ids(post("/chat_tokenize", CHAT + "}"), "tokenize_response."), r.getList("tokens", Integer.class));
    }

    @Test
    void tgisTokenizeIsUnchanged() {
        given().contentType(ContentType.JSON).body("{\"add_special_tokens\":true}").post("/tokenize").then().statusCode(422)
                .body("error", containsString("inputs")).body("error_type", equalTo("validation"));
        List<Object> spans = post("/tokenize", "{\"inputs\":\"And\",\"add_special_tokens\":false}").getList("$");
        assertEquals(1, spans.size());
    }

    // ---- /detokenize: TGI-style without model, vLLM's with ----

    @Test
    void detokenizeWithAModelIsVllms() {
        List<Integer> ids = post("/tokenize", "{\"prompt\":\"And God said\"}").getList("tokens", Integer.class);
        JsonPath vllm = post("/detokenize", "{\"model\":\"kjv-target\",\"tokens\":" + ids + "}");
        assertEquals("<s> And God said", vllm.getString("prompt"), "special tokens written out, as Hugging Face's decode does");
        assertNull(vllm.get("text"));
        JsonPath tgi = post("/detokenize", "{\"tokens\":" + ids + "}");
        assertEquals("And God said", tgi.getString("text"));

        given().contentType(ContentType.JSON).body("{\"model\":\"kjv-target\",\"tokens\":[-1]}").post("/detokenize").then()
                .statusCode(400).body("error.param", equalTo("tokens")).body("error.message", containsString("tokens[0]"));
        given().contentType(ContentType.JSON).body("{\"tokens\":[-1]}").post("/detokenize").then()
                .statusCode(422).body("error_type", equalTo("validation"));
    }
}
