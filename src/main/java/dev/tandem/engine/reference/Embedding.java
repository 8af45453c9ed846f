package dev.tandem.engine.reference;

/** The token embedding table: one row of {@code dim} values per token. */
public sealed interface Embedding permits Embedding.F32, Embedding.U8 {

    int vocabSize();

    int dim();

    /** Copies token {@code token}'s row into {@code out[0..dim)}. */
    void lookup(int token, float[] out);

    /** float32 rows, {@code [vocab][dim]}. */
    record F32(float[] table, int vocabSize, int dim) implements Embedding {
        @Override
        public void lookup(int token, float[] out) {
            System.arraycopy(table, token * dim, out, 0, dim);
        }

        /** The same table as a classifier (tied weights): logits = E x. */
        Matrix asMatrix() {
            return new Matrix.F32(table, vocabSize, dim);
        }
    }

    /** uint8 rows with a float scale and zero point per row: {@code ((float) q - zp) * scale} (quantize.py --embedding). */
    record U8(byte[] table, float[] scale, float[] zeroPoint, int vocabSize, int dim) implements Embedding {
        @Override
        public void lookup(int token, float[] out) {
            int off = token * dim;
            for (int d = 0; d < dim; d++) {
                out[d] = ((float) (table[off + d] & 0xFF) - zeroPoint[token]) * scale[token];
            }
        }
    }
}
