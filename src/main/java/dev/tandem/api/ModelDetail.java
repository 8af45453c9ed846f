package dev.tandem.api;

import dev.tandem.memory.MemoryPlan;
import java.util.Map;
import org.eclipse.microprofile.openapi.annotations.media.Schema;

/**
 * {@code GET /v1/models/{id}}: OpenAI's model object with the fields of {@link ModelList.ModelCard},
 * the model's role, and its memory plan.
 *
 * @param role   "target" (the model requests name) or "draft" (the model assisting it; not a completion model)
 * @param graph  the graph file of the model directory the engine runs (e.g. model_optimized.onnx on ONNX Runtime)
 * @param memory parameters, weight bytes, KV-cache bytes and the sequences that fit the budget
 * @param samplingDefaults what an OpenAI request that leaves a field out gets instead of the API's default: the
 *               model's own (its generation_config.json, under tandem.target.generation-config=auto), named as a
 *               request names them (max_new_tokens as max_tokens); empty when none apply, and for the draft
 */
public record ModelDetail(String id, String object, long created, String ownedBy, String role, int maxModelLen,
                          String engine, int vocabSize, String quantization, String graph, String draft, String draftQuantization,
                          boolean assistedDecoding, String assistedDecodingUnavailable, MemoryPlan memory,
                          @Schema(description = "Sampling defaults for fields a request leaves out, e.g. {\"temperature\": 0.6,"
                                  + " \"top_p\": 0.9}; empty: the OpenAI defaults") Map<String, Number> samplingDefaults) {
}
