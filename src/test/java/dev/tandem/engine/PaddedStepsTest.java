package dev.tandem.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.testing.FakeLm;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link PaddedSteps}: a model whose one-row steps alone differ (ONNX Runtime's 4-bit MatMulNBits on an AVX2-only
 * processor) is step-invariant once padded, and padding changes nothing else: the same logits as the inner model for
 * single steps, blocks and batches, rollback, and the last position of the context.
 */
public class PaddedStepsTest {

    @Test
    void aModelWhoseOneRowStepsAloneDifferIsInvariantPadded() {
        CausalLm odd = new OneRowOff(FakeLm.target(512, 64));
        assertFalse(StepInvariance.probe(odd).holds(), "the premise");
        StepInvariance.Choice c = StepInvariance.choose(odd);
        assertTrue(c.holds() && c.isPadded(), c.toString());
        assertTrue(c.padded().holds());
        assertEquals(64, c.invariant().shape().maxContext(), "the whole context");
    }

    @Test
    void paddingDoesNotHelpAModelWhoseBlocksDiffer() {
        CausalLm blocks = new StepInvarianceTest.OffByOneUlp(FakeLm.target(512, 64), true, false);
        StepInvariance.Choice c = StepInvariance.choose(blocks);
        assertFalse(c.holds(), c.toString());
        assertFalse(c.padded().holds());
        assertNull(c.invariant());
    }

    @Test
    void anInvariantModelIsNotPadded() {
        FakeLm lm = FakeLm.target(512, 64);
        StepInvariance.Choice c = StepInvariance.choose(lm);
        assertTrue(c.holds() && !c.isPadded());
        assertNull(c.padded());
        assertEquals(lm, c.invariant());
    }

    /** FakeLm's logits depend on the tokens before a position: a copy left in its cache would change every later row. */
    @Test
    void paddedStepsGiveTheInnerModelsLogitsThroughStepsBlocksBatchesAndRollback() {
        FakeLm inner = FakeLm.target(512, 64);
        PaddedSteps padded = PaddedSteps.of(inner);
        int[] text = new int[40];
        for (int i = 0; i < text.length; i++) {
            text[i] = 3 + (i * 37) % 500;
        }
        try (KvCache a = inner.newCache(); KvCache b = padded.newCache(); KvCache a2 = inner.newCache();
             KvCache b2 = padded.newCache()) {
            for (int i = 0; i < 10; i++) {  // single steps
                assertArrayEquals(inner.forward(a, text, i, 1).row(0), padded.forward(b, text, i, 1).row(0), "step " + i);
                assertEquals(a.length(), b.length());
            }
            Logits x = inner.forward(a, text, 10, 5);  // a block (a verification), then a rollback of three
            Logits y = padded.forward(b, text, 10, 5);
            assertEquals(5, y.rows());
            for (int r = 0; r < 5; r++) {
                assertArrayEquals(x.row(r), y.row(r));
            }
            a.truncate(12);
            b.truncate(12);
            assertEquals(12, b.length());
            inner.forward(a2, text, 0, 3);
            padded.forward(b2, text, 0, 3);
            for (int i = 12; i < 30; i++) {  // batched steps of two sequences, and one alone after a single step
                List<Logits> xs = inner.forward(List.of(Feed.of(a, text[i]), Feed.of(a2, text[i - 9])));
                List<Logits> ys = padded.forward(List.of(Feed.of(b, text[i]), Feed.of(b2, text[i - 9])));
                assertArrayEquals(xs.get(0).row(0), ys.get(0).row(0), "batched step " + i);
                assertArrayEquals(xs.get(1).row(0), ys.get(1).row(0), "batched step " + i);
                assertArrayEquals(inner.forward(List.of(Feed.of(a2, text[i]))).getFirst().row(0),
                        padded.forward(List.of(Feed.of(b2, text[i]))).getFirst().row(0), "a batch of one token " + i);
            }
        }
    }

    /** At the context's last position there is no room for the copy: the previous token is fed again before it. */
    @Test
    void theWholeContextIsServedItsLastPositionAfterThePreviousTokenAgain() {
        FakeLm inner = FakeLm.target(512, 16);
        PaddedSteps padded = PaddedSteps.of(inner);
        assertEquals(16, padded.shape().maxContext());
        try (KvCache a = inner.newCache(); KvCache b = padded.newCache()) {
            for (int i = 0; i < 16; i++) {
                assertArrayEquals(inner.forward(a, 5 + i).row(0), padded.forward(b, 5 + i).row(0), "position " + i);
            }
            assertEquals(16, b.length());
            assertThrows(IllegalArgumentException.class, () -> padded.forward(b, 7), "beyond the context");
            assertEquals(16, b.length(), "a refused feed changes nothing");
            b.truncate(14);  // a rollback, then the last two positions again, one of them after a rejected candidate
            a.truncate(14);
            assertArrayEquals(inner.forward(a, 40).row(0), padded.forward(b, 40).row(0));
            assertArrayEquals(inner.forward(a, 41).row(0), padded.forward(b, 41).row(0), "the last position after 40");
        }
    }

    @Test
    void aModelThatCannotRollBackOrACacheOfAnotherModelIsRefused() {
        CausalLm stateful = new OneRowOff(FakeLm.target(512, 64)) {
            @Override
            public boolean supportsRollback() {
                return false;
            }
        };
        assertThrows(IllegalArgumentException.class, () -> PaddedSteps.of(stateful));
        StepInvariance.Choice c = StepInvariance.choose(stateful);
        assertFalse(c.holds());
        assertNull(c.padded(), "not tried");
        FakeLm inner = FakeLm.target(512, 64);
        try (KvCache foreign = inner.newCache()) {
            assertThrows(IllegalArgumentException.class, () -> PaddedSteps.of(inner).forward(foreign, 5));
        }
    }

    /** On ONNX Runtime's slot pool (the bundled target's layout), padded steps give the unpadded steps' bits. */
    @Test
    void onASlotPoolPaddingChangesNoBit() {
        Path dir = Path.of("src/test/resources/models/slots-tiny");
        ModelDirectory d = ModelDirectory.open(dir);
        try (OrtCausalLm inner = OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults())) {
            assertTrue(StepInvariance.probe(inner).holds(), "the premise: slots-tiny is invariant");
            PaddedSteps padded = PaddedSteps.of(inner);
            int[] text = new int[inner.shape().maxContext()];  // up to the last position, which feeds the previous token again
            for (int i = 0; i < text.length; i++) {
                text[i] = 3 + (i * 53) % (inner.shape().vocabSize() - 3);
            }
            List<float[]> expected = new ArrayList<>();
            try (KvCache a = inner.newCache()) {
                for (int i = 0; i < text.length; i++) {
                    expected.add(inner.forward(a, text, i, 1).row(0));
                }
            }
            try (KvCache b = padded.newCache()) {
                for (int i = 0; i < text.length; i++) {
                    assertArrayEquals(expected.get(i), padded.forward(b, text, i, 1).row(0), "step " + i);
                    if (i % 7 == 6 && i + 1 < text.length) {  // a rejected candidate: fed, then rolled back
                        padded.forward(b, text, i + 1, 1);
                        b.truncate(i + 1);
                    }
                }
            }
        }
    }

    /** A model whose logits move by one ulp when a step computes one row in all (a lone token of a lone sequence). */
    public static class OneRowOff implements CausalLm {
        private final CausalLm inner;

        public OneRowOff(CausalLm inner) {
            this.inner = inner;
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
            return length == 1 ? nudged(l) : l;
        }

        @Override
        public List<Logits> forward(List<Feed> feeds) {
            if (feeds.size() == 1) {
                Feed f = feeds.getFirst();
                return List.of(forward(f.cache(), f.tokens(), f.offset(), f.length()));
            }
            List<Logits> out = new ArrayList<>();
            for (Feed f : feeds) {
                out.add(inner.forward(f.cache(), f.tokens(), f.offset(), f.length()));
            }
            return out;
        }

        private static Logits nudged(Logits l) {
            float[] row = l.row(0);
            row[7] = Math.nextUp(row[7]);
            return new Logits(FloatBuffer.wrap(row), 1, l.vocabSize());
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
