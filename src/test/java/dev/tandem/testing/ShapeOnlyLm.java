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

    public ShapeOnlyLm(boolean rollback) {
        this.rollback = rollback;
    }

    /** A served model over a {@code ShapeOnlyLm}, with no files, tokenizer, decoders or draft. */
    public static ServedModel served(String id, String engine, boolean rollback) {
        return new ServedModel(id, engine, null, null, new ShapeOnlyLm(rollback), null, null, 0, Optional.empty(), "int8");
    }

    @Override
    public ModelShape shape() {
        return new ModelShape(32, 64, 1, 1, 4, 4);
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
