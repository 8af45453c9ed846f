package dev.tandem.api;

import dev.tandem.memory.MemoryPlan;

/**
 * {@code GET /v1/models/{id}}: OpenAI's model object with the fields of {@link ModelList.ModelCard},
 * the model's role, and its memory plan.
 *
 * @param role   "target" (the model requests name) or "draft" (the model assisting it; not a completion model)
 * @param graph  the graph file of the model directory the engine runs (e.g. model_optimized.onnx on ONNX Runtime)
 * @param memory parameters, weight bytes, KV-cache bytes and the sequences that fit the budget
 */
public record ModelDetail(String id, String object, long created, String ownedBy, String role, int maxModelLen,
                          String engine, int vocabSize, String quantization, String graph, String draft, String draftQuantization,
                          boolean assistedDecoding, String assistedDecodingUnavailable, MemoryPlan memory) {
}
