package dev.tandem.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * A causal language model with explicit, per-sequence KV caches: the engine SPI.
 *
 * <p>Everything the decoding loops need is here. {@link #forward} appends any number of tokens to a
 * sequence's cache (a prompt prefill, one decode step, or the last accepted token plus k draft
 * tokens to verify) and returns the logits of every fed position; {@link KvCache#truncate} rolls a
 * cache back after rejected draft tokens; {@link KvCache#close} releases it.
 *
 * <p>Implementations are thread-safe for calls on <em>different</em> caches; one cache is used by
 * one thread at a time.
 *
 * <p>{@link #forward(List)} is the batched step: several sequences, each with its own block of
 * tokens and its own cache, in as few runtime calls as the engine can make (the scheduler calls it
 * once per step for every running sequence). The default loops over {@link #forward(KvCache, int[],
 * int, int)}; engines that can run a batch in one call override it.
 */
public interface CausalLm extends AutoCloseable {

    /** Shape facts read from the model (vocabulary, context, cache geometry). */
    ModelShape shape();

    /** A new, empty cache for one sequence. The caller closes it. */
    KvCache newCache();

    /**
     * Feeds {@code length} tokens from {@code tokens[offset..]} after what {@code cache} already
     * holds, appends their keys and values to it, and returns one row of logits per fed token.
     *
     * <p>The returned logits are a view owned by the cache: valid until the next {@code forward}
     * or {@code truncate} on the same cache, or its close.
     *
     * @throws IllegalArgumentException if the tokens would exceed {@link ModelShape#maxContext()}
     *     or an id is outside the vocabulary
     */
    Logits forward(KvCache cache, int[] tokens, int offset, int length);

    /**
     * Whether {@link KvCache#truncate} to a <em>shorter</em> length works on this model's caches.
     * Assisted decoding needs it (rejected candidates are rolled back every round, in the target and
     * in a draft model); plain decoding never truncates. Models whose cache lives inside the runtime
     * (an OpenVINO stateful IR, whose C API has no variable-state calls) return false: their
     * {@code truncate} accepts only the current length and throws {@link UnsupportedOperationException}
     * otherwise.
     */
    default boolean supportsRollback() {
        return true;
    }

    /**
     * Feeds every sequence its block of tokens and returns each feed's logits, in the order of
     * {@code feeds} (one row per fed token). The caches must be distinct.
     *
     * <p>The returned logits are valid until the next {@code forward} of this model that involves
     * any of these caches (a batched engine hands out views of one output buffer), or until one of
     * the caches is truncated or closed. The outcome for a feed is the outcome {@link #forward(KvCache,
     * int[], int, int)} would have given it alone: engines document where batching changes the last
     * bits of float results (the bundled target's graph is built so that it does not).
     *
     * @throws IllegalArgumentException as {@link #forward(KvCache, int[], int, int)}, for any feed; then no
     *     cache has changed
     */
    default List<Logits> forward(List<Feed> feeds) {
        for (Feed f : feeds) {  // validate all before running any, so a bad feed changes nothing
            GraphChecks.checkStep(shape(), f.cache().length(), f.tokens(), f.offset(), f.length());
        }
        List<Logits> out = new ArrayList<>(feeds.size());
        for (Feed f : feeds) {
            out.add(forward(f.cache(), f.tokens(), f.offset(), f.length()));
        }
        return out;
    }

    /** Where an engine keeps a sequence's KV cache: what memory planning and admission count. */
    enum CacheStorage {
        /** Native buffers of the engine's own ({@link KvBuffers}: ONNX Runtime, stateless OpenVINO). */
        KV_BUFFERS,
        /** Java arrays on the heap (the reference engine). */
        JAVA_HEAP,
        /** Inside the runtime, not observable (a stateful OpenVINO IR). */
        RUNTIME_STATE,
        /** A row of a pool shared by every cache of the model (a slots-layout graph on ONNX Runtime or OpenVINO). */
        SLOT_POOL
    }

    /** Where this model's caches live; a model that cannot roll back keeps them inside the runtime. */
    default CacheStorage cacheStorage() {
        return supportsRollback() ? CacheStorage.KV_BUFFERS : CacheStorage.RUNTIME_STATE;
    }

    /** Convenience for feeding a whole array. */
    default Logits forward(KvCache cache, int... tokens) {
        return forward(cache, tokens, 0, tokens.length);
    }

    /** Releases the model's native resources. Caches must be closed before. */
    @Override
    void close();
}
