package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.notNullValue;

import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/** Startup, readiness and liveness say what they checked. */
@QuarkusTest
class HealthTest {
    @Test
    void probes() {
        given().get("/q/health/started").then().statusCode(200).body("status", equalTo("UP"))
                .body("checks.find { it.name == 'startup' }.data.warm_up_ms", notNullValue());
        given().get("/q/health/ready").then().statusCode(200)
                .body("checks.find { it.name == 'models' }.data.last_forward_pass_ms_ago", notNullValue());
        given().get("/q/health/live").then().statusCode(200)
                .body("checks.find { it.name == 'decoding-watchdog' }.status", equalTo("UP"));
    }
}
