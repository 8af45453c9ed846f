package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The scheduler's per-step metrics at /q/metrics add up to what concurrent requests got: vLLM's tokens per step
 * ({@code iteration_tokens_total}) sum to their prompt plus generated tokens, the decode sequences and candidates per
 * step to their decode steps and the candidates their {@code decoding} objects report.
 */
@QuarkusTest
class StepMetricsTest {
    static final String[] PROMPTS = {"And God said", "In the beginning", "Blessed are the", "The LORD is my",
            "And it came to pass", "Thus saith the LORD", "Hear, O Israel", "And Jesus answered"};

    static String metrics() {
        return given().get("/q/metrics").then().statusCode(200).extract().asString();
    }

    static double metric(String text, String name) {
        return ExperimentTest.metric(text, name, "model_name=");
    }

    @Test
    void stepMetricsAddUpToWhatConcurrentRequestsGot() throws Exception {
        String before = metrics();
        List<Future<JsonPath>> sent = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(PROMPTS.length);
        try {
            for (int i = 0; i < PROMPTS.length; i++) {
                String assist = i % 2 == 0 ? ",\"assisted\":false" : ",\"assisted\":true,\"num_assistant_tokens\":3";
                String body = "{\"prompt\":\"" + PROMPTS[i] + "\",\"max_tokens\":40,\"temperature\":0" + assist + "}";
                sent.add(pool.submit(() -> given().contentType(ContentType.JSON).body(body).post("/v1/completions")
                        .then().statusCode(200).extract().jsonPath()));
            }
            long prompt = 0;
            long generated = 0;
            long decodeSteps = 0;
            long candidates = 0;
            for (Future<JsonPath> f : sent) {
                JsonPath r = f.get();
                int completion = r.getInt("usage.completion_tokens");
                prompt += r.getInt("usage.prompt_tokens");
                generated += completion;
                if ("assisted".equals(r.getString("decoding.mode"))) {
                    int steps = r.getInt("decoding.num_decode_steps");
                    decodeSteps += steps;
                    candidates += Math.round(r.getDouble("decoding.mean_candidates_per_step") * steps);
                } else {
                    decodeSteps += completion - 1;  // a plain step emits one token; the first comes from the prompt
                }
            }
            String after = metrics();
            assertEquals(prompt + generated, delta(before, after, "tandem_iteration_tokens_total_sum"), 1e-9,
                    "tokens per step (prompt tokens fed plus tokens generated) sum to the requests' tokens");
            assertEquals(prompt, delta(before, after, "tandem_step_prompt_tokens_sum"), 1e-9, "prompt tokens fed");
            assertEquals(generated, delta(before, after, "tandem_step_emitted_tokens_total"), 1e-9, "tokens emitted");
            assertEquals(decodeSteps, delta(before, after, "tandem_step_decode_sequences_total"), 1e-9, "decode steps");
            assertTrue(candidates > 0);
            assertEquals(candidates, delta(before, after, "tandem_step_candidates_sum"), 1e-9, "candidates proposed");
            assertEquals(prompt + decodeSteps + candidates, delta(before, after, "tandem_step_fed_tokens_sum"), 1e-9,
                    "tokens fed the target");

            double steps = delta(before, after, "tandem_step_sequences_count");
            double sequences = delta(before, after, "tandem_step_sequences_sum");
            assertEquals(steps, delta(before, after, "tandem_step_duration_seconds_count"), 1e-9, "one duration per step");
            assertEquals(steps, delta(before, after, "tandem_iteration_tokens_total_count"), 1e-9, "one token count per step");
            assertTrue(steps > 0 && sequences >= steps && sequences <= PROMPTS.length * steps,
                    "1 to " + PROMPTS.length + " sequences per step: " + sequences + " over " + steps + " steps");
            assertTrue(sequences > steps, "concurrent requests shared steps: " + sequences + " over " + steps + " steps");
            assertTrue(delta(before, after, "tandem_step_duration_seconds_sum") > 0);
            assertTrue(after.contains("tandem_step_sequences_bucket{"), "sequences per step is a histogram");
            assertTrue(after.contains("tandem_iteration_tokens_total_bucket{"), "tokens per step is a histogram");
            assertEquals(0, metric(after, "tandem_scheduler_running_sequences"), "nothing runs any more");
            assertTrue(after.contains("tandem_scheduler_running_sequences{"));
            assertTrue(ExperimentTest.metric(after, "tandem_request_decode_time_seconds_count", "decode_mode=") > 0);
        } finally {
            pool.shutdownNow();
        }
    }

    private static double delta(String before, String after, String name) {
        return metric(after, name) - metric(before, name);
    }
}
