package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.SamplingParams;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.serving.DecodingPolicy;
import dev.tandem.serving.GenerationService;
import dev.tandem.serving.ModelRegistry;
import dev.tandem.serving.ServedModel;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Liveness goes DOWN, saying why, while a decoding step does not come back (here: the engine blocks in
 * a forward pass), and UP again after. A slow client cannot do this: its text is written by its own
 * request thread, never inside a step.
 */
@QuarkusTest
@TestProfile(WedgedProfile.class)
class LivenessTest {
    @Inject
    GenerationService generation;

    @Inject
    ModelRegistry registry;

    @Test
    void aWedgedStepTurnsLivenessDown() throws Exception {
        CountDownLatch stuck = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        var target = registry.target();
        CausalLm wedging = new Wedging(target.lm(), stuck, release);
        // a model of its own (its own scheduler), over the real target, whose second step does not come back
        ServedModel wedged = new ServedModel("wedged", target.engine(), target.directory(), target.tokenizer(), wedging,
                new PlainDecoder(wedging, target.tokenizer(), List.of(2)), null, 0, Optional.empty(), target.quantization());
        GenerationRequest req = new GenerationRequest(target.tokenizer().encodePrompt("And God said"), SamplingParams.greedy(),
                8, List.of(), -1, false);
        CompletableFuture<?> run = CompletableFuture.runAsync(() ->
                generation.generate(generation.admit(), wedged, req, DecodingPolicy.Decision.PLAIN, GenerationListener.NONE));
        assertTrue(stuck.await(10, TimeUnit.SECONDS));
        Thread.sleep(300);
        given().get("/q/health/live").then().statusCode(503)
                .body("checks.find { it.name == 'decoding-watchdog' }.data.reason", startsWith("a generation has made no decoding step"));
        release.countDown();
        run.get(10, TimeUnit.SECONDS);
        given().get("/q/health/live").then().statusCode(200);
    }

    @Test
    void aClientThatDoesNotReadDoesNotWedgeDecoding() throws Exception {
        CountDownLatch writing = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        GenerationListener blocked = new GenerationListener() {
            @Override
            public void onText(String text, List<TokenLogprob> logprobs) {
                writing.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);  // a write that does not come back
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
        CompletableFuture<?> run = CompletableFuture.runAsync(() -> generation.generate(generation.admit(), target, req, DecodingPolicy.Decision.PLAIN, blocked));
        assertTrue(writing.await(10, TimeUnit.SECONDS));
        // meanwhile another request on the same model decodes to its end
        var other = generation.generate(generation.admit(), target, req, DecodingPolicy.Decision.PLAIN, GenerationListener.NONE);
        assertTrue(other.completionTokens() > 0);
        Thread.sleep(300);
        given().get("/q/health/live").then().statusCode(200);
        release.countDown();
        run.get(10, TimeUnit.SECONDS);
    }

    /**
     * Passes everything to the real model, but the second batched step that feeds the first cache made (the request's:
     * its sequence exists before the model's scheduler, whose start-up profile makes caches of its own) waits for
     * {@code release}.
     */
    private static final class Wedging implements CausalLm {
        private final CausalLm lm;
        private final CountDownLatch stuck;
        private final CountDownLatch release;
        private int steps;
        private KvCache first;

        Wedging(CausalLm lm, CountDownLatch stuck, CountDownLatch release) {
            this.lm = lm;
            this.stuck = stuck;
            this.release = release;
        }

        @Override
        public ModelShape shape() {
            return lm.shape();
        }

        @Override
        public synchronized KvCache newCache() {
            KvCache c = lm.newCache();
            if (first == null) {
                first = c;
            }
            return c;
        }

        @Override
        public Logits forward(KvCache cache, int[] tokens, int offset, int length) {
            return lm.forward(cache, tokens, offset, length);
        }

        @Override
        public List<Logits> forward(List<Feed> feeds) {
            if (feeds.stream().anyMatch(f -> f.cache() == first) && ++steps == 2) {
                stuck.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return lm.forward(feeds);
        }

        @Override
        public void close() {
        }
    }
}
