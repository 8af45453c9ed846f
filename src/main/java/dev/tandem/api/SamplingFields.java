package dev.tandem.api;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;

/** The sampling and length fields every generation request shares (completions and chat). */
public interface SamplingFields {
    Integer maxTokens();

    Double temperature();

    Double topP();

    Integer topK();

    Double minP();

    Double repetitionPenalty();

    Double presencePenalty();

    Double frequencyPenalty();

    Long seed();

    JsonNode stop();

    Integer n();

    Boolean stream();

    StreamOptions streamOptions();

    Map<String, Double> logitBias();

    /** vLLM's {@code ignore_eos}: keep generating after EOS, up to max_tokens (benchmarks, load tests). */
    default Boolean ignoreEos() {
        return null;
    }

    /** OpenAI's {@code stream_options}. */
    record StreamOptions(Boolean includeUsage) {
    }
}
