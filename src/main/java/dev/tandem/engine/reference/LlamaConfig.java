package dev.tandem.engine.reference;

/**
 * The sizes and constants of a Llama decoder, as the reference engine runs it.
 *
 * @param dim        width of the residual stream (hidden_size)
 * @param hiddenDim  width of the SwiGLU MLP (intermediate_size)
 * @param layers     decoder layers
 * @param heads      query heads
 * @param kvHeads    key/value heads (grouped-query attention: heads / kvHeads query heads share one)
 * @param headDim    width of one head
 * @param vocabSize  rows of the embedding and of the classifier
 * @param maxContext longest sequence
 * @param eps        RMSNorm epsilon
 * @param ropeTheta  rotary base
 * @param rotary     which pairs of a head the rotary embedding rotates
 */
public record LlamaConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int headDim, int vocabSize,
                          int maxContext, float eps, float ropeTheta, Rotary rotary) {

    /** How a head's dimensions are paired for the rotary embedding. */
    public enum Rotary {
        /** llama2.c: adjacent pairs (2i, 2i+1), frequency index i. */
        PAIRWISE,
        /** Hugging Face {@code rotate_half}: dimension i pairs with i + headDim/2, frequency index i. */
        HALF
    }

    public LlamaConfig {
        if (dim <= 0 || hiddenDim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || vocabSize <= 0
                || maxContext <= 0) {
            throw new IllegalArgumentException("every size must be positive: " + this);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException(heads + " query heads do not divide into " + kvHeads + " key/value heads");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head size " + headDim + " is odd: rotary embedding needs pairs");
        }
    }

    /** Width of all query heads together. */
    public int qDim() {
        return heads * headDim;
    }

    /** Width of all key (or value) heads together. */
    public int kvDim() {
        return kvHeads * headDim;
    }
}
