package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The built-in A/B experiment: sticky arms, explicit choices win, a per-arm report and metrics for both arms. */
@QuarkusTest
@TestProfile(ExperimentProfile.class)
class ExperimentTest {

    static Response complete(String extra, String key) {
        var spec = given().contentType(ContentType.JSON);
        if (key != null) {
            spec = spec.header("X-Experiment-Key", key);
        }
        return spec.body("{\"prompt\":\"And God said\",\"max_tokens\":30,\"temperature\":0" + extra + "}")
                .post("/v1/completions").then().statusCode(200).extract().response();
    }

    @Test
    void armsAreStickyExplicitChoicesWinAndBothArmsAreMeasured() {
        Map<String, Integer> sent = new HashMap<>();
        String text = null;
        for (int u = 0; u < 40; u++) {
            String user = "user-" + u;
            String arm = null;
            for (int i = 0; i < 3; i++) {
                Response r = complete(",\"user\":\"" + user + "\"", null);
                String a = r.header("X-Experiment-Arm");
                assertEquals(a, r.header("X-Decoding-Mode"), "the arm decides the mode");
                assertEquals(a, r.jsonPath().getString("decoding.mode"));
                if (arm != null) {
                    assertEquals(arm, a, "the same user stays in one arm");
                }
                arm = a;
                sent.merge(a, 1, Integer::sum);
                if (text == null) {
                    text = r.jsonPath().getString("choices[0].text");
                }
                assertEquals(text, r.jsonPath().getString("choices[0].text"), "both arms give the same greedy text");
            }
        }
        assertTrue(sent.getOrDefault("assisted", 0) > 15 && sent.getOrDefault("plain", 0) > 15, "both arms used: " + sent);

        Response keyed = complete(",\"user\":\"user-0\"", "another-key");
        String byKey = keyed.header("X-Experiment-Arm");
        assertEquals(byKey, complete("", "another-key").header("X-Experiment-Arm"), "X-Experiment-Key is sticky too");
        sent.merge(byKey, 2, Integer::sum);

        Response explicit = complete(",\"assisted\":false,\"user\":\"user-1\"", null);
        assertEquals("explicit", explicit.header("X-Experiment-Arm"));
        assertEquals("plain", explicit.header("X-Decoding-Mode"));

        var report = given().get("/v1/experiments/assisted").then().statusCode(200).extract().jsonPath();
        assertEquals(sent.get("assisted"), report.getInt("arms.assisted.requests"));
        assertEquals(sent.get("plain"), report.getInt("arms.plain.requests"));
        assertEquals(30L * sent.get("assisted"), report.getLong("arms.assisted.tokens"));
        assertTrue(report.getFloat("speedup.ci95_low") <= report.getFloat("speedup.estimate"));
        assertTrue(report.getFloat("speedup.estimate") <= report.getFloat("speedup.ci95_high"));

        // by load: one request at a time, so every request ran alone (load 1), and both arms are compared there
        assertEquals(1, report.getList("by_load").size(), "one load bucket: " + report.getList("by_load"));
        assertEquals("1", report.getString("by_load[0].load"));
        assertEquals(sent.get("assisted"), report.getInt("by_load[0].arms.assisted.requests"));
        assertEquals(sent.get("plain"), report.getInt("by_load[0].arms.plain.requests"));
        assertEquals(report.getFloat("arms.assisted.tokens_per_second") / report.getFloat("arms.plain.tokens_per_second"),
                report.getFloat("by_load[0].assisted_vs_plain.tokens_per_second_ratio"), 1e-4);
        assertEquals(report.getFloat("speedup.estimate"), report.getFloat("by_load[0].assisted_vs_plain.speedup.estimate"), 1e-6);

        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        assertEquals(30.0 * sent.get("assisted"), metric(metrics, "tandem_experiment_generation_tokens_total",
                "arm=\"assisted\",load=\"1\""), 0.001, "the experiment by load, for Prometheus");
        assertEquals(sent.get("plain"), metric(metrics, "tandem_experiment_inter_token_latency_seconds_count",
                "arm=\"plain\",load=\"1\""), 0.001);
        assertEquals(30.0 * sent.get("assisted"), metric(metrics, "tandem_generation_tokens_total", "arm=\"assisted\""), 0.001);
        assertEquals(30.0 * sent.get("plain"), metric(metrics, "tandem_generation_tokens_total", "arm=\"plain\""), 0.001);
        assertTrue(metric(metrics, "tandem_spec_decode_num_draft_tokens_total", "arm=\"assisted\"") > 0);
        assertTrue(metrics.contains("tandem_time_to_first_token_seconds_bucket"));
        assertTrue(metrics.contains("tandem_inter_token_latency_seconds_count"));
        assertTrue(metrics.contains("tandem_num_requests_running"));
    }

    /** Sum of a metric's samples whose labels contain {@code label}. */
    static double metric(String text, String name, String label) {
        double sum = 0;
        Matcher m = Pattern.compile("^" + name + "\\{([^}]*)\\} ([0-9.eE+-]+)$", Pattern.MULTILINE).matcher(text);
        while (m.find()) {
            if (m.group(1).contains(label)) {
                sum += Double.parseDouble(m.group(2));
            }
        }
        return sum;
    }
}
