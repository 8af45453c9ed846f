package dev.tandem.testing;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.serving.ServedModel;
import java.util.Optional;

/**
 * A {@link CausalLm} with a shape and a rollback capability and nothing else, for tests of the
 * decisions serving makes from them (it never decodes). {@code rollback == false} stands for a
 * stateful OpenVINO model.
 */
public final class ShapeOnlyLm implements CausalLm {
    private final boolean rollback;
    private final ModelShape shape;
    private final CacheStorage storage;

    public ShapeOnlyLm(boolean rollback) {
        this(rollback, new ModelShape(32, 64, 1, 1, 4, 4), rollback ? CacheStorage.KV_BUFFERS : CacheStorage.RUNTIME_STATE);
    }

    /** A model of {@code shape} whose caches would live in {@code storage} (what the memory figures read). */
    public ShapeOnlyLm(boolean rollback, ModelShape shape, CacheStorage storage) {
        this.rollback = rollback;
        this.shape = shape;
        this.storage = storage;
    }

    /** A served model over a {@code ShapeOnlyLm}, with no files, tokenizer, decoders or draft. */
    public static ServedModel served(String id, String engine, boolean rollback) {
        return new ServedModel(id, engine, null, null, new ShapeOnlyLm(rollback), null, null, 0, Optional.empty(), "int8");
    }

    @Override
    public ModelShape shape() {
        return shape;
    }

    @Override
    public CacheStorage cacheStorage() {
        return storage;
    }

    @Override
    public boolean supportsRollback() {
        return rollback;
    }

    @Override
    public KvCache newCache() {
        throw new UnsupportedOperationException("ShapeOnlyLm does not decode");
    }

    @Override
    public Logits forward(KvCache cache, int[] tokens, int offset, int length) {
        throw new UnsupportedOperationException("ShapeOnlyLm does not decode");
    }

    @Override
    public void close() {
    }
}
