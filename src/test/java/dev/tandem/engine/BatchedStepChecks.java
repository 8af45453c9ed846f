package dev.tandem.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The batched step ({@link CausalLm#forward(List)}) checked against single forwards, for any engine and graph. */
public final class BatchedStepChecks {
    private BatchedStepChecks() {
    }

    /** One sequence fed twice over: through batched steps ({@code batched}) and alone ({@code alone}). */
    private static final class Seq {
        final KvCache batched;
        final KvCache alone;
        final int[] text;
        int at;

        Seq(CausalLm lm, int[] source, int shift) {
            batched = lm.newCache();
            alone = lm.newCache();
            text = Arrays.copyOfRange(source, shift, source.length);
            text[0] = source[0];  // every sequence starts with BOS
        }

        Feed feed(int n) {
            return new Feed(batched, text, at, n);
        }

        void truncate(int length) {
            batched.truncate(length);
            alone.truncate(length);
            at = length;
        }

        void close() {
            batched.close();
            alone.close();
        }
    }

    /**
     * The batched step against single forwards on the same model: every feed's logits must equal (within
     * {@code tolerance}; 0 = the same bits) what the same tokens give fed alone to a cache with the same past.
     * Covers rows of different lengths, prefill and verification blocks next to single-token steps, truncation
     * between steps, a sequence joining and one leaving the batch (closed while the others continue), a step
     * that leaves a sequence out, and invalid batches that must change nothing. {@code text} needs 140 tokens.
     */
    public static void check(CausalLm lm, int[] text, double tolerance) {
        List<Seq> seqs = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                seqs.add(new Seq(lm, text, 7 * i));
            }
            Seq a = seqs.get(0);
            Seq b = seqs.get(1);
            Seq c = seqs.get(2);
            Seq d = seqs.get(3);
            step(lm, tolerance, "prefills of 5, 17, 30 and 64 tokens", a, 5, b, 17, c, 30, d, 64);
            for (int i = 0; i < 3; i++) {
                step(lm, tolerance, "decode step " + i, a, 1, b, 1, c, 1, d, 1);
            }
            step(lm, tolerance, "verifications next to single steps", a, 5, b, 1, c, 3, d, 1);
            b.truncate(b.at - 3);
            c.truncate(c.at - 2);
            step(lm, tolerance, "after truncation", a, 1, b, 4, c, 1, d, 6);

            Seq e = new Seq(lm, text, 40);  // joins with its prompt while the others decode
            seqs.add(e);
            step(lm, tolerance, "a sequence joins", a, 1, b, 1, e, 9, c, 1, d, 1);
            seqs.remove(b);
            b.close();  // leaves while the others continue
            step(lm, tolerance, "after one left", a, 1, c, 2, d, 1, e, 1);
            step(lm, tolerance, "a step without c", d, 1, a, 3, e, 1);
            step(lm, tolerance, "c again", c, 1, a, 1, d, 1, e, 5);
            Seq f = new Seq(lm, text, 3);  // a long prompt chunk beside decode steps (a batching engine may run it apart)
            seqs.add(f);
            step(lm, tolerance, "a long prompt chunk", a, 1, f, 40, c, 2, e, 1);
            step(lm, tolerance, "after the long chunk", f, 1, a, 1, c, 1);

            int[] lengths = seqs.stream().mapToInt(s -> s.batched.length()).toArray();
            int[] bad = {5, lm.shape().vocabSize()};
            assertThrows(IllegalArgumentException.class, () -> lm.forward(List.of(a.feed(1), new Feed(d.batched, bad, 0, 2))),
                    "a token outside the vocabulary");
            int[] tooLong = new int[lm.shape().maxContext()];
            assertThrows(IllegalArgumentException.class, () -> lm.forward(List.of(new Feed(e.batched, tooLong, 0, tooLong.length),
                    a.feed(1))), "beyond the context");
            KvCache closed = lm.newCache();
            closed.close();
            // first: the default loop of single forwards (which does not look ahead for closed caches) fails before any step
            assertThrows(IllegalStateException.class, () -> lm.forward(List.of(Feed.of(closed, 1), a.feed(1))), "a closed cache");
            assertArrayEquals(lengths, seqs.stream().mapToInt(s -> s.batched.length()).toArray(),
                    "a refused batch changes no cache");
            step(lm, tolerance, "after refused batches", a, 1, c, 1, d, 1, e, 1);
            assertTrue(lm.forward(List.of()).isEmpty());
        } finally {
            seqs.forEach(Seq::close);
        }
    }

    /** One batched step of {@code (Seq, count)...}, checked feed by feed against the same tokens fed alone. */
    private static void step(CausalLm lm, double tolerance, String what, Object... seqAndCount) {
        List<Feed> feeds = new ArrayList<>();
        List<Seq> order = new ArrayList<>();
        for (int i = 0; i < seqAndCount.length; i += 2) {
            Seq s = (Seq) seqAndCount[i];
            feeds.add(s.feed((Integer) seqAndCount[i + 1]));
            order.add(s);
        }
        List<Logits> out = lm.forward(feeds);
        assertEquals(feeds.size(), out.size());
        float[][][] batched = new float[feeds.size()][][];
        for (int i = 0; i < feeds.size(); i++) {
            Logits l = out.get(i);
            assertEquals(feeds.get(i).length(), l.rows(), what + ": one row per fed token");
            batched[i] = new float[l.rows()][];
            for (int r = 0; r < l.rows(); r++) {
                batched[i][r] = l.row(r);
            }
        }
        for (int i = 0; i < feeds.size(); i++) {
            Seq s = order.get(i);
            Feed f = feeds.get(i);
            Logits alone = lm.forward(s.alone, f.tokens(), f.offset(), f.length());
            for (int r = 0; r < f.length(); r++) {
                String where = what + ": feed " + i + " (past " + s.at + ", " + f.length() + " fed) row " + r;
                if (tolerance == 0) {
                    assertBitwise(alone.row(r), batched[i][r], where);
                } else {
                    assertClose(alone.row(r), batched[i][r], tolerance, where);
                }
            }
            s.at += f.length();
            assertEquals(s.at, s.batched.length(), what);
        }
    }

    public static void assertBitwise(float[] expected, float[] actual, String where) {
        assertEquals(expected.length, actual.length);
        int differ = 0;
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                differ++;
                worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
            }
        }
        assertEquals(0, differ, where + ": " + differ + " logits differ from the single forward's (max " + worst + ")");
    }


    public static void assertClose(float[] expected, float[] actual, double tolerance, String where) {
        EngineContractTest.assertClose(expected, actual, tolerance, where);
    }
}
