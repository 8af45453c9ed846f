package dev.tandem.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.serving.AssistFields;
import dev.tandem.serving.DecodingPolicy;
import dev.tandem.serving.GenerationService;
import dev.tandem.serving.ModelRegistry;
import dev.tandem.serving.ServedModel;
import dev.tandem.serving.TandemConfig;
import jakarta.inject.Singleton;

/**
 * What every generation route (OpenAI completions and chat, TGI) needs, and the steps they share
 * before generating: the body must be there, the model must exist, and the request is decided
 * assisted or plain by the {@link DecodingPolicy} (explicit choice, A/B arm or server default). A {@code @Singleton}, not
 * {@code @ApplicationScoped}: the routes read its fields, which a client proxy would not carry.
 */
@Singleton
class GenerationRoutes {
    final ModelRegistry registry;
    final TandemConfig config;
    final GenerationService generation;
    final ObjectMapper json;
    final DecodingPolicy decoding;

    GenerationRoutes(ModelRegistry registry, TandemConfig config, GenerationService generation, ObjectMapper json,
                     DecodingPolicy decoding) {
        this.registry = registry;
        this.config = config;
        this.generation = generation;
        this.json = json;
        this.decoding = decoding;
    }

    /** A missing body is a 400 in OpenAI's format. */
    static void requireBody(Object body) {
        if (body == null) {
            throw new ApiException(400, "invalid_request_error", null, "missing_body", "a JSON request body is required");
        }
    }

    /** The served model named {@code name} (null or absent: the target), else OpenAI's 404. */
    ServedModel model(String name) {
        return registry.find(name).orElseThrow(() -> new ApiException(404, "invalid_request_error", "model",
                "model_not_found", "The model '" + name + "' does not exist; GET /v1/models lists the served models"));
    }

    /**
     * Assisted or plain for this request ({@link DecodingPolicy}); the OpenAI routes pass the request's {@code user}
     * when there is no {@code X-Experiment-Key}. A field the policy refuses is a 400 naming it (422 on TGI).
     */
    DecodingPolicy.Decision decide(AssistFields fields, ServedModel model, String experimentKey) {
        try {
            return decoding.decide(fields, model, experimentKey);
        } catch (DecodingPolicy.InvalidField e) {
            throw ApiException.invalid(e.param(), e.getMessage());
        }
    }
}
