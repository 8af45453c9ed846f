package dev.tandem.engine.reference;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * A weight matrix W of {@code rows x cols} (out x in): {@link #multiply} computes {@code out = W x}.
 * Rows are split over the common fork-join pool when the matrix is large enough to pay for it.
 */
public sealed interface Matrix permits Matrix.F32, Matrix.U8, Matrix.F32InOut, Matrix.U8InOut {

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

    /** Runs {@code range} over [0, n) in one piece, or in parallel chunks when {@code work} is large (as {@link #forEachRow}). */
    static void forEachRange(int n, long work, java.util.function.BiConsumer<Integer, Integer> range) {
        if (work < PARALLEL_THRESHOLD || n < 64) {
            range.accept(0, n);
            return;
        }
        int chunks = Math.min(n / 16, 4 * Runtime.getRuntime().availableProcessors());
        IntStream.range(0, chunks).parallel().forEach(c -> range.accept((int) ((long) n * c / chunks),
                (int) ((long) n * (c + 1) / chunks)));
    }

    ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

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
            return new U8(w, zeroPoints(zp), scale, out, in);
        }

        /** uint8 zero points as ints. */
        static int[] zeroPoints(byte[] zp) {
            int[] z = new int[zp.length];
            for (int o = 0; o < zp.length; o++) {
                z[o] = zp[o] & 0xFF;
            }
            return z;
        }

        /** The activation scale of {@code x[0..n)}: {@code max(max|x|, 1e-8) / 127}. */
        static float activationScale(float[] x, int n) {
            float amax = 0f;
            for (int k = 0; k < n; k++) {
                amax = Math.max(amax, Math.abs(x[k]));
            }
            return Math.max(amax, 1e-8f) / 127f;
        }

        /** {@code x[0..n)} quantised with scale {@code xs}, minus the zero point 128. */
        static int[] quantise(float[] x, int n, float xs) {
            int[] xq = new int[n];  // xq - 128
            for (int k = 0; k < n; k++) {
                float q = (float) Math.rint(x[k] / xs) + 128f;
                xq[k] = (int) Math.min(Math.max(q, 0f), 255f) - 128;
            }
            return xq;
        }

        @Override
        public void multiply(float[] x, float[] out) {
            float xs = activationScale(x, cols);
            int[] xq = quantise(x, cols, xs);
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

    /**
     * float32 weights left as ONNX stores them, {@code [in][out]}, in a mapping of the model file (the
     * offload mode computes from the file's bytes, with nothing decoded). Each output is the same sum
     * as {@link F32}'s, in the same order ({@code s += w x} over k from 0), so the result is
     * bit-identical; only the loops are turned round (k outside, a block of outputs inside) to read the
     * mapping row by row. Valid while the mapping is.
     */
    record F32InOut(MemorySegment b, int in, int out) implements Matrix {
        public F32InOut {
            if (b.byteSize() != 4L * in * out) {
                throw new IllegalArgumentException(in + "x" + out + " matrix over " + b.byteSize() + " bytes");
            }
        }

        @Override
        public int rows() {
            return out;
        }

        @Override
        public int cols() {
            return in;
        }

        @Override
        public void multiply(float[] x, float[] y) {
            forEachRange(out, (long) in * out, (o0, o1) -> {
                int n = o1 - o0;
                float[] acc = new float[n];
                float[] row = new float[n];
                for (int k = 0; k < in; k++) {
                    float xk = x[k];
                    MemorySegment.copy(b, FLOAT_LE, 4L * ((long) k * out + o0), row, 0, n);
                    for (int j = 0; j < n; j++) {
                        acc[j] += row[j] * xk;
                    }
                }
                System.arraycopy(acc, 0, y, o0, n);
            });
        }
    }

    /**
     * uint8 weights left as ONNX stores them, {@code [in][out]}, in a mapping of the model file, with
     * per-column zero points and scales: {@link U8}'s arithmetic (same quantised input, exact integer
     * sums, the zero point taken out as {@code zp * sum(xq)}, which gives the same integer; the same
     * two float multiplications), so bit-identical results, with the loops turned round to read the
     * mapping row by row. Valid while the mapping is.
     */
    record U8InOut(MemorySegment b, int[] zeroPoint, float[] scale, int in, int out) implements Matrix {
        public U8InOut {
            if (b.byteSize() != (long) in * out || zeroPoint.length != out || scale.length != out) {
                throw new IllegalArgumentException("quantised " + in + "x" + out + " matrix over " + b.byteSize()
                        + " bytes, " + zeroPoint.length + " zero points, " + scale.length + " scales");
            }
        }

        @Override
        public int rows() {
            return out;
        }

        @Override
        public int cols() {
            return in;
        }

        @Override
        public void multiply(float[] x, float[] y) {
            float xs = U8.activationScale(x, in);
            int[] xq = U8.quantise(x, in, xs);
            forEachRange(out, (long) in * out, (o0, o1) -> {
                int n = o1 - o0;
                int[] acc = new int[n];
                byte[] row = new byte[n];
                int qSum = 0;
                for (int k = 0; k < in; k++) {
                    int q = xq[k];
                    qSum += q;
                    MemorySegment.copy(b, ValueLayout.JAVA_BYTE, (long) k * out + o0, row, 0, n);
                    for (int j = 0; j < n; j++) {
                        acc[j] += q * (row[j] & 0xFF);
                    }
                }
                for (int j = 0; j < n; j++) {
                    // sum_k q (w - zp) = sum_k q w - zp sum_k q: the same integer
                    y[o0 + j] = ((float) (acc[j] - zeroPoint[o0 + j] * qSum) * xs) * scale[o0 + j];
                }
            });
        }
    }
}
