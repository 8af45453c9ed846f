package dev.tandem.engine.reference;

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
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        try {
            return parse(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
        } catch (IllegalArgumentException | java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(file + ": not a llama2.c checkpoint: " + e, e);
        }
    }

    static LlamaWeights parse(ByteBuffer b) {
        if (b.remaining() < 28) {
            throw new IllegalArgumentException("shorter than the 28-byte header");
        }
        int dim = b.getInt();
        int hidden = b.getInt();
        int layers = b.getInt();
        int heads = b.getInt();
        int kvHeads = b.getInt();
        int vocabField = b.getInt();
        int seqLen = b.getInt();
        boolean tied = vocabField > 0;
        int vocab = Math.abs(vocabField);
        if (heads <= 0 || dim % heads != 0) {
            throw new IllegalArgumentException("dim " + dim + " does not divide into " + heads + " heads");
        }
        int headDim = dim / heads;
        LlamaConfig c = new LlamaConfig(dim, hidden, layers, heads, kvHeads, headDim, vocab, seqLen, 1e-5f, 10000f,
                LlamaConfig.Rotary.PAIRWISE);
        int kvDim = c.kvDim();
        long expected = (long) vocab * dim + 2L * layers * dim + (long) layers * (2L * dim * dim + 2L * kvDim * dim)
                + 3L * layers * hidden * dim + dim + (long) seqLen * headDim + (tied ? 0 : (long) vocab * dim);
        FloatBuffer f = b.asFloatBuffer();
        if (f.remaining() != expected) {
            throw new IllegalArgumentException("the header " + c + " needs " + expected + " float32 values after it, the file has "
                    + f.remaining());
        }
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
