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
 * worst-case KV cache exceeds the whole budget gets a 413 with the numbers (bundled pair, 33 MiB budget; the target
 * and the draft are slots graphs, whose sequences each reserve a full-width pool row).
 */
@QuarkusTest
@TestProfile(SmallKvBudgetProfile.class)
class MemoryApiTest {
    @Inject
    AdmissionControl admission;

    /** A prompt of 900 token ids (BOS, then 899 ordinary ids). */
    static String longPrompt() {
        StringBuilder b = new StringBuilder("[1");
        for (int i = 0; i < 899; i++) {
            b.append(',').append(100 + i);
        }
        return b.append(']').toString();
    }

    @Test
    void aRequestLargerThanTheBudgetGets413WithTheNumbers() {
        // The bundled target is a slots graph: a sequence reserves one pool row of 1024 positions (1024 x 16,384 =
        // 16,777,216 bytes) whatever its length, plus step rows of 4 x 4096 + 16 bytes, max(the largest feed, 8): the
        // prompt is fed in chunks of at most 64 tokens (tandem.scheduler.max-batched-tokens), a verification feeds 17.
        // A 900-token prompt + 124, assisted by the draft: target 16,777,216 + 64 x 16,400 = 17,826,816; the draft (also
        // a slots graph, 1,024 bytes per position) a row of 1024 x 1,024 = 1,048,576 and, as under the auto policy it
        // may catch up on the whole sequence in one feed, 1024 step rows of 16,400 = 16,793,600; total 35,668,992 >
        // 34,603,008.
        String body = "{\"prompt\":" + longPrompt() + ",\"max_tokens\":124,\"temperature\":0,\"assisted\":true,"
                + "\"assistant\":\"draft\"}";
        given().contentType(ContentType.JSON).body(body).post("/v1/completions").then().statusCode(413)
                .body("error.code", equalTo("kv_cache_budget_exceeded"))
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.message", containsString("needs 35668992 bytes"))
                .body("error.message", containsString("1024 tokens (prompt 900 + max_tokens 124) on kjv-target and its draft"
                        + " kjv-draft"))
                .body("error.message", containsString("budget (tandem.memory.budget) is 34603008 bytes"));
        // streamed, and on the TGI route: refused before any event, in each route's error format
        given().contentType(ContentType.JSON).body(body.replace("}", ",\"stream\":true}")).post("/v1/completions")
                .then().statusCode(413).body("error.code", equalTo("kv_cache_budget_exceeded"));
        String verses = "And God said, Let there be light: and there was light. ".repeat(60);  // 842 tokens
        given().contentType(ContentType.JSON).body("{\"inputs\":\"" + verses + "\",\"parameters\":{\"max_new_tokens\":182,"
                + "\"assisted\":true,\"assistant\":\"draft\"}}")
                .post("/generate").then().statusCode(413).body("error_type", equalTo("validation"))
                .body("error", containsString("of KV cache for"));
        // the same long prompt decoded plainly fits (17,826,816 bytes: one chunk's rows, not the prompt's 900), as do short
        // requests (4 + 8 tokens: 16,777,216 + 8 x 16,400 = 16,908,416 bytes), also assisted by the draft
        given().contentType(ContentType.JSON).body("{\"prompt\":" + longPrompt() + ",\"max_tokens\":2,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200);
        given().contentType(ContentType.JSON).body("{\"prompt\":[1,100,200,300],\"max_tokens\":8,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200);
        given().contentType(ContentType.JSON).body("{\"prompt\":\"And God said\",\"max_tokens\":8,\"temperature\":0,"
                + "\"assisted\":true,\"assistant\":\"draft\"}").post("/v1/completions").then().statusCode(200)
                .body("decoding.assistant", equalTo("draft"));
        assertEquals(0, admission.reservedKvBytes(), "released when the generations ended");
        assertEquals(0, admission.running());
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        assertTrue(metrics.contains("tandem_kv_cache_budget_bytes 3.4603008E7") || metrics.contains("tandem_kv_cache_budget_bytes 34603008"),
                "budget gauge");
        assertTrue(metrics.contains("tandem_kv_cache_reserved_bytes 0"), "reserved gauge");
    }

    @Test
    void concurrentLoadNeverReservesMoreThanTheBudget() throws Exception {
        // 16 clients at once, plain and assisted, each reserving 16,908,416 bytes (plain; 200 tokens: 16,777,216 + 8
        // step rows, the same) or 18,826,192 (assisted: the
        // target's row with 17 step rows, 17,056,016, and the draft's row with 44 step rows, as it may catch up on the
        // whole 44-token sequence, 1,770,176): at most 2 fit in 33 MiB, the rest wait in the queue; the scheduler batches
        // what is admitted
        var pool = java.util.concurrent.Executors.newFixedThreadPool(16);
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
            // four long plain requests first (two fit at once, whatever the arrival order of the rest: a plain and an
            // assisted one do not, so with the mix alone two plains had to arrive next to each other, and on a fast
            // graph the 40-token requests often ran one at a time), then the mix
            for (int i = 0; i < 16; i++) {
                String assisted = i < 4 || i % 2 == 0 ? "" : ",\"assisted\":true";
                int maxTokens = i < 4 ? 200 : 40;
                String body = "{\"prompt\":[1,100,200,300],\"max_tokens\":" + maxTokens + ",\"temperature\":0,\"ignore_eos\":true"
                        + assisted + "}";
                futures.add(pool.submit(() -> statuses.add(given().contentType(ContentType.JSON).body(body)
                        .post("/v1/completions").then().extract().statusCode())));
                if (i == 3) {  // the mix arrives once the long plain ones run
                    long until = System.nanoTime() + 10_000_000_000L;
                    while (admission.running() == 0 && System.nanoTime() < until) {
                        Thread.onSpinWait();
                    }
                }
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
        assertTrue(peak.get() > 0 && peak.get() <= 34_603_008, "peak reserved " + peak.get() + " bytes");
        assertTrue(peak.get() >= 2 * 16_908_416, "several ran at once: peak " + peak.get());
        assertEquals(0, admission.reservedKvBytes(), "released when the generations ended");
    }

    @Test
    void retrieveReportsTheMemoryPlanOfTargetAndDraft() {
        given().get("/v1/models/kjv-target").then().statusCode(200)
                .body("id", equalTo("kjv-target")).body("object", equalTo("model")).body("role", equalTo("target"))
                .body("draft", equalTo("kjv-draft"))
                .body("memory.weights.parameters", equalTo(25_698_816))
                .body("memory.weights.parameters_from_config", equalTo(25_698_816))
                // ONNX Runtime serves model_optimized.onnx: the output layer's copy of the embedding is 4-bit (512 x 4096 / 2)
                .body("memory.weights.tied_copy_bytes", equalTo(1_048_576))
                .body("memory.weights.by_precision.fp16", equalTo(51_397_632))
                .body("memory.kv_cache.shape_source", equalTo("engine"))
                .body("memory.kv_cache.dtype", equalTo("float32"))
                .body("memory.kv_cache.bytes_per_token", equalTo(16_384))
                .body("memory.kv_cache.bytes_per_full_context", equalTo(16_777_216))
                // a slot-pool row (16,777,216) and, at worst (a prompt of 64 tokens or more, fed in chunks of at most 64),
                // 64 step rows of 16,400 bytes
                .body("memory.kv_cache.allocated_bytes_per_full_context", equalTo(17_826_816))
                .body("memory.kv_cache.allocated_kv_buffer_bytes", equalTo(16_777_216))
                .body("memory.kv_cache.worst_case_prompt_tokens", equalTo(64))
                .body("memory.kv_cache.allocation", containsString("slot pool"))
                .body("memory.kv_cache.allocation", containsString("chunks of up to 64 tokens"))
                .body("memory.budget.bytes", equalTo(34_603_008))
                // 33 MiB holds one full-context sequence as allocated, 2 in theory, none with its draft (+ 17,842,176)
                .body("memory.budget.max_full_context_sequences", equalTo(1))
                .body("memory.budget.max_full_context_sequences_theoretical", equalTo(2))
                .body("memory.budget.max_full_context_sequences_with_draft", equalTo(0));
        given().get("/v1/models/kjv-draft").then().statusCode(200)
                .body("role", equalTo("draft")).body("assisted_decoding", equalTo(false)).body("draft", nullValue())
                .body("memory.weights.parameters", equalTo(893_568))
                .body("memory.kv_cache.bytes_per_token", equalTo(1024))
                // a slots graph: a pool row of 1024 positions (1,048,576) and 1024 step rows of 16,400 bytes (under the
                // auto policy the draft may catch up on a whole sequence in one feed)
                .body("memory.kv_cache.allocated_bytes_per_full_context", equalTo(17_842_176))
                .body("memory.kv_cache.allocation", containsString("the prompt fed in one call"))
                .body("memory.budget.max_full_context_sequences", equalTo(1));  // 34,603,008 / 17,842,176
        given().get("/v1/models/no-such-model").then().statusCode(404)
                .body("error.code", equalTo("model_not_found")).body("error.param", equalTo("model"));
    }
}
