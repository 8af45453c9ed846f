package dev.tandem.engine.reference;

import dev.tandem.engine.Llama2cHeader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads a llama2.c checkpoint ({@code run.c}'s "legacy" export): a header of 7 little-endian int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means
 * an untied classifier follows at the end), then float32 arrays in this order: token_embedding
 * [vocab, dim], rms_att [layers, dim], wq [layers, dim, dim], wk [layers, kv_dim, dim], wv [layers,
 * kv_dim, dim], wo [layers, dim, dim], rms_ffn [layers, dim], w1 [layers, hidden, dim], w2 [layers,
 * dim, hidden], w3 [layers, hidden, dim], rms_final [dim], freq_cis_real and freq_cis_imag [seq_len,
 * head/2] (skipped: the rotary tables are recomputed), then wcls [vocab, dim] if untied. Matrices
 * are already [out][in]. Rotary is llama2.c's pairwise form; RMSNorm eps 1e-5, rotary base 10000 (as
 * run.c hard-codes them).
 */
public final class Llama2cCheckpoint {
    private Llama2cCheckpoint() {
    }

    public static LlamaWeights load(Path file) {
        Llama2cHeader h = Llama2cHeader.read(file);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).position(Llama2cHeader.BYTES);
        return parse(h, b.asFloatBuffer());
    }

    /** The config run.c runs a checkpoint with: its header's sizes, RMSNorm eps 1e-5, rotary base 10000, pairwise rotary. */
    static LlamaConfig config(Llama2cHeader h) {
        return new LlamaConfig(h.dim(), h.hiddenDim(), h.layers(), h.heads(), h.kvHeads(), h.headDim(), h.vocabSize(),
                h.maxContext(), 1e-5f, 10000f, LlamaConfig.Rotary.PAIRWISE);
    }

    /** The weights after header {@code h} ({@code f}: exactly the floats the header says, checked by {@link Llama2cHeader#read}). */
    private static LlamaWeights parse(Llama2cHeader h, FloatBuffer f) {
        LlamaConfig c = config(h);
        int dim = c.dim();
        int hidden = c.hiddenDim();
        int layers = c.layers();
        int vocab = c.vocabSize();
        int seqLen = c.maxContext();
        int headDim = c.headDim();
        boolean tied = h.sharedClassifier();
        int kvDim = c.kvDim();
        float[] embedding = take(f, vocab * dim);
        float[][] rmsAtt = split(take(f, layers * dim), layers);
        float[][] wq = split(take(f, layers * dim * dim), layers);
        float[][] wk = split(take(f, layers * kvDim * dim), layers);
        float[][] wv = split(take(f, layers * kvDim * dim), layers);
        float[][] wo = split(take(f, layers * dim * dim), layers);
        float[][] rmsFfn = split(take(f, layers * dim), layers);
        float[][] w1 = split(take(f, layers * hidden * dim), layers);
        float[][] w2 = split(take(f, layers * dim * hidden), layers);
        float[][] w3 = split(take(f, layers * hidden * dim), layers);
        float[] rmsFinal = take(f, dim);
        take(f, seqLen * headDim);  // freq_cis_real and freq_cis_imag: recomputed instead
        Embedding.F32 emb = new Embedding.F32(embedding, vocab, dim);
        Matrix cls = tied ? emb.asMatrix() : new Matrix.F32(take(f, vocab * dim), vocab, dim);
        LlamaWeights.Layer[] ls = new LlamaWeights.Layer[layers];
        for (int l = 0; l < layers; l++) {
            ls[l] = new LlamaWeights.Layer(rmsAtt[l],
                    new Matrix.F32(wq[l], dim, dim), new Matrix.F32(wk[l], kvDim, dim), new Matrix.F32(wv[l], kvDim, dim),
                    new Matrix.F32(wo[l], dim, dim), rmsFfn[l],
                    new Matrix.F32(w1[l], hidden, dim), new Matrix.F32(w2[l], dim, hidden), new Matrix.F32(w3[l], hidden, dim));
        }
        return new LlamaWeights(c, emb, ls, rmsFinal, cls);
    }

    /**
     * The same checkpoint for the offload mode ({@link LayeredWeights}): only the header is read
     * here; each array's place in the file follows from it, and a layer (its rows of rms_att, wq, wk,
     * wv, wo, rms_ffn, w1, w2, w3), the head (rms_final and the classifier: the embedding table when
     * tied) or one embedding row is read from the file each time it is used.
     */
    public static LayeredWeights offload(Path file) {
        Llama2cHeader h = Llama2cHeader.read(file);
        LlamaConfig c = config(h);
        boolean tied = h.sharedClassifier();
        int dim = c.dim();
        int hidden = c.hiddenDim();
        int kvDim = c.kvDim();
        int nl = c.layers();
        int vocab = c.vocabSize();
        // byte offsets of the arrays, in file order
        long embedding = Llama2cHeader.BYTES;
        long rmsAtt = embedding + 4L * vocab * dim;
        long wq = rmsAtt + 4L * nl * dim;
        long wk = wq + 4L * nl * dim * dim;
        long wv = wk + 4L * nl * kvDim * dim;
        long wo = wv + 4L * nl * kvDim * dim;
        long rmsFfn = wo + 4L * nl * dim * dim;
        long w1 = rmsFfn + 4L * nl * dim;
        long w2 = w1 + 4L * nl * hidden * dim;
        long w3 = w2 + 4L * nl * dim * hidden;
        long rmsFinal = w3 + 4L * nl * hidden * dim;
        long freqs = rmsFinal + 4L * dim;
        long wcls = tied ? embedding : freqs + 4L * c.maxContext() * c.headDim();
        java.util.List<LayeredWeights.Piece<LlamaWeights.Layer>> pieces = new java.util.ArrayList<>();
        for (int l = 0; l < nl; l++) {
            int i = l;
            // a layer's rows lie in every array: the piece spans from its rms_att row to its w3 rows
            pieces.add(new LayeredWeights.Piece<>(rmsAtt + 4L * i * dim, w3 + 4L * (i + 1) * hidden * dim, w ->
                    new LlamaWeights.Layer(w.floats(rmsAtt + 4L * i * dim, dim),
                            new Matrix.F32(w.floats(wq + 4L * i * dim * dim, dim * dim), dim, dim),
                            new Matrix.F32(w.floats(wk + 4L * i * kvDim * dim, kvDim * dim), kvDim, dim),
                            new Matrix.F32(w.floats(wv + 4L * i * kvDim * dim, kvDim * dim), kvDim, dim),
                            new Matrix.F32(w.floats(wo + 4L * i * dim * dim, dim * dim), dim, dim),
                            w.floats(rmsFfn + 4L * i * dim, dim),
                            new Matrix.F32(w.floats(w1 + 4L * i * hidden * dim, hidden * dim), hidden, dim),
                            new Matrix.F32(w.floats(w2 + 4L * i * dim * hidden, dim * hidden), dim, hidden),
                            new Matrix.F32(w.floats(w3 + 4L * i * hidden * dim, hidden * dim), hidden, dim))));
        }
        LayeredWeights.Piece<LayeredWeights.Head> head = new LayeredWeights.Piece<>(Math.min(rmsFinal, wcls),
                Math.max(rmsFinal + 4L * dim, wcls + 4L * vocab * dim), w -> new LayeredWeights.Head(
                        w.floats(rmsFinal, dim), new Matrix.F32(w.floats(wcls, vocab * dim), vocab, dim)));
        return new LayeredWeights(c, file, pieces, head, token -> {
            long row = embedding + 4L * token * dim;
            return new LayeredWeights.Piece<>(row, row + 4L * dim, w -> new Embedding.F32(w.floats(row, dim), 1, dim));
        }).validated();
    }

    private static float[] take(FloatBuffer f, int n) {
        float[] out = new float[n];
        f.get(out);
        return out;
    }

    private static float[][] split(float[] all, int parts) {
        int n = all.length / parts;
        float[][] out = new float[parts][];
        for (int p = 0; p < parts; p++) {
            out[p] = Arrays.copyOfRange(all, p * n, (p + 1) * n);
        }
        return out;
    }
}
