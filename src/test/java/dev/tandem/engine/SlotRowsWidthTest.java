package dev.tandem.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The slot pool's width follows the longest row in use ({@link SlotRows}, "The width follows the longest row"):
 * calls get tensors of the smallest multiple of 64 that holds what they write, rows move in place when it changes,
 * and nothing a row holds is lost or overwritten by padding. The runtime here is a stand-in for a slots graph, in
 * Java: it reads and writes the pool's memory exactly as the graph does (tensors {@code [batch, kvHeads, w,
 * headDim]} over the rows of the call), and a token's keys depend on its id, its position and every key before it
 * in its row, its logits on every key up to its own. So any key lost in a move, or overwritten by padding, changes
 * the logits of every later token of that row, which are compared with {@link Reference}, the same function over
 * plain arrays (a pool of unbounded, fixed width).
 */
class SlotRowsWidthTest {
    /** Context 256: the full width W is 256, reached by a row that fills the context. */
    static final ModelShape SHAPE = new ModelShape(5, 256, 1, 2, 3, 4);
    static final int SLOTS = 2;

    /** The stand-in graph over a pool: records the width of every call, checks every position is below it. */
    static final class FakeSlots extends SlotRows {
        final List<Integer> widths = Collections.synchronizedList(new ArrayList<>());

        FakeSlots(int capacity) {
            super(SHAPE, SLOTS, capacity);
        }

        @Override
        protected void run(Row single, int first, int batch, int steps, MemorySegment ids, MemorySegment positions,
                           MemorySegment logits) {
            int w = width();
            widths.add(w);
            MemorySegment[] pool = new MemorySegment[SLOTS];
            for (int s = 0; s < SLOTS; s++) {
                pool[s] = slotRows(s, first, batch);
                assertEquals((long) batch * SHAPE.kvHeads() * w * SHAPE.headDim() * 4, pool[s].byteSize());
            }
            for (int b = 0; b < batch; b++) {
                int row = b;
                Keys keys = (s, h, c, d) -> pool[s].getAtIndex(ValueLayout.JAVA_FLOAT,
                        (((long) row * SHAPE.kvHeads() + h) * w + c) * SHAPE.headDim() + d);
                for (int t = 0; t < steps; t++) {
                    long id = ids.getAtIndex(ValueLayout.JAVA_LONG, (long) b * steps + t);
                    int pos = (int) positions.getAtIndex(ValueLayout.JAVA_LONG, (long) b * steps + t);
                    assertTrue(pos >= 0 && pos < w, "position " + pos + " fed at width " + w);
                    long prefix = digest(keys, pos);
                    for (int s = 0; s < SLOTS; s++) {
                        for (int h = 0; h < SHAPE.kvHeads(); h++) {
                            for (int d = 0; d < SHAPE.headDim(); d++) {
                                pool[s].setAtIndex(ValueLayout.JAVA_FLOAT,
                                        (((long) row * SHAPE.kvHeads() + h) * w + pos) * SHAPE.headDim() + d,
                                        key(id, pos, prefix, s, h, d));
                            }
                        }
                    }
                    float[] l = logits(digest(keys, pos + 1));
                    for (int v = 0; v < l.length; v++) {
                        logits.setAtIndex(ValueLayout.JAVA_FLOAT, ((long) b * steps + t) * SHAPE.vocabSize() + v, l[v]);
                    }
                }
            }
        }
    }

    interface Keys {
        float at(int slot, int head, int column, int d);
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** Every key and value of columns {@code [0, columns)} of a row. */
    static long digest(Keys keys, int columns) {
        long h = 17;
        for (int s = 0; s < SLOTS; s++) {
            for (int head = 0; head < SHAPE.kvHeads(); head++) {
                for (int c = 0; c < columns; c++) {
                    for (int d = 0; d < SHAPE.headDim(); d++) {
                        h = mix(h + Float.floatToRawIntBits(keys.at(s, head, c, d)));
                    }
                }
            }
        }
        return h;
    }

    /** A finite key or value for a token at a position after a prefix. */
    static float key(long id, int pos, long prefix, int s, int h, int d) {
        long z = mix(mix(mix(prefix + id) + pos) + 31L * (s * 7 + h * 3 + d));
        return (float) ((z >>> 40) / (double) (1 << 24)) - 0.5f;
    }

    static float[] logits(long digest) {
        float[] l = new float[SHAPE.vocabSize()];
        for (int v = 0; v < l.length; v++) {
            l[v] = (float) ((mix(digest + v) >>> 40) / (double) (1 << 24));
        }
        return l;
    }

    /** The same function over plain arrays: what a sequence's logits must be, whatever the pool did. */
    static final class Reference {
        final float[][][][] keys = new float[SLOTS][SHAPE.kvHeads()][SHAPE.maxContext()][SHAPE.headDim()];
        int length;

        float[] feed(int id) {
            int pos = length++;
            Keys k = (s, h, c, d) -> keys[s][h][c][d];
            long prefix = digest(k, pos);
            for (int s = 0; s < SLOTS; s++) {
                for (int h = 0; h < SHAPE.kvHeads(); h++) {
                    for (int d = 0; d < SHAPE.headDim(); d++) {
                        keys[s][h][pos][d] = key(id, pos, prefix, s, h, d);
                    }
                }
            }
            return logits(digest(k, pos + 1));
        }
    }

    /** A sequence: its row in the pool and its reference. */
    static final class Seq {
        final SlotRows.Row row;
        final Reference ref = new Reference();
        final Random tokens;

        Seq(FakeSlots pool, long seed) {
            row = pool.newRow();
            tokens = new Random(seed);
        }

        int[] next(int n) {
            int[] t = new int[n];
            for (int i = 0; i < n; i++) {
                t[i] = tokens.nextInt(SHAPE.vocabSize());
            }
            return t;
        }

        Feed feed(int[] t) {
            return new Feed(row, t, 0, t.length);
        }

        void expect(int[] t, Logits got, String what) {
            for (int i = 0; i < t.length; i++) {
                assertArrayEquals(ref.feed(t[i]), got.row(i), what + ", token " + i + " of " + t.length);
            }
            assertEquals(ref.length, row.length());
        }

        void forward(FakeSlots pool, int n, String what) {
            int[] t = next(n);
            expect(t, pool.forward(row, t, 0, n), what);
        }

        void truncate(int length) {
            row.truncate(length);
            ref.length = length;
        }
    }

    static void step(FakeSlots pool, List<Seq> stepped, List<Integer> fed, String what) {
        List<int[]> tokens = new ArrayList<>();
        List<Feed> feeds = new ArrayList<>();
        for (int i = 0; i < stepped.size(); i++) {
            int[] t = stepped.get(i).next(fed.get(i));
            tokens.add(t);
            feeds.add(stepped.get(i).feed(t));
        }
        List<Logits> out = pool.forward(feeds);
        for (int i = 0; i < stepped.size(); i++) {
            stepped.get(i).expect(tokens.get(i), out.get(i), what + ", sequence " + i);
        }
    }

    static int last(List<Integer> widths) {
        return widths.get(widths.size() - 1);
    }

    @Test
    void shortRowsRunAtTheSmallestWidth() {
        try (FakeSlots pool = new FakeSlots(8)) {
            assertEquals(256, pool.maxWidth());
            Seq a = new Seq(pool, 1);
            Seq b = new Seq(pool, 2);
            a.forward(pool, 10, "prefill a");
            b.forward(pool, 20, "prefill b");
            step(pool, List.of(a, b), List.of(1, 6), "a decode step beside a verification");
            assertEquals(List.of(64, 64, 64), pool.widths, "rows of 10 to 26 tokens need 64 columns");
            assertEquals(64, pool.width());
            assertEquals(2L * SLOTS * 3 * 256 * 4, pool.rowBytes(), "a row still reserves the full width");
        }
    }

    @Test
    void widensWhenARowCrossesAMultipleOf64AndNarrowsWhenItLeaves() {
        try (FakeSlots pool = new FakeSlots(8)) {
            Seq b = new Seq(pool, 2);
            Seq a = new Seq(pool, 1);  // between b and c: in the range of a step that feeds those two
            Seq c = new Seq(pool, 3);
            a.forward(pool, 60, "prefill a");
            b.forward(pool, 5, "prefill b");
            c.forward(pool, 7, "prefill c");
            step(pool, List.of(a, b, c), List.of(4, 1, 1), "a reaches 64 columns exactly");
            assertEquals(64, last(pool.widths));
            // a, at exactly 64 columns and not stepped, gets padding at position 64: the pool widens rather than
            // clamping it onto a's last key at 63
            step(pool, List.of(b, c), List.of(1, 1), "b and c, a between them");
            assertEquals(128, last(pool.widths));
            a.forward(pool, 1, "a after the move");
            b.forward(pool, 1, "b after the move");
            assertEquals(128, last(pool.widths));
            a.forward(pool, 100, "a past 128 alone");
            assertEquals(192, last(pool.widths), "a single forward widens the pool too");
            step(pool, List.of(a, b, c), List.of(1, 1, 1), "all after the second move");
            assertEquals(192, last(pool.widths));
            a.row.close();
            assertEquals(64, pool.width(), "the long row left");
            step(pool, List.of(b, c), List.of(1, 1), "b and c after a left (c moved into a's row)");
            assertEquals(64, last(pool.widths));
        }
    }

    /**
     * A verification that crosses a multiple of 64 and rolls back must not narrow and widen the pool at every step:
     * it narrows once the longest row is {@link SlotRows#SHRINK_MARGIN} columns below a smaller width.
     */
    @Test
    void rollbackAcrossAMultipleOf64DoesNotFlap() {
        try (FakeSlots pool = new FakeSlots(8)) {
            Seq a = new Seq(pool, 1);
            Seq b = new Seq(pool, 2);
            a.forward(pool, 60, "prefill a");
            b.forward(pool, 3, "prefill b");
            for (int i = 0; i < 5; i++) {
                step(pool, List.of(a, b), List.of(17, 1), "verification " + i);
                assertEquals(128, last(pool.widths));
                a.truncate(60 + i);
            }
            a.truncate(40);
            step(pool, List.of(a, b), List.of(1, 1), "after truncating a to 40");
            assertEquals(128, last(pool.widths), "41 + the margin still needs 128 columns");
            a.truncate(20);
            step(pool, List.of(a, b), List.of(1, 1), "after truncating a to 20");
            assertEquals(64, last(pool.widths));
        }
    }

    /** A row that fills the context holds all W columns; the others' steps with it in their range pad over its last. */
    @Test
    void aRowAtTheFullWidth() {
        try (FakeSlots pool = new FakeSlots(8)) {
            Seq a = new Seq(pool, 1);
            Seq b = new Seq(pool, 2);
            a.forward(pool, 250, "prefill a");
            b.forward(pool, 5, "prefill b");
            step(pool, List.of(a, b), List.of(6, 3), "a fills the context");
            assertEquals(256, a.row.length());
            step(pool, List.of(b), List.of(2), "b, a in the range");
            assertEquals(256, last(pool.widths));
            a.truncate(255);
            a.forward(pool, 1, "a refeeds its last position");
            a.truncate(100);
            step(pool, List.of(a, b), List.of(1, 1), "after a rolled back");
            assertEquals(192, last(pool.widths));
        }
    }

    /**
     * Many sequences joining, stepping (alone, batched, verifications and long feeds), rolling back and leaving, in a
     * seeded random order: every logit equals the reference's, every call runs at a width within the margin of
     * what the rows need, and the width went up and down.
     */
    @Test
    void randomJoinsStepsRollbacksAndLeavesEqualTheReference() {
        Random rnd = new Random(42);
        try (FakeSlots pool = new FakeSlots(16)) {
            List<Seq> live = new ArrayList<>();
            TreeSet<Integer> seen = new TreeSet<>();
            int narrowed = 0;
            for (int op = 0; op < 3000; op++) {
                String what = "op " + op;
                int before = pool.widths.size();
                int longest = live.stream().mapToInt(s -> s.row.length()).max().orElse(0);
                int maxFed = 1;
                int r = rnd.nextInt(100);
                if (live.isEmpty() || r < 6 && live.size() < 10) {
                    live.add(new Seq(pool, rnd.nextLong()));
                } else if (r < 12) {
                    Seq gone = live.remove(rnd.nextInt(live.size()));
                    int wasWidth = pool.width();
                    gone.row.close();
                    int left = live.stream().mapToInt(s -> s.row.length()).max().orElse(0);
                    assertTrue(pool.width() <= Math.max(64, Math.min(256, roundUp(left + 1 + SlotRows.SHRINK_MARGIN))),
                            what + ": width " + pool.width() + " after a leave, longest " + left);
                    narrowed += pool.width() < wasWidth ? 1 : 0;
                } else if (r < 22) {
                    Seq s = live.get(rnd.nextInt(live.size()));
                    int back = rnd.nextInt(10) == 0 ? rnd.nextInt(s.row.length() + 1) : Math.min(s.row.length(), rnd.nextInt(18));
                    s.truncate(s.row.length() - back);
                } else if (r < 40) {
                    Seq s = live.get(rnd.nextInt(live.size()));
                    int n = Math.min(SHAPE.maxContext() - s.row.length(), 1 + rnd.nextInt(rnd.nextBoolean() ? 3 : 24));
                    if (n > 0) {
                        maxFed = n;
                        s.forward(pool, n, what + " alone");
                    }
                } else {
                    List<Seq> stepped = new ArrayList<>();
                    List<Integer> fed = new ArrayList<>();
                    for (Seq s : live) {
                        int room = SHAPE.maxContext() - s.row.length();
                        if (room > 0 && rnd.nextInt(4) != 0) {
                            int n = Math.min(room, rnd.nextInt(8) == 0 ? 17 + rnd.nextInt(30) : 1 + rnd.nextInt(rnd.nextBoolean() ? 1 : 7));
                            stepped.add(s);
                            fed.add(n);
                            maxFed = Math.max(maxFed, n);
                        } else if (room == 0 && rnd.nextBoolean()) {
                            s.truncate(rnd.nextInt(SHAPE.maxContext()));
                        }
                    }
                    if (!stepped.isEmpty()) {
                        step(pool, stepped, fed, what + " batched");
                    }
                }
                for (int i = before; i < pool.widths.size(); i++) {
                    int w = pool.widths.get(i);
                    seen.add(w);
                    // a single forward runs at a width kept from before a rollback; a batched step narrows it first
                    int bound = r >= 40 ? Math.min(256, roundUp(longest + Math.max(maxFed, 1 + SlotRows.SHRINK_MARGIN))) : 256;
                    assertTrue(w <= bound, what + ": width " + w + ", longest row " + longest + ", fed up to " + maxFed);
                }
            }
            assertEquals(new TreeSet<>(List.of(64, 128, 192, 256)), seen, "every width was used");
            assertTrue(narrowed > 5, "the pool narrowed " + narrowed + " times when a sequence left");
            live.forEach(s -> s.row.close());
            assertEquals(0, pool.used());
            assertEquals(64, pool.width());
        }
    }

    /** Single forwards run side by side under the read lock; one that needs a wider pool waits for the others. */
    @Test
    void concurrentSingleForwardsThatWiden() throws Exception {
        try (FakeSlots pool = new FakeSlots(8)) {
            List<Seq> seqs = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                seqs.add(new Seq(pool, i));
            }
            ExecutorService threads = Executors.newFixedThreadPool(4);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    Seq s = seqs.get(i);
                    Random rnd = new Random(i);
                    done.add(threads.submit(() -> {
                        for (int step = 0; step < 150; step++) {
                            int n = Math.min(SHAPE.maxContext() - s.row.length(), 1 + rnd.nextInt(3));
                            if (n == 0 || rnd.nextInt(10) == 0) {
                                s.truncate(s.row.length() - Math.min(s.row.length(), rnd.nextInt(40)));
                            } else {
                                s.forward(pool, n, "thread step " + step);
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get();
                }
            } finally {
                threads.shutdown();
            }
            assertTrue(pool.width() > 64);
        }
    }

    static int roundUp(int columns) {
        return (columns + 63) / 64 * 64;
    }
}
