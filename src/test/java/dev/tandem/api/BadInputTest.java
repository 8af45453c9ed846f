package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.anyOf;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.notNullValue;
import static org.hamcrest.Matchers.emptyOrNullString;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** Every bad request gets a 4xx with OpenAI's error JSON, and the service stays ready (on the bundled model). */
@QuarkusTest
class BadInputTest {

    @ParameterizedTest(name = "{0} -> {1} ({2})")
    @CsvSource(delimiter = '|', textBlock = """
            {"max_tokens":5}                                          | 400 | prompt
            {"prompt":null,"max_tokens":5}                            | 400 | prompt
            {"prompt":42}                                             | 400 | prompt
            {"prompt":["a","b"]}                                      | 400 | prompt
            {"prompt":[1, 99999]}                                     | 400 | prompt
            {"prompt":"hi","max_tokens":"5"}                          | 400 | max_tokens
            {"prompt":"hi","max_tokens":5.5}                          | 400 | max_tokens
            {"prompt":"hi","max_tokens":99999999999}                  | 400 | max_tokens
            {"prompt":"hi","temperature":"hot"}                       | 400 | temperature
            {"prompt":"hi","echo":"yes"}                              | 400 | echo
            {"prompt":"hi","seed":"x"}                                | 400 | seed
            {"prompt":"hi","max_tokens":0}                            | 400 | max_tokens
            {"prompt":"hi","max_tokens":-3}                           | 400 | max_tokens
            {"prompt":"hi","max_tokens":2049}                         | 400 | max_tokens
            {"prompt":"hi","max_tokens":1024}                         | 400 | max_tokens
            {"prompt":"hi","temperature":-0.1}                        | 400 | temperature
            {"prompt":"hi","top_p":0}                                 | 400 | top_p
            {"prompt":"hi","top_p":1.01}                              | 400 | top_p
            {"prompt":"hi","top_k":-1}                                | 400 | top_k
            {"prompt":"hi","min_p":1.5}                               | 400 | min_p
            {"prompt":"hi","repetition_penalty":0}                    | 400 | repetition_penalty
            {"prompt":"hi","presence_penalty":3}                      | 400 | presence_penalty
            {"prompt":"hi","frequency_penalty":-2.5}                  | 400 | frequency_penalty
            {"prompt":"hi","logprobs":-1}                             | 400 | logprobs
            {"prompt":"hi","logprobs":21}                             | 400 | logprobs
            {"prompt":"hi","stop":[1,2]}                              | 400 | stop
            {"prompt":"hi","stop":""}                                 | 400 | stop
            {"prompt":"hi","n":2}                                     | 400 | n
            {"prompt":"hi","stream":"yes"}                            | 400 | stream
            {"prompt":"hi","stream_options":{"include_usage":true}}   | 400 | stream_options
            {"prompt":"hi","model":"no-such-model"}                   | 404 | model
            {"prompt":"hi","logit_bias":{"5":1.0}}                    | 400 | logit_bias
            {"prompt":"hi","suffix":"amen"}                           | 400 | suffix
            {"prompt":"hi","best_of":2}                               | 400 | best_of
            {"prompt":true}                                           | 400 | prompt
            {"prompt":[]}                                             | 400 | prompt
            {"prompt":"hi","top_p":"0.5"}                             | 400 | top_p
            {"prompt":"hi","temperature":1e400}                       | 400 | temperature
            {"prompt":"hi","n":0}                                     | 400 | n
            {"prompt":"hi","logprobs":true}                           | 400 | logprobs
            {"prompt":"hi","assisted":true,"num_assistant_tokens":3.5} | 400 | num_assistant_tokens
            {"prompt":"hi","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]} | 400 | stop
            {"prompt":"hi","stop":{"a":1}}                            | 400 | stop
            {"prompt":{"text":"hi"}}                                  | 400 | prompt
            """)
    void refusedWithAnOpenAiError(String body, int status, String param) {
        given().contentType(ContentType.JSON).body(body).post("/v1/completions").then()
                .statusCode(status)
                .contentType(ContentType.JSON)
                .body("error.message", not(emptyOrNullString()))
                .body("error.message", NO_INTERNALS)
                .body("error.type", notNullValue())
                .body("error.param", equalTo(param));
    }

    /** Messages speak of the request, never of the Java types or libraries that read it. */
    static final org.hamcrest.Matcher<String> NO_INTERNALS = not(anyOf(containsString("java."), containsString("Exception"),
            containsString("com.fasterxml"), containsString("dev.tandem"), containsString("`")));

    @Test
    void promptLongerThanTheContext() {
        String longPrompt = "In the beginning God created the heaven and the earth. ".repeat(120);  // > the context (1024)
        given().contentType(ContentType.JSON).body("{\"prompt\":\"" + longPrompt + "\",\"max_tokens\":5}")
                .post("/v1/completions").then().statusCode(400)
                .body("error.code", equalTo("context_length_exceeded"))
                .body("error.param", equalTo("prompt"));
    }

    @Test
    void malformedJson() {
        for (String body : new String[] {"{\"prompt\": \"hi\"", "not json at all", "[1,2,3]", "{\"prompt\":\"hi\"} trailing"}) {
            given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().log().ifValidationFails()
                    .statusCode(400).contentType(ContentType.JSON).body("error.message", not(emptyOrNullString()))
                    .body("error.message", NO_INTERNALS);
        }
    }

    @Test
    void tenMegabyteBody() {
        String body = "{\"prompt\":\"" + "a".repeat(10 * 1024 * 1024) + "\"}";
        given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(413)
                .contentType(ContentType.JSON).body("error.code", equalTo("request_too_large"));
    }

    @Test
    void invalidUtf8() {
        byte[] body = "{\"prompt\":\"XX bad\",\"max_tokens\":2}".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        body[12] = (byte) 0xff;
        body[13] = (byte) 0xfe;
        given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(400)
                .contentType(ContentType.JSON).body("error.message", not(emptyOrNullString()));
    }

    @Test
    void emptyBody() {
        given().contentType(ContentType.JSON).post("/v1/completions").then()
                .statusCode(400).body("error.message", not(emptyOrNullString()));
    }

    @Test
    void wrongMediaTypeAndMethodAndRoute() {
        given().contentType(ContentType.TEXT).body("hi").post("/v1/completions").then()
                .statusCode(415).body("error.message", not(emptyOrNullString()));
        given().get("/v1/completions").then().statusCode(405).body("error.message", not(emptyOrNullString()));
        given().get("/v1/nothing-here").then().statusCode(404);
    }

    /** Jackson's messages name Java types (java.lang.Integer, the request records); the errors say what to send instead. */
    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', quoteCharacter = '^', textBlock = """
            {"prompt":"hi","max_tokens":"5"}               | v1/completions      | 'max_tokens' must be an integer, got a string
            {"prompt":"hi","temperature":[1]}              | v1/completions      | 'temperature' must be a number, got an array
            {"prompt":"hi","stream_options":"x"}           | v1/completions      | 'stream_options' must be an object, got a string
            {"prompt":"hi","logit_bias":5}                 | v1/completions      | 'logit_bias' must be an object, got an integer
            {"messages":5}                                 | v1/chat/completions | 'messages' must be an array, got an integer
            {"messages":[{"role":"user","content":"a","name":{}}]} | v1/chat/completions | 'messages[0].name' must be a string, got an object
            {"prompt":"hi","seed":18446744073709551621}    | v1/completions      | 'seed' is out of range
            {"inputs":"hi","parameters":{"stop":"x"}}      | generate            | 'parameters.stop' must be an array, got a string
            {"tokens":{}}                                  | detokenize          | 'tokens' must be an array, got an object
            [1]                                            | detokenize          | request body must be an object, got an array
            """)
    void wrongTypesAreNamedInJsonTerms(String body, String route, String message) {
        String answer = given().contentType(ContentType.JSON).body(body).post("/" + route).then()
                .statusCode(route.startsWith("v1/") ? 400 : 422).contentType(ContentType.JSON).extract().asString();
        org.junit.jupiter.api.Assertions.assertTrue(answer.contains(message), answer);
        org.junit.jupiter.api.Assertions.assertFalse(answer.matches("(?s).*(java\\.|dev\\.tandem|`|JsonToken).*"), answer);
    }

    /** A name twice in one object: parsers disagree on which value counts, and a late duplicate was a 500. */
    @ParameterizedTest(name = "{1} {0}")
    @CsvSource(delimiter = '|', textBlock = """
            {"prompt":"hi","max_tokens":2,"prompt":"ho"}            | v1/completions
            {"inputs":"hi","add_special_tokens":true,"inputs":{}}   | tokenize
            {"tokens":[1],"tokens":[2]}                             | detokenize
            {"inputs":"hi","parameters":{"max_new_tokens":2,"max_new_tokens":3}} | generate
            """)
    void duplicateNamesAreRefused(String body, String route) {
        given().contentType(ContentType.JSON).body(body).post("/" + route).then()
                .statusCode(route.startsWith("v1/") ? 400 : 422).contentType(ContentType.JSON)
                .body(route.startsWith("v1/") ? "error.message" : "error", org.hamcrest.Matchers.containsString("Duplicate field"));
    }

    @AfterEach
    void serviceStaysReady() {
        given().get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"Once\",\"max_tokens\":2,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200);
    }
}
