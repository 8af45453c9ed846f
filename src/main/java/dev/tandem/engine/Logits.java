package dev.tandem.engine;

import java.nio.FloatBuffer;

/**
 * Logits of consecutive fed positions, {@code rows() x vocabSize()}, as a read-only view over the
 * engine's output memory (no copy). Valid until the next forward/truncate/close of its cache.
 */
public final class Logits {
    private final FloatBuffer data;
    private final int rows;
    private final int vocabSize;

    public Logits(FloatBuffer data, int rows, int vocabSize) {
        if (data.remaining() < (long) rows * vocabSize) {
            throw new IllegalArgumentException("buffer holds " + data.remaining() + " floats, need " + rows * vocabSize);
        }
        this.data = data;
        this.rows = rows;
        this.vocabSize = vocabSize;
    }

    public int rows() {
        return rows;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /** Logit of {@code token} at fed position {@code row}. */
    public float get(int row, int token) {
        return data.get(data.position() + row * vocabSize + token);
    }

    /** Rows {@code from .. from + n} (a view of the same memory). */
    public Logits rows(int from, int n) {
        if (from < 0 || n < 0 || from + n > rows) {
            throw new IllegalArgumentException("rows " + from + ".." + (from + n) + " of " + rows);
        }
        return from == 0 && n == rows ? this : new Logits(data.slice(data.position() + from * vocabSize, n * vocabSize),
                n, vocabSize);
    }

    /** Copies one row into {@code dst[0..vocabSize)}. */
    public float[] copyRow(int row, float[] dst) {
        data.get(data.position() + row * vocabSize, dst, 0, vocabSize);
        return dst;
    }

    /** Copies one row into a new array. */
    public float[] row(int row) {
        return copyRow(row, new float[vocabSize]);
    }
}
