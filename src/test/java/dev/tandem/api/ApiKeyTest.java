package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.containsString;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.io.IOException;
import java.net.URL;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * With tandem.security.api-keys set, every route but the open ones (health, metrics) needs
 * {@code Authorization: Bearer <key>}; without it a 401 in OpenAI's error format. Swagger UI is
 * switched on here too, to show that it is then behind the key like everything else.
 */
@QuarkusTest
@TestProfile(ApiKeyTest.TwoKeys.class)
class ApiKeyTest {
    public static class TwoKeys implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("tandem.security.api-keys", "key-one,key-two", "quarkus.swagger-ui.enabled", "true",
                    // the small bundled model, without a draft: a quick start
                    "tandem.target.model-dir", "models/kjv-draft", "tandem.draft.enabled", "false");
        }
    }

    @TestHTTPResource("/")
    URL server;

    @Test
    void noKeyIs401WithOpenAiError() {
        given().get("/v1/models").then().statusCode(401)
                .contentType(ContentType.JSON)
                .header("WWW-Authenticate", "Bearer")
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.code", equalTo("invalid_api_key"))
                .body("error.message", containsString("Authorization: Bearer"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"In\",\"max_tokens\":1}").post("/v1/completions")
                .then().statusCode(401).body("error.code", equalTo("invalid_api_key"));
    }

    @Test
    void wrongKeyIs401() {
        for (String auth : new String[] {"Bearer key-three", "Bearer key-on", "Bearer key-one2", "Basic a2V5LW9uZQ==",
                "key-one", "Bearer ", "Bearer"}) {
            given().header("Authorization", auth).get("/v1/models").then().statusCode(401)
                    .header("WWW-Authenticate", "Bearer")
                    .body("error.code", equalTo("invalid_api_key"))
                    .body("error.message", not(containsString("key-")));
        }
    }

    @Test
    void eitherKeyIsAccepted() {
        given().header("Authorization", "Bearer key-one").get("/v1/models").then().statusCode(200);
        given().header("Authorization", "bearer key-two").get("/v1/models").then().statusCode(200);
        given().header("Authorization", "Bearer key-two").contentType(ContentType.JSON)
                .body("{\"prompt\":\"In\",\"max_tokens\":1}").post("/v1/completions").then().statusCode(200);
    }

    @Test
    void tgiRoutesAnswerInTgiFormat() {
        given().contentType(ContentType.JSON).body("{\"inputs\":\"In\"}").post("/generate").then().statusCode(401)
                .header("WWW-Authenticate", "Bearer")
                .body("error_type", equalTo("authentication"));
    }

    @Test
    void healthAndMetricsStayOpen() {
        given().get("/q/health/ready").then().statusCode(200);
        given().get("/q/health/live").then().statusCode(200);
        given().get("/q/health").then().statusCode(200);
        given().get("/q/metrics").then().statusCode(200);
    }

    @Test
    void openApiAndSwaggerUiNeedTheKey() {
        given().get("/q/openapi").then().statusCode(401);
        given().get("/q/swagger-ui/").then().statusCode(401);
        given().header("Authorization", "Bearer key-one").get("/q/openapi").then().statusCode(200);
        given().header("Authorization", "Bearer key-one").get("/q/swagger-ui/").then().statusCode(200);
    }

    /** An open prefix does not open what a dot-segment path resolves to, nor a look-alike path. */
    @Test
    void openPathsCannotBeUsedToReachOthers() throws IOException {
        for (String path : new String[] {"/q/health/../../v1/models", "/q/health/%2E%2E/%2E%2E/v1/models",
                "/q/healthz", "//v1/models"}) {
            try (RawHttp http = new RawHttp(server, 10_000)) {
                http.send("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                RawHttp.Response r = http.read();
                assertEquals(401, r.status(), path + ": " + r.body());
            }
        }
    }
}
