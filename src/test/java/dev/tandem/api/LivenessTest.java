package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.startsWith;

import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.SamplingParams;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.serving.GenerationService;
import dev.tandem.serving.ModelRegistry;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Liveness goes DOWN, saying why, while a generation makes no decoding step; and UP again after. */
@QuarkusTest
@TestProfile(WedgedProfile.class)
class LivenessTest {
    @Inject
    GenerationService generation;

    @Inject
    ModelRegistry registry;

    @Test
    void aWedgedGenerationTurnsLivenessDown() throws Exception {
        CountDownLatch stuck = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        GenerationListener wedging = new GenerationListener() {
            @Override
            public void onText(String text, List<TokenLogprob> logprobs) {
                stuck.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);  // a step that does not come back
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }

            @Override
            public boolean isCancelled() {
                return false;
            }
        };
        var target = registry.target();
        GenerationRequest req = new GenerationRequest(target.tokenizer().encodePrompt("And God said"), SamplingParams.greedy(),
                8, List.of(), -1, false);
        CompletableFuture<?> run = CompletableFuture.runAsync(() ->
                generation.generate(generation.admit(), target, req, null, wedging));
        stuck.await(10, TimeUnit.SECONDS);
        Thread.sleep(300);
        given().get("/q/health/live").then().statusCode(503)
                .body("checks.find { it.name == 'decoding-watchdog' }.data.reason", startsWith("a generation has made no decoding step"));
        release.countDown();
        run.get(10, TimeUnit.SECONDS);
        given().get("/q/health/live").then().statusCode(200);
    }
}
