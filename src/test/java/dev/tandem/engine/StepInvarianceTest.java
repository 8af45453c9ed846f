package dev.tandem.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.testing.FakeLm;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The probe the service runs on an engine's own graph before serving it (ModelRegistry.openInvariant): it must pass
 * a model that gives every token the same bits however it is fed, and catch one that moves a single last bit when
 * tokens come in a block or in a batch.
 */
class StepInvarianceTest {

    @Test
    void aModelThatComputesEachTokenTheSameWayPasses() {
        StepInvariance.Result r = StepInvariance.probe(FakeLm.target(512, 64));
        assertTrue(r.holds(), r.toString());
        assertEquals(2 * StepInvariance.BLOCK + StepInvariance.BLOCK, r.rowsProbed(), "a block of 8 and 8 batched steps of 2");
        assertEquals(0, r.rowsDiffering());
    }

    @Test
    void oneBitOffInABlockIsCaught() {
        StepInvariance.Result r = StepInvariance.probe(new OffByOneUlp(FakeLm.target(512, 64), true, false));
        assertFalse(r.holds(), r.toString());
        assertEquals(StepInvariance.BLOCK, r.rowsDiffering(), "every row of the block, no batched row");
        assertTrue(r.worst() > 0 && r.worst() < 1e-5f, "one ulp: " + r.worst());
    }

    @Test
    void oneBitOffInABatchIsCaught() {
        StepInvariance.Result r = StepInvariance.probe(new OffByOneUlp(FakeLm.target(512, 64), false, true));
        assertFalse(r.holds(), r.toString());
        assertEquals(2 * StepInvariance.BLOCK, r.rowsDiffering(), "both rows of every batched step, not the block");
    }

    /** A model served with a context of 2 tokens (tandem.target.max-context) has no block after a past to probe. */
    @Test
    void aContextTooShortForABlockIsNotProbed() {
        StepInvariance.Result r = StepInvariance.probe(new OffByOneUlp(FakeLm.target(512, 2), true, true));
        assertTrue(r.holds());
        assertEquals(0, r.rowsProbed());
        StepInvariance.Result three = StepInvariance.probe(new OffByOneUlp(FakeLm.target(512, 3), true, true));
        assertFalse(three.holds(), "from 3 tokens a block of 2 after one: " + three);
    }

    /** A model whose logits move by one ulp (at one vocabulary entry) when fed a block, or inside a batch of several. */
    static final class OffByOneUlp implements CausalLm {
        private final CausalLm inner;
        private final boolean blocks;
        private final boolean batches;

        OffByOneUlp(CausalLm inner, boolean blocks, boolean batches) {
            this.inner = inner;
            this.blocks = blocks;
            this.batches = batches;
        }

        @Override
        public ModelShape shape() {
            return inner.shape();
        }

        @Override
        public KvCache newCache() {
            return inner.newCache();
        }

        @Override
        public Logits forward(KvCache cache, int[] tokens, int offset, int length) {
            Logits l = inner.forward(cache, tokens, offset, length);
            return blocks && length > 1 ? nudged(l) : l;
        }

        @Override
        public List<Logits> forward(List<Feed> feeds) {
            List<Logits> out = new ArrayList<>();
            for (Feed f : feeds) {
                Logits l = inner.forward(f.cache(), f.tokens(), f.offset(), f.length());
                out.add(batches && feeds.size() > 1 ? nudged(l) : l);
            }
            return out;
        }

        private static Logits nudged(Logits l) {
            float[] all = new float[l.rows() * l.vocabSize()];
            for (int r = 0; r < l.rows(); r++) {
                float[] row = l.row(r);
                row[7] = Math.nextUp(row[7]);
                System.arraycopy(row, 0, all, r * l.vocabSize(), l.vocabSize());
            }
            return new Logits(FloatBuffer.wrap(all), l.rows(), l.vocabSize());
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
