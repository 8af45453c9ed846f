package dev.tandem.engine.reference;

/**
 * Every parameter of a Llama decoder, in the form the reference forward pass reads: matrices are
 * {@code [out][in]} ({@link Matrix}), norms are plain vectors.
 *
 * @param classifier the output layer ({@code [vocab][dim]}); the embedding itself when tied
 */
public record LlamaWeights(LlamaConfig config, Embedding embedding, Layer[] layers, float[] finalNorm, Matrix classifier) {

    /** One decoder layer. w1 = gate_proj, w3 = up_proj, w2 = down_proj: {@code w2(silu(w1 x) * w3 x)}. */
    public record Layer(float[] attnNorm, Matrix wq, Matrix wk, Matrix wv, Matrix wo,
                        float[] ffnNorm, Matrix w1, Matrix w2, Matrix w3) {
    }

    public LlamaWeights {
        LlamaConfig c = config;
        check(embedding.vocabSize() == c.vocabSize() && embedding.dim() == c.dim(), "embedding", embedding.vocabSize(),
                embedding.dim(), c.vocabSize(), c.dim());
        check(layers.length == c.layers(), "layer count", layers.length, 0, c.layers(), 0);
        for (Layer l : layers) {
            checkLayer(c, l);
        }
        checkHead(c, finalNorm, classifier);
    }

    /** Refuses a layer whose sizes differ from the config's. */
    static void checkLayer(LlamaConfig c, Layer l) {
        check(l.attnNorm().length == c.dim() && l.ffnNorm().length == c.dim(), "norm", l.attnNorm().length,
                l.ffnNorm().length, c.dim(), c.dim());
        shape(l.wq(), c.qDim(), c.dim(), "wq (q_proj)");
        shape(l.wk(), c.kvDim(), c.dim(), "wk (k_proj)");
        shape(l.wv(), c.kvDim(), c.dim(), "wv (v_proj)");
        shape(l.wo(), c.dim(), c.qDim(), "wo (o_proj)");
        shape(l.w1(), c.hiddenDim(), c.dim(), "w1 (gate_proj)");
        shape(l.w3(), c.hiddenDim(), c.dim(), "w3 (up_proj)");
        shape(l.w2(), c.dim(), c.hiddenDim(), "w2 (down_proj)");
    }

    /** Refuses a final norm or classifier whose sizes differ from the config's. */
    static void checkHead(LlamaConfig c, float[] finalNorm, Matrix classifier) {
        check(finalNorm.length == c.dim(), "final norm", finalNorm.length, 0, c.dim(), 0);
        shape(classifier, c.vocabSize(), c.dim(), "classifier (lm_head)");
    }

    private static void shape(Matrix m, int rows, int cols, String what) {
        if (m.rows() != rows || m.cols() != cols) {
            throw new IllegalArgumentException(what + " is " + m.rows() + "x" + m.cols() + " (out x in), the config says "
                    + rows + "x" + cols);
        }
    }

    private static void check(boolean ok, String what, int a, int b, int ea, int eb) {
        if (!ok) {
            throw new IllegalArgumentException(what + " has sizes " + a + "/" + b + ", the config says " + ea + "/" + eb);
        }
    }
}
