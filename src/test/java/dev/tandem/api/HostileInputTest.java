package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.emptyOrNullString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.generation.InvalidLogitsException;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Values at the edges of what JSON can carry, on every route that takes them: extreme penalties,
 * token ids beyond 64 bits, UTF-8 that Jackson alone would decode. Each is a 400 (422 on the TGI
 * routes) naming the field, never a 500 and never a silently different request.
 */
@QuarkusTest
class HostileInputTest {

    /** A repetition penalty whose float is 0 or denormal made the logits infinite: a 500 on every route. */
    @ParameterizedTest
    @ValueSource(strings = {"1e-300", "1e-40", "0.001", "101", "1e300"})
    void repetitionPenaltyOutsideItsRangeIsRefusedOnEveryRoute(String value) {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":4,\"repetition_penalty\":" + value + "}")
                .post("/v1/completions").then().statusCode(400).body("error.param", equalTo("repetition_penalty"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":4,\"stream\":true,\"repetition_penalty\":"
                + value + "}").post("/v1/completions").then().statusCode(400).body("error.param", equalTo("repetition_penalty"));
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"And God said\"}],\"max_tokens\":4,"
                + "\"repetition_penalty\":" + value + "}").post("/v1/chat/completions").then().statusCode(400)
                .body("error.param", equalTo("repetition_penalty"));
        for (String route : new String[] {"/generate", "/generate_stream"}) {
            given().contentType(ContentType.JSON).body("{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":4,"
                    + "\"do_sample\":true,\"repetition_penalty\":" + value + "}}").post(route).then().statusCode(422)
                    .body("error", containsString("repetition_penalty")).body("error_type", equalTo("validation"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"0.01", "0.5", "1.3", "100"})
    void repetitionPenaltyInsideItsRangeGenerates(String value) {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":4,\"repetition_penalty\":" + value + "}")
                .post("/v1/completions").then().statusCode(200);
        given().contentType(ContentType.JSON).body("{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":4,"
                + "\"do_sample\":true,\"repetition_penalty\":" + value + "}}").post("/generate").then().statusCode(200);
    }

    @Test
    void penaltiesAtOpenAisBoundsGenerate() {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":4,\"presence_penalty\":-2,"
                + "\"frequency_penalty\":2,\"temperature\":0.00001}").post("/v1/completions").then().statusCode(200);
    }

    /** 2^64 + 5 was read as 5 (Jackson's asLong() wraps a BigInteger). */
    @ParameterizedTest
    @ValueSource(strings = {"18446744073709551621", "9223372036854775807", "4294967301", "2147483648", "-1", "4096",
            "-18446744073709551621"})
    void tokenIdsBeyondTheVocabularyAreRefused(String id) {
        given().contentType(ContentType.JSON).body("{\"prompt\":[1, " + id + "],\"max_tokens\":2}").post("/v1/completions").then()
                .statusCode(400).body("error.param", equalTo("prompt"))
                .body("error.message", containsString("token id " + id + " at prompt[1] is outside the vocabulary"));
        given().contentType(ContentType.JSON).body("{\"tokens\":[1, " + id + "]}").post("/detokenize").then()
                .statusCode(422).body("error", not(emptyOrNullString())).body("error_type", equalTo("validation"));
    }

    @Test
    void tokenIdsInsideTheVocabularyGenerate() {
        given().contentType(ContentType.JSON).body("{\"prompt\":[1, 4095],\"max_tokens\":2}").post("/v1/completions").then()
                .statusCode(200);
    }

    static byte[] withBytes(String before, byte[] bytes, String after) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(before.getBytes(StandardCharsets.UTF_8));
        b.writeBytes(bytes);
        b.writeBytes(after.getBytes(StandardCharsets.UTF_8));
        return b.toByteArray();
    }

    /** Overlong forms, UTF-8-encoded surrogates and code points beyond U+10FFFF are not UTF-8. */
    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource(delimiter = '|', textBlock = """
            C0 AF          | /v1/completions      | 400
            E0 80 AF       | /v1/completions      | 400
            F0 80 80 AF    | /v1/completions      | 400
            ED A0 80       | /v1/completions      | 400
            F4 90 80 80    | /v1/completions      | 400
            C0 AF          | /v1/chat/completions | 400
            E0 80 AF       | /generate            | 422
            ED A0 80       | /generate_stream     | 422
            F4 90 80 80    | /tokenize            | 422
            C0 AF          | /detokenize          | 422
            """)
    void malformedUtf8IsRefused(String hex, String route, int status) {
        byte[] bad = StrictUtf8Test.hex(hex);
        byte[] body = switch (route) {
            case "/v1/completions" -> withBytes("{\"prompt\":\"And God said", bad, "\",\"max_tokens\":2}");
            case "/v1/chat/completions" -> withBytes("{\"messages\":[{\"role\":\"user\",\"content\":\"a", bad, "\"}],\"max_tokens\":2}");
            case "/detokenize" -> withBytes("{\"tokens\":[1],\"x\":\"", bad, "\"}");
            default -> withBytes("{\"inputs\":\"And God said", bad, "\",\"parameters\":{\"max_new_tokens\":2}}");
        };
        var response = given().contentType(ContentType.JSON).body(body).post(route).then().statusCode(status);
        if (status == 400) {
            response.body("error.message", containsString("UTF-8")).body("error.code", equalTo("invalid_json"));
        } else {
            response.body("error", containsString("UTF-8")).body("error_type", equalTo("validation"));
        }
    }

    @Test
    void wellFormedMultiByteUtf8IsAccepted() {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"naïve café ✓ 😀 \uDBFF\uDFFF\",\"max_tokens\":2}"
                .getBytes(StandardCharsets.UTF_8)).post("/v1/completions").then().statusCode(200);
    }

    @Inject
    ErrorMappers errors;

    /** A model's NaN reaches the client as a server error that says what happened (it was an index -1 error). */
    @Test
    void nonFiniteLogitsAreAServerErrorThatBlamesTheModel() {
        var r = errors.invalidLogits(new InvalidLogitsException(
                "the model produced a non-finite score (NaN) for token 7, so no token can be chosen"), null);
        assertEquals(500, r.getStatus());
        ErrorBody.Detail d = ((ErrorBody) r.getEntity()).error();
        assertEquals("invalid_model_output", d.code());
        assertTrue(d.message().contains("non-finite score (NaN) for token 7")
                && d.message().contains("fault of the served model") && !d.message().contains("Exception"), d.message());
    }

    @AfterEach
    void serviceStaysReady() {
        given().get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"));
    }
}
