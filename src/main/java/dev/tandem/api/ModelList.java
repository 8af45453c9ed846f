package dev.tandem.api;

import java.util.List;

/** {@code GET /v1/models}: OpenAI's list, each entry extended with what a user of a serving system asks first. */
public record ModelList(String object, List<ModelCard> data) {

    /**
     * @param maxModelLen  context length in tokens (vLLM's name)
     * @param engine       inference engine serving it
     * @param quantization how the weights are stored (e.g. "int8 (MatMulInteger)")
     * @param draft        id of the draft model attached for assisted generation, or null
     * @param draftQuantization how the draft's weights are stored, or null
     * @param assistedDecoding  whether requests may ask for {@code "assisted": true} on this model
     * @param assistedDecodingUnavailable why they may not (e.g. a stateful OpenVINO model), or null
     */
    public record ModelCard(String id, String object, long created, String ownedBy, int maxModelLen, String engine,
                            int vocabSize, String quantization, String draft, String draftQuantization,
                            boolean assistedDecoding, String assistedDecodingUnavailable) {
    }
}
