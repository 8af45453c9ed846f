package dev.tandem.engine.reference;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.GraphChecks;
import dev.tandem.engine.KvBuffers;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelFiles;
import dev.tandem.engine.ModelShape;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The engine SPI in plain Java: a Llama forward pass written like llama2.c's {@code run.c}, one
 * token at a time, one small method per step (rmsnorm, matmul, rope, attention, swiglu).
 *
 * <p>Weights come from a llama2.c checkpoint ({@link Llama2cCheckpoint}) or from the initializers of
 * an ONNX graph in the Optimum layout ({@link OnnxLlama}), float32 or int8 (tandem's per-token
 * MatMulInteger scheme, emulated exactly: {@link Matrix.U8}).
 *
 * <p>Feeding several tokens runs them one after another through the same single-token pass, so a
 * token's logits never depend on how many tokens were fed with it. The KV cache is a pair of Java
 * arrays per layer holding {@code [position][kvHeads * headDim]} (keys after rotary); truncation
 * just forgets the positions at the end. Products of large matrices split their rows over the
 * common fork-join pool; everything else runs on the calling thread. Thread-safe for calls on
 * different caches.
 *
 * <p>Offload (layered) mode ({@link LayeredWeights}, engine {@code reference-offload}): the weights
 * stay in the file and each forward call maps one piece at a time (a token's embedding row, then
 * each layer, then the final norm and classifier), uses it for all the tokens fed, and unmaps it
 * before the next, so about one layer is resident at once. The tokens go
 * through the model layer by layer instead of token by token; each token meets exactly the same
 * operations in the same order (a layer's keys and values of earlier positions are written before
 * a later position reads them), so the logits are bit-identical to the normal mode's.
 */
public final class ReferenceCausalLm implements CausalLm {
    /** All weights, decoded (normal mode), or null. */
    private final LlamaWeights w;
    /** The weights left in the file (offload mode), or null. */
    private final LayeredWeights layered;
    private final LlamaConfig c;
    /** The sizes; its context may be below the weights' (served shorter, set once by {@link #open(ModelFiles, boolean)}). */
    private ModelShape shape;
    /** cos and sin of every (position, frequency) pair: {@code [maxContext][headDim / 2]}. */
    private final float[] ropeCos;
    private final float[] ropeSin;

    public ReferenceCausalLm(LlamaWeights weights) {
        this(weights, null, weights.config());
    }

    /** The offload (layered) mode: weights decoded from the file a piece at a time, on every forward call. */
    public ReferenceCausalLm(LayeredWeights weights) {
        this(null, weights, weights.config());
    }

    private ReferenceCausalLm(LlamaWeights weights, LayeredWeights layered, LlamaConfig config) {
        this.w = weights;
        this.layered = layered;
        this.c = config;
        this.shape = new ModelShape(c.vocabSize(), c.maxContext(), c.layers(), c.kvHeads(), c.headDim(), 4);
        int half = c.headDim() / 2;
        this.ropeCos = new float[c.maxContext() * half];
        this.ropeSin = new float[c.maxContext() * half];
        for (int pos = 0; pos < c.maxContext(); pos++) {
            for (int i = 0; i < half; i++) {
                // as torch and run.c compute them, in float32: 1 / theta^(2i / headDim), times the position
                float freq = 1.0f / (float) Math.pow(c.ropeTheta(), (2 * i) / (float) c.headDim());
                float angle = pos * freq;
                ropeCos[pos * half + i] = (float) Math.cos(angle);
                ropeSin[pos * half + i] = (float) Math.sin(angle);
            }
        }
    }

    /**
     * A model directory in the Optimum layout: the weights from its ONNX graph's initializers, the
     * sizes and constants from its {@code config.json} ({@link OnnxLlama}); or a llama2.c checkpoint
     * ({@link Llama2cCheckpoint}).
     */
    public static ReferenceCausalLm open(ModelFiles model) {
        return open(model, false);
    }

    /** As {@link #open(ModelFiles)}; {@code offload} leaves the weights in the file (layered mode). */
    public static ReferenceCausalLm open(ModelFiles model, boolean offload) {
        if (model.graph().getFileName().toString().endsWith(".xml")) {
            throw new IllegalArgumentException(model.graph() + ": is an OpenVINO IR, which the reference engine cannot read:"
                    + " serve it with engine=openvino, or point the model directory at an ONNX export");
        }
        ReferenceCausalLm lm = model.isLlama2c() ? openLlama2c(model.graph(), offload)
                : openOnnx(model.graph(), model.configJson(), offload);
        ModelShape expected = model.declared();
        if (lm.shape().vocabSize() != expected.vocabSize() || lm.shape().maxContext() < expected.maxContext()
                || lm.shape().layers() != expected.layers() || lm.shape().kvHeads() != expected.kvHeads()
                || lm.shape().headDim() != expected.headDim()) {
            lm.close();
            throw new IllegalArgumentException(model.graph() + ": the weights give " + lm.shape() + " but "
                    + model.configJson().getFileName() + " says " + expected);
        }
        // served at a shorter context than the model's (tandem.target.max-context): sequences are limited to it
        lm.shape = new ModelShape(lm.shape.vocabSize(), expected.maxContext(), lm.shape.layers(), lm.shape.kvHeads(),
                lm.shape.headDim(), lm.shape.kvBytesPerElement());
        return lm;
    }

    /** A llama2.c checkpoint ({@code .bin}, "legacy" format). */
    public static ReferenceCausalLm openLlama2c(Path checkpoint) {
        return openLlama2c(checkpoint, false);
    }

    /** As {@link #openLlama2c(Path)}; {@code offload} leaves the weights in the file (layered mode). */
    public static ReferenceCausalLm openLlama2c(Path checkpoint, boolean offload) {
        return offload ? new ReferenceCausalLm(Llama2cCheckpoint.offload(checkpoint))
                : new ReferenceCausalLm(Llama2cCheckpoint.load(checkpoint));
    }

    /** An ONNX graph in the Optimum layout, with the {@code config.json} beside it. */
    public static ReferenceCausalLm openOnnx(Path graph, Path configJson) {
        return openOnnx(graph, configJson, false);
    }

    /** As {@link #openOnnx(Path, Path)}; {@code offload} leaves the weights in the file (layered mode). */
    public static ReferenceCausalLm openOnnx(Path graph, Path configJson, boolean offload) {
        return offload ? new ReferenceCausalLm(OnnxLlama.offload(graph, configJson))
                : new ReferenceCausalLm(OnnxLlama.load(graph, configJson));
    }

    /** The decoded weights (normal mode only: an offloaded model has none resident). */
    public LlamaWeights weights() {
        if (w == null) {
            throw new IllegalStateException("offload mode: the weights stay in " + layered.file());
        }
        return w;
    }

    public LlamaConfig config() {
        return c;
    }

    /** True in the offload (layered) mode. */
    public boolean offloaded() {
        return layered != null;
    }

    @Override
    public CacheStorage cacheStorage() {
        return CacheStorage.JAVA_HEAP;
    }

    @Override
    public ModelShape shape() {
        return shape;
    }

    @Override
    public KvCache newCache() {
        return new Cache();
    }

    @Override
    public Logits forward(KvCache kvCache, int[] tokens, int offset, int length) {
        if (!(kvCache instanceof Cache cache) || cache.owner() != this) {
            throw new IllegalArgumentException("cache belongs to another model");
        }
        int total = GraphChecks.checkStep(shape, cache.length, tokens, offset, length);
        cache.ensureOpen();
        cache.ensureCapacity(total, length);
        if (layered != null) {
            forwardLayered(cache, tokens, offset, length);
        } else {
            for (int i = 0; i < length; i++) {
                forwardOne(cache, tokens[offset + i], cache.length, cache.logits, i * c.vocabSize());
                cache.length++;
            }
        }
        return new Logits(FloatBuffer.wrap(cache.logits, 0, length * c.vocabSize()).asReadOnlyBuffer(), length,
                c.vocabSize());
    }

    /** One token at position {@code pos}: writes its keys and values into the cache and its logits into {@code out[at..]}. */
    private void forwardOne(Cache s, int token, int pos, float[] out, int at) {
        float[] x = s.x;
        w.embedding().lookup(token, x);
        for (int l = 0; l < c.layers(); l++) {
            layer(s, w.layers()[l], l, pos, x);
        }
        classify(s, x, w.finalNorm(), w.classifier(), out, at);
    }

    /**
     * The offload mode's forward: the fed tokens go through one piece of the model at a time, each
     * piece mapped from the file, used for every token and unmapped before the next is mapped.
     */
    private void forwardLayered(Cache s, int[] tokens, int offset, int length) {
        float[][] xs = new float[length][c.dim()];
        for (int i = 0; i < length; i++) {
            layered.embed(tokens[offset + i], xs[i]);
        }
        for (int l = 0; l < c.layers(); l++) {
            try (LayeredWeights.Loaded<LlamaWeights.Layer> layer = layered.layer(l)) {  // unmapped before the next
                for (int i = 0; i < length; i++) {
                    layer(s, layer.value(), l, s.length + i, xs[i]);
                }
            }
        }
        try (LayeredWeights.Loaded<LayeredWeights.Head> head = layered.head()) {
            for (int i = 0; i < length; i++) {
                classify(s, xs[i], head.value().finalNorm(), head.value().classifier(), s.logits, i * c.vocabSize());
            }
        }
        s.length += length;
    }

    /** Decoder layer {@code l} on the residual stream {@code x} of the token at {@code pos} (writes its keys and values). */
    private void layer(Cache s, LlamaWeights.Layer layer, int l, int pos, float[] x) {
        // attention block
        rmsnorm(s.xb, x, layer.attnNorm(), c.eps());
        layer.wq().multiply(s.xb, s.q);
        layer.wk().multiply(s.xb, s.k);
        layer.wv().multiply(s.xb, s.v);
        rope(s.q, c.heads(), pos);
        rope(s.k, c.kvHeads(), pos);
        System.arraycopy(s.k, 0, s.keys[l], pos * c.kvDim(), c.kvDim());
        System.arraycopy(s.v, 0, s.values[l], pos * c.kvDim(), c.kvDim());
        attention(s, l, pos);
        layer.wo().multiply(s.attOut, s.xb2);
        add(x, s.xb2);
        // feed-forward block
        rmsnorm(s.xb, x, layer.ffnNorm(), c.eps());
        layer.w1().multiply(s.xb, s.hb);
        layer.w3().multiply(s.xb, s.hb2);
        swiglu(s.hb, s.hb2);
        layer.w2().multiply(s.hb, s.xb2);
        add(x, s.xb2);
    }

    /** The logits of the residual stream {@code x}, into {@code out[at..]}. */
    private void classify(Cache s, float[] x, float[] finalNorm, Matrix classifier, float[] out, int at) {
        rmsnorm(s.xb, x, finalNorm, c.eps());
        classifier.multiply(s.xb, s.row);
        System.arraycopy(s.row, 0, out, at, c.vocabSize());
    }

    /** {@code out = x / sqrt(mean(x^2) + eps) * weight}. */
    static void rmsnorm(float[] out, float[] x, float[] weight, float eps) {
        int n = weight.length;
        float ss = 0f;
        for (int i = 0; i < n; i++) {
            ss += x[i] * x[i];
        }
        float rms = (float) Math.sqrt(ss / n + eps);
        for (int i = 0; i < n; i++) {
            out[i] = x[i] / rms * weight[i];
        }
    }

    /** Rotates each of {@code heads} heads of {@code v} (in place) by the angles of position {@code pos}. */
    void rope(float[] v, int heads, int pos) {
        int hd = c.headDim();
        int half = hd / 2;
        int row = pos * half;
        for (int h = 0; h < heads; h++) {
            int base = h * hd;
            for (int i = 0; i < half; i++) {
                float cos = ropeCos[row + i];
                float sin = ropeSin[row + i];
                // PAIRWISE (llama2.c): dimensions 2i and 2i+1; HALF (Hugging Face rotate_half): i and i + hd/2
                int a = c.rotary() == LlamaConfig.Rotary.PAIRWISE ? base + 2 * i : base + i;
                int b = c.rotary() == LlamaConfig.Rotary.PAIRWISE ? a + 1 : a + half;
                float v0 = v[a];
                float v1 = v[b];
                v[a] = v0 * cos - v1 * sin;
                v[b] = v1 * cos + v0 * sin;
            }
        }
    }

    /** Grouped-query attention of position {@code pos} over positions 0..pos of layer {@code l}, into {@code s.attOut}. */
    private void attention(Cache s, int l, int pos) {
        int hd = c.headDim();
        int kvDim = c.kvDim();
        int group = c.heads() / c.kvHeads();
        float scale = (float) Math.sqrt(hd);
        float[] keys = s.keys[l];
        float[] values = s.values[l];
        for (int h = 0; h < c.heads(); h++) {
            int q = h * hd;
            int kv = (h / group) * hd;  // query heads h*group .. share key/value head h/group
            float[] att = s.att;
            for (int t = 0; t <= pos; t++) {
                float score = 0f;
                int k = t * kvDim + kv;
                for (int i = 0; i < hd; i++) {
                    score += s.q[q + i] * keys[k + i];
                }
                att[t] = score / scale;
            }
            softmax(att, pos + 1);
            Arrays.fill(s.attOut, q, q + hd, 0f);
            for (int t = 0; t <= pos; t++) {
                float a = att[t];
                int v = t * kvDim + kv;
                for (int i = 0; i < hd; i++) {
                    s.attOut[q + i] += a * values[v + i];
                }
            }
        }
    }

    /** Softmax of {@code x[0..n)} in place (normalised by multiplying with 1/sum, as ONNX Runtime's MLAS does). */
    static void softmax(float[] x, int n) {
        float max = x[0];
        for (int i = 1; i < n; i++) {
            max = Math.max(max, x[i]);
        }
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) {
            x[i] *= inv;
        }
    }

    /** {@code gate = silu(gate) * up}, silu(x) = x * sigmoid(x). */
    static void swiglu(float[] gate, float[] up) {
        for (int i = 0; i < gate.length; i++) {
            float g = gate[i];
            gate[i] = g * (1.0f / (1.0f + (float) Math.exp(-g))) * up[i];
        }
    }

    static void add(float[] x, float[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
    }

    @Override
    public void close() {
        // plain Java memory: nothing to release but the offload mode's file
        if (layered != null) {
            layered.close();
        }
    }

    /** One sequence: its keys and values per layer ({@code [position][kvDim]}), scratch vectors, and its logits. */
    private final class Cache implements KvCache {
        int length;
        int capacity;
        boolean closed;
        float[][] keys = new float[c.layers()][0];
        float[][] values = new float[c.layers()][0];
        float[] logits = new float[0];
        final float[] x = new float[c.dim()];
        final float[] xb = new float[c.dim()];
        final float[] xb2 = new float[c.dim()];
        final float[] q = new float[c.qDim()];
        final float[] k = new float[c.kvDim()];
        final float[] v = new float[c.kvDim()];
        final float[] attOut = new float[c.qDim()];
        final float[] att = new float[c.maxContext()];
        final float[] hb = new float[c.hiddenDim()];
        final float[] hb2 = new float[c.hiddenDim()];
        final float[] row = new float[c.vocabSize()];

        CausalLm owner() {
            return ReferenceCausalLm.this;
        }

        void ensureOpen() {
            if (closed) {
                throw new IllegalStateException("KV cache is closed");
            }
        }

        void ensureCapacity(int tokens, int fed) {
            if (logits.length < fed * c.vocabSize()) {
                logits = new float[Math.max(fed, 8) * c.vocabSize()];
            }
            if (tokens > capacity) {
                capacity = KvBuffers.capacityFor(tokens, c.maxContext());  // fixed steps: see there why
                for (int l = 0; l < c.layers(); l++) {
                    keys[l] = Arrays.copyOf(keys[l], capacity * c.kvDim());
                    values[l] = Arrays.copyOf(values[l], capacity * c.kvDim());
                }
            }
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int newLength) {
            ensureOpen();
            if (newLength < 0 || newLength > length) {
                throw new IllegalArgumentException("cannot truncate a cache of " + length + " tokens to " + newLength);
            }
            length = newLength;  // positions beyond are overwritten by the next forward
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                keys = null;
                values = null;
                logits = null;
            }
        }
    }
}
