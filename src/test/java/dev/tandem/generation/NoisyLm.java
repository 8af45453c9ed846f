package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import java.nio.FloatBuffer;

/**
 * A deliberately poor draft for tests: the wrapped model's logits plus large deterministic noise
 * (a function of position and token), so it often disagrees with the model it wraps.
 */
public final class NoisyLm implements CausalLm {
    private final CausalLm inner;
    private final float amplitude;

    public NoisyLm(CausalLm inner, float amplitude) {
        this.inner = inner;
        this.amplitude = amplitude;
    }

    @Override
    public ModelShape shape() {
        return inner.shape();
    }

    @Override
    public boolean supportsRollback() {
        return inner.supportsRollback();
    }

    @Override
    public KvCache newCache() {
        return inner.newCache();
    }

    @Override
    public Logits forward(KvCache cache, int[] tokens, int offset, int length) {
        int past = cache.length();
        Logits l = inner.forward(cache, tokens, offset, length);
        int v = l.vocabSize();
        float[] noisy = new float[l.rows() * v];
        for (int r = 0; r < l.rows(); r++) {
            for (int t = 0; t < v; t++) {
                double h = Math.sin((past + r) * 78.233 + t * 12.9898) * 43758.5453;
                noisy[r * v + t] = l.get(r, t) + amplitude * (float) (h - Math.floor(h) - 0.5);
            }
        }
        return new Logits(FloatBuffer.wrap(noisy), l.rows(), v);
    }

    @Override
    public void close() {
    }
}
