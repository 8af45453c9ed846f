package dev.tandem.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.model.SamplingDefaults;
import dev.tandem.serving.ServedModel;
import dev.tandem.serving.TandemConfig;
import dev.tandem.testing.ShapeOnlyLm;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A model's max_tokens default is capped, never refused (the client did not ask for it): by tandem.limits.max-tokens
 * and by what the context leaves after the prompt; a request's own max_tokens is still checked as before. The model
 * here has a 64-token context ({@link ShapeOnlyLm}).
 */
class CompletionParamsDefaultsTest {
    private static final ServedModel MODEL = ShapeOnlyLm.served("m", "onnxruntime", true);

    /** Only max_tokens and temperature, the rest left out. */
    private record Fields(Integer maxTokens, Double temperature) implements SamplingFields {
        public Double topP() { return null; }
        public Integer topK() { return null; }
        public Double minP() { return null; }
        public Double repetitionPenalty() { return null; }
        public Double presencePenalty() { return null; }
        public Double frequencyPenalty() { return null; }
        public Long seed() { return null; }
        public JsonNode stop() { return null; }
        public Integer n() { return null; }
        public Boolean stream() { return null; }
        public StreamOptions streamOptions() { return null; }
        public Map<String, Double> logitBias() { return null; }
    }

    private static TandemConfig.Limits limits(int maxTokens) {
        return new TandemConfig.Limits() {
            public int maxTokens() { return maxTokens; }
            public int defaultMaxTokens() { return 16; }
            public int maxLogprobs() { return 20; }
            public long maxBodyBytes() { return 1 << 20; }
            public int maxStopStrings() { return 16; }
            public int maxHeaderBytes() { return 16384; }
            public int maxUriBytes() { return 4096; }
            public Duration bodyTimeout() { return Duration.ofSeconds(30); }
        };
    }

    private static SamplingDefaults maxTokens(int n) {
        return new SamplingDefaults(0.6, null, 20, null, null, n, "generation_config.json");
    }

    private static GenerationRequest generate(Fields f, int promptLength, int limit, SamplingDefaults d) {
        return CompletionParams.toGeneration(f, new int[promptLength], -1, false, "prompt", MODEL, limits(limit), d);
    }

    @Test
    void theModelsMaxTokensIsCappedByTheLimitAndTheContext() {
        Fields none = new Fields(null, null);
        assertEquals(5, generate(none, 10, 2048, maxTokens(5)).maxTokens());
        assertEquals(20, generate(none, 10, 20, maxTokens(40)).maxTokens(), "tandem.limits.max-tokens");
        assertEquals(54, generate(none, 10, 2048, maxTokens(60)).maxTokens(), "what the 64-token context leaves");
        assertEquals(16, generate(none, 10, 2048, SamplingDefaults.NONE).maxTokens(), "no model default: the server's");
        var full = assertThrows(ApiException.class, () -> generate(none, 64, 2048, maxTokens(5)));
        assertEquals("prompt", full.param(), "a prompt that fills the context is still refused");
        var own = assertThrows(ApiException.class, () -> generate(new Fields(30, null), 40, 2048, maxTokens(5)));
        assertEquals("max_tokens", own.param(), "the request's own max_tokens is not capped");
    }

    @Test
    void samplingFieldsComeFromTheModelUnlessTheRequestSetsThem() {
        GenerationRequest r = generate(new Fields(null, null), 10, 2048, maxTokens(5));
        assertEquals(0.6, r.sampling().temperature());
        assertEquals(20, r.sampling().topK());
        assertEquals(1.0, r.sampling().topP());
        assertEquals(0.9, generate(new Fields(null, 0.9), 10, 2048, maxTokens(5)).sampling().temperature());
        assertEquals(0.0, generate(new Fields(null, 0.0), 10, 2048, maxTokens(5)).sampling().temperature());
    }
}
