package dev.tandem.api;

import dev.tandem.serving.AssistFields;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import java.util.List;

/** Text Generation Inference's request: {@code inputs} and {@code parameters}, plus Tandem's assisted-generation controls. */
@Schema(name = "GenerateRequest", example = "{\"inputs\": \"And God said\", \"parameters\": {\"max_new_tokens\": 16}}")
public record TgiRequest(String inputs, Parameters parameters, Boolean stream) {

    /** TGI's generation parameters (greedy unless {@code do_sample}), and Tandem's assisted fields. */
    @Schema(name = "GenerateParameters")
    public record Parameters(Integer maxNewTokens, Boolean doSample, Double temperature, Integer topK, Double topP,
                             Double repetitionPenalty, Double frequencyPenalty, Long seed, List<String> stop,
                             Boolean details, Boolean decoderInputDetails, Boolean returnFullText,
                             @com.fasterxml.jackson.annotation.JsonProperty("top_n_tokens") Integer topNTokens,
                             Integer bestOf, Double typicalP, Boolean watermark, Integer truncate,
                             Boolean assisted, String assistant, Integer numAssistantTokens, String assistantSchedule,
                             Double assistantConfidenceThreshold, Integer promptLookupNgramSize,
                             @org.eclipse.microprofile.openapi.annotations.media.Schema(description =
                                     "vLLM extension: keep generating after EOS, up to max_new_tokens") Boolean ignoreEos)
            implements AssistFields {

        static final Parameters NONE = new Parameters(null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null, null, null, null, null, null, null, null, null);
    }
}
