package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.serving.AdmissionControl;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /v1/models/{id}} reports the memory plan of the target and the draft, and a request whose
 * worst-case KV cache exceeds the whole budget gets a 413 with the numbers (bundled pair, 8 MiB budget).
 */
@QuarkusTest
@TestProfile(SmallKvBudgetProfile.class)
class MemoryApiTest {
    @Inject
    AdmissionControl admission;

    @Test
    void aRequestLargerThanTheBudgetGets413WithTheNumbers() {
        // 4 prompt tokens + 200 = 204 tokens on kjv-target (16,384 bytes per token, context 256): capacity 64 -> 128 -> 256,
        // peaking when the 128 and 256 regions coexist, twice (ping-pong): 2 x 384 x 16,384 = 12,582,912 bytes; 8 step
        // rows of 4 x 4096 + 8 bytes = 131,136. Total 12,714,048 > 8,388,608.
        String body = "{\"prompt\":[1,100,200,300],\"max_tokens\":200,\"temperature\":0}";
        given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(413)
                .body("error.code", equalTo("kv_cache_budget_exceeded"))
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.message", containsString("needs 12714048 bytes"))
                .body("error.message", containsString("204 tokens (prompt 4 + max_tokens 200) on kjv-target"))
                .body("error.message", containsString("budget (tandem.memory.budget) is 8388608 bytes"));
        // streamed, and on the TGI route: refused before any event, in each route's error format
        given().contentType(ContentType.JSON).body(body.replace("}", ",\"stream\":true}")).post("/v1/completions")
                .then().statusCode(413).body("error.code", equalTo("kv_cache_budget_exceeded"));
        given().contentType(ContentType.JSON).body("{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":200}}")
                .post("/generate").then().statusCode(413).body("error_type", equalTo("validation"))
                .body("error", containsString("of KV cache for"));
        // a short request fits (2 x 64 x 16,384 + 8 x 16,392 = 2,228,288 bytes), also assisted by the draft
        given().contentType(ContentType.JSON).body("{\"prompt\":[1,100,200,300],\"max_tokens\":8,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200);
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":8,\"temperature\":0,"
                + "\"assisted\":true,\"assistant\":\"draft\"}").post("/v1/completions").then().statusCode(200)
                .body("decoding.assistant", equalTo("draft"));
        assertEquals(0, admission.reservedKvBytes(), "released when the generations ended");
        assertEquals(0, admission.running());
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        assertTrue(metrics.contains("tandem_kv_cache_budget_bytes 8388608") || metrics.contains("tandem_kv_cache_budget_bytes 8.388608E6"),
                "budget gauge");
        assertTrue(metrics.contains("tandem_kv_cache_reserved_bytes 0"), "reserved gauge");
    }

    @Test
    void concurrentLoadNeverReservesMoreThanTheBudget() throws Exception {
        // 12 clients at once, plain and assisted, each reserving 2,228,288 bytes or more: at most 3 fit in 8 MiB, the
        // rest wait in the queue; the scheduler batches what is admitted
        var pool = java.util.concurrent.Executors.newFixedThreadPool(12);
        var statuses = java.util.Collections.synchronizedList(new java.util.ArrayList<Integer>());
        java.util.concurrent.atomic.AtomicLong peak = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        Thread sampler = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                peak.accumulateAndGet(admission.reservedKvBytes(), Math::max);
                Thread.onSpinWait();
            }
        });
        try {
            var futures = new java.util.ArrayList<java.util.concurrent.Future<?>>();
            for (int i = 0; i < 12; i++) {
                String assisted = i % 2 == 0 ? "" : ",\"assisted\":true";
                String body = "{\"prompt\":[1,100,200,300],\"max_tokens\":40,\"temperature\":0,\"ignore_eos\":true" + assisted + "}";
                futures.add(pool.submit(() -> statuses.add(given().contentType(ContentType.JSON).body(body)
                        .post("/v1/completions").then().extract().statusCode())));
            }
            for (var f : futures) {
                f.get(120, java.util.concurrent.TimeUnit.SECONDS);
            }
        } finally {
            done.set(true);
            sampler.join();
            pool.shutdownNow();
        }
        assertTrue(statuses.stream().allMatch(s -> s == 200), "every request ran (some after waiting): " + statuses);
        assertTrue(peak.get() > 0 && peak.get() <= 8_388_608, "peak reserved " + peak.get() + " bytes");
        assertTrue(peak.get() >= 2 * 2_228_288, "several ran at once: peak " + peak.get());
        assertEquals(0, admission.reservedKvBytes(), "released when the generations ended");
    }

    @Test
    void retrieveReportsTheMemoryPlanOfTargetAndDraft() {
        given().get("/v1/models/kjv-target").then().statusCode(200)
                .body("id", equalTo("kjv-target")).body("object", equalTo("model")).body("role", equalTo("target"))
                .body("draft", equalTo("kjv-draft"))
                .body("memory.weights.parameters", equalTo(25_698_816))
                .body("memory.weights.parameters_from_config", equalTo(25_698_816))
                .body("memory.weights.tied_copy_bytes", equalTo(2_097_152))
                .body("memory.weights.by_precision.fp16", equalTo(51_397_632))
                .body("memory.kv_cache.shape_source", equalTo("engine"))
                .body("memory.kv_cache.dtype", equalTo("float32"))
                .body("memory.kv_cache.bytes_per_token", equalTo(16_384))
                .body("memory.kv_cache.bytes_per_full_context", equalTo(4_194_304))
                .body("memory.kv_cache.allocated_bytes_per_full_context", equalTo(20_924_408))
                .body("memory.budget.bytes", equalTo(8_388_608))
                // 8 MiB holds no full-context sequence as allocated (a full-context request gets 413), 2 in theory
                .body("memory.budget.max_full_context_sequences", equalTo(0))
                .body("memory.budget.max_full_context_sequences_theoretical", equalTo(2))
                .body("memory.budget.max_full_context_sequences_with_draft", equalTo(0));
        given().get("/v1/models/kjv-draft").then().statusCode(200)
                .body("role", equalTo("draft")).body("assisted_decoding", equalTo(false)).body("draft", nullValue())
                .body("memory.weights.parameters", equalTo(893_568))
                .body("memory.kv_cache.bytes_per_token", equalTo(1024))
                .body("memory.budget.max_full_context_sequences", equalTo(1));  // 8,388,608 / 5,226,488
        given().get("/v1/models/no-such-model").then().statusCode(404)
                .body("error.code", equalTo("model_not_found")).body("error.param", equalTo("model"));
    }
}
