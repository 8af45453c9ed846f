package dev.tandem.testing;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.GraphChecks;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A deterministic stand-in for a language model, in plain Java (no native library), for tests of
 * the decoding loop. The logits at a position are a hash of the last three tokens up to it (or of the
 * position alone), over a sparse support of {@code support} likely tokens, so greedy text is
 * reproducible, sampled text has a known distribution, and a "draft" built with another noise seed
 * agrees with the target only part of the time. Its cache holds the fed tokens; a position's logits
 * depend only on the tokens before it, so results are the same whatever the batch. Every batched
 * call is recorded.
 */
public final class FakeLm implements CausalLm {
    private final ModelShape shape;
    private final long seed;
    private final long noiseSeed;
    private final float noise;
    private final int support;
    private final boolean positionOnly;
    private final float eosLogit;
    private final int eosId;
    private final AtomicInteger openCaches = new AtomicInteger();
    /** Per batched call: the number of tokens each feed carried. */
    private final List<int[]> calls = Collections.synchronizedList(new ArrayList<>());

    /**
     * @param vocab        vocabulary size
     * @param maxContext   context length
     * @param seed         the model: which tokens are likely after which
     * @param noiseSeed    a second hash mixed in with weight {@code noise} (a draft that disagrees)
     * @param noise        0 for the target; larger for a worse draft
     * @param support      how many tokens have non-negligible probability at a position
     * @param positionOnly logits depend on the position only (a known distribution per position)
     * @param eosId        the EOS token
     * @param eosLogit     EOS's logit (very negative: never; around the others: sometimes)
     */
    public FakeLm(int vocab, int maxContext, long seed, long noiseSeed, float noise, int support, boolean positionOnly,
                  int eosId, float eosLogit) {
        this.shape = new ModelShape(vocab, maxContext, 2, 2, 8, 4);
        this.seed = seed;
        this.noiseSeed = noiseSeed;
        this.noise = noise;
        this.support = support;
        this.positionOnly = positionOnly;
        this.eosId = eosId;
        this.eosLogit = eosLogit;
    }

    /** A target: history-dependent, EOS rare. */
    public static FakeLm target(int vocab, int maxContext) {
        return new FakeLm(vocab, maxContext, 11, 0, 0, 6, false, 2, -3f);
    }

    /** A draft of {@code target}: the same hash plus noise of weight {@code noise}. */
    public FakeLm draft(float noise) {
        return new FakeLm(shape.vocabSize(), shape.maxContext(), seed, seed * 7919 + 13, noise, support, positionOnly, eosId,
                eosLogit);
    }

    @Override
    public ModelShape shape() {
        return shape;
    }

    @Override
    public KvCache newCache() {
        openCaches.incrementAndGet();
        return new Cache();
    }

    /** Caches created and not yet closed. */
    public int openCaches() {
        return openCaches.get();
    }

    /** Tokens per feed of every batched call so far. */
    public List<int[]> calls() {
        synchronized (calls) {
            return List.copyOf(calls);
        }
    }

    public void clearCalls() {
        calls.clear();
    }

    @Override
    public Logits forward(KvCache kvCache, int[] tokens, int offset, int length) {
        Cache cache = (Cache) kvCache;
        if (cache.closed) {
            throw new IllegalStateException("KV cache is closed");
        }
        GraphChecks.checkStep(shape, cache.length, tokens, offset, length);
        float[] out = new float[length * shape.vocabSize()];
        for (int i = 0; i < length; i++) {
            cache.append(tokens[offset + i]);
            logitsAt(cache.tokens, cache.length - 1, out, i * shape.vocabSize());
        }
        return new Logits(FloatBuffer.wrap(out), length, shape.vocabSize());
    }

    @Override
    public List<Logits> forward(List<Feed> feeds) {
        Set<KvCache> distinct = new HashSet<>();
        int[] sizes = new int[feeds.size()];
        for (int i = 0; i < feeds.size(); i++) {
            Feed f = feeds.get(i);
            if (!distinct.add(f.cache())) {
                throw new IllegalArgumentException("a cache is fed twice in one call");
            }
            GraphChecks.checkStep(shape, f.cache().length(), f.tokens(), f.offset(), f.length());
            sizes[i] = f.length();
        }
        calls.add(sizes);
        List<Logits> out = new ArrayList<>(feeds.size());
        for (Feed f : feeds) {
            out.add(forward(f.cache(), f.tokens(), f.offset(), f.length()));
        }
        return out;
    }

    /** The logits after {@code tokens[0..p]} (the token at position p is the last one seen). */
    private void logitsAt(int[] tokens, int p, float[] out, int at) {
        int vocab = shape.vocabSize();
        long h = positionOnly ? mix(seed + p) : mix(seed ^ mix(tokens[p] + 31L * (p > 0 ? tokens[p - 1] : -1)
                + 961L * (p > 1 ? tokens[p - 2] : -1)));
        long hn = positionOnly ? mix(noiseSeed + p) : mix(noiseSeed ^ mix(tokens[p] + 31L * (p > 0 ? tokens[p - 1] : -1)
                + 961L * (p > 1 ? tokens[p - 2] : -1)));
        Arrays.fill(out, at, at + vocab, -30f);
        for (int j = 0; j < support; j++) {
            int tok = 3 + (int) Long.remainderUnsigned(mix(h + j), vocab - 3);
            float value = (float) (Long.remainderUnsigned(mix(h * 31 + j), 1000) / 250.0);  // 0..4
            out[at + tok] = Math.max(out[at + tok], value);
        }
        if (noise > 0) {
            for (int j = 0; j < support; j++) {
                int tok = 3 + (int) Long.remainderUnsigned(mix(hn + j), vocab - 3);
                out[at + tok] += noise * (float) (Long.remainderUnsigned(mix(hn * 31 + j), 1000) / 1000.0);
            }
        }
        out[at + eosId] = eosLogit;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 33)) * 0xff51afd7ed558ccdL;
        z = (z ^ (z >>> 33)) * 0xc4ceb9fe1a85ec53L;
        return z ^ (z >>> 33);
    }

    @Override
    public void close() {
    }

    private final class Cache implements KvCache {
        private int[] tokens = new int[64];
        private int length;
        private boolean closed;

        void append(int t) {
            if (length == tokens.length) {
                tokens = Arrays.copyOf(tokens, length * 2);
            }
            tokens[length++] = t;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int newLength) {
            if (newLength < 0 || newLength > length) {
                throw new IllegalArgumentException("cannot truncate " + length + " to " + newLength);
            }
            length = newLength;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                openCaches.decrementAndGet();
            }
        }
    }
}
