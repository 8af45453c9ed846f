package dev.tandem.engine.reference;

import java.util.stream.IntStream;

/**
 * A weight matrix W of {@code rows x cols} (out x in): {@link #multiply} computes {@code out = W x}.
 * Rows are split over the common fork-join pool when the matrix is large enough to pay for it.
 */
public sealed interface Matrix permits Matrix.F32, Matrix.U8 {

    int rows();

    int cols();

    /** {@code out[0..rows) = W x[0..cols)}. */
    void multiply(float[] x, float[] out);

    /** Below this many weights a product runs on the calling thread. */
    int PARALLEL_THRESHOLD = 1 << 16;

    /** Runs {@code row} for every row in [0, rows), in parallel chunks when {@code work} is large. */
    static void forEachRow(int rows, long work, java.util.function.IntConsumer row) {
        if (work < PARALLEL_THRESHOLD || rows < 64) {
            for (int i = 0; i < rows; i++) {
                row.accept(i);
            }
            return;
        }
        int chunks = Math.min(rows / 16, 4 * Runtime.getRuntime().availableProcessors());
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int end = (int) ((long) rows * (c + 1) / chunks);
            for (int i = (int) ((long) rows * c / chunks); i < end; i++) {
                row.accept(i);
            }
        });
    }

    /** float32 weights, row-major {@code [rows][cols]}. */
    record F32(float[] w, int rows, int cols) implements Matrix {
        public F32 {
            if ((long) rows * cols != w.length) {
                throw new IllegalArgumentException(rows + "x" + cols + " matrix over " + w.length + " values");
            }
        }

        /** From an ONNX MatMul weight, which is stored {@code [in][out]} (y = x B). */
        static F32 fromInOut(float[] b, int in, int out) {
            float[] w = new float[b.length];
            for (int i = 0; i < in; i++) {
                for (int o = 0; o < out; o++) {
                    w[o * in + i] = b[i * out + o];
                }
            }
            return new F32(w, out, in);
        }

        @Override
        public void multiply(float[] x, float[] out) {
            forEachRow(rows, (long) rows * cols, i -> {
                float s = 0f;
                int off = i * cols;
                for (int k = 0; k < cols; k++) {
                    s += w[off + k] * x[k];
                }
                out[i] = s;
            });
        }
    }

    /**
     * uint8 weights with one scale and zero point per output row, applied to an input quantised on
     * the fly to uint8 with one symmetric scale per token (zero point 128), exactly as the graphs
     * written by {@code tools/models/quantize.py} compute it (ONNX MatMulInteger, then two float
     * multiplications):
     * <pre>
     *   xs = max(max|x|, 1e-8) / 127              (float32)
     *   xq = clip(rint(x / xs) + 128, 0, 255)     (round half to even, as ONNX Round)
     *   acc = sum_k (xq[k] - 128) (w[k] - zp)     (exact int32)
     *   y  = ((float) acc * xs) * scale           (in this order)
     * </pre>
     * Every step is exact or a single IEEE float32 operation, so for the same input x the result is
     * bit-identical to ONNX Runtime's.
     */
    record U8(byte[] w, int[] zeroPoint, float[] scale, int rows, int cols) implements Matrix {
        public U8 {
            if ((long) rows * cols != w.length || zeroPoint.length != rows || scale.length != rows) {
                throw new IllegalArgumentException("quantised " + rows + "x" + cols + " matrix over " + w.length
                        + " weights, " + zeroPoint.length + " zero points, " + scale.length + " scales");
            }
        }

        /** From an ONNX MatMulInteger weight {@code [in][out]} with per-column zero points and scales. */
        static U8 fromInOut(byte[] b, byte[] zp, float[] scale, int in, int out) {
            byte[] w = new byte[b.length];
            for (int i = 0; i < in; i++) {
                for (int o = 0; o < out; o++) {
                    w[o * in + i] = b[i * out + o];
                }
            }
            int[] z = new int[out];
            for (int o = 0; o < out; o++) {
                z[o] = zp[o] & 0xFF;
            }
            return new U8(w, z, scale, out, in);
        }

        @Override
        public void multiply(float[] x, float[] out) {
            float amax = 0f;
            for (int k = 0; k < cols; k++) {
                amax = Math.max(amax, Math.abs(x[k]));
            }
            float xs = Math.max(amax, 1e-8f) / 127f;
            int[] xq = new int[cols];  // xq - 128
            for (int k = 0; k < cols; k++) {
                float q = (float) Math.rint(x[k] / xs) + 128f;
                xq[k] = (int) Math.min(Math.max(q, 0f), 255f) - 128;
            }
            forEachRow(rows, (long) rows * cols, i -> {
                int acc = 0;
                int off = i * cols;
                int zp = zeroPoint[i];
                for (int k = 0; k < cols; k++) {
                    acc += xq[k] * ((w[off + k] & 0xFF) - zp);
                }
                out[i] = ((float) acc * xs) * scale[i];
            });
        }
    }
}
