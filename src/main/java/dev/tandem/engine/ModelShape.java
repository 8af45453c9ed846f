package dev.tandem.engine;

/**
 * What an engine learned about a model: sizes the decoding loops and the planner need.
 *
 * @param vocabSize     rows of the output layer (logits per position)
 * @param maxContext    the longest sequence (prompt + generated) the model was trained for
 * @param layers        decoder layers
 * @param kvHeads       key/value heads per layer (grouped-query attention)
 * @param headDim       width of one head
 * @param kvBytesPerElement 4 for float32 caches, 2 for float16
 */
public record ModelShape(int vocabSize, int maxContext, int layers, int kvHeads, int headDim, int kvBytesPerElement) {

    /** Bytes the KV cache holds per token (keys and values, every layer). */
    public long kvBytesPerToken() {
        return 2L * layers * kvHeads * headDim * kvBytesPerElement;
    }
}
