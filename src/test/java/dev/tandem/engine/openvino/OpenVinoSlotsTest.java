package dev.tandem.engine.openvino;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.BatchedStepChecks;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.SlotRows;
import dev.tandem.memory.KvFootprint;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The slots layout on OpenVINO, on the tiny fixture graph (src/test/resources/models/slots-tiny): the caches are rows
 * of one pool ({@link OvSlotPool}); a batched step is one infer call whose every feed gets the bits of its single
 * forward; the cache written in place (present bound to the past's memory) gives the same bits as a separate
 * output buffer, alone and batched; and the KV budget's figure is what a row holds. (The engine contract on this
 * fixture: SlotsContractTest.)
 */
class OpenVinoSlotsTest {
    static final Path FIXTURE = Path.of("src/test/resources/models/slots-tiny");
    /** The model directory the checks run on: FIXTURE, or the external-data copy ({@link OpenVinoSlotsExternalDataTest}). */
    static Path fixture;
    static ModelDirectory dir;
    static OpenVinoRuntime rt;
    static OpenVinoCausalLm inPlace;
    static OpenVinoCausalLm pingPong;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void open() {
        openOn(FIXTURE);
    }

    static void openOn(Path model) {
        fixture = model;
        try {
            rt = OpenVinoRuntime.load();
        } catch (OpenVinoRuntime.NotAvailableException e) {
            Assumptions.assumeFalse("true".equalsIgnoreCase(System.getenv("CI")), "CI=true but no OpenVINO runtime");
            Assumptions.abort("OpenVINO runtime not available here: " + e.getMessage());
        }
        dir = ModelDirectory.open(model);
        inPlace = OpenVinoCausalLm.open(rt, dir.graph(), dir.config().shape(), OpenVinoOptions.defaults(), true);
        pingPong = OpenVinoCausalLm.open(rt, dir.graph(), dir.config().shape(), OpenVinoOptions.defaults(), false);
        tokenizer = TextTokenizer.load(dir);
    }

    @AfterAll
    static void close() {
        for (AutoCloseable c : new AutoCloseable[] {inPlace, pingPong, tokenizer, rt}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    static int[] text() {
        return tokenizer.encodePrompt("And it came to pass, when the king heard the words of the law, that he rent his clothes. "
                .repeat(8));
    }

    @Test
    void detectsTheSlotLayout() {
        assertTrue(inPlace.slotLayout());
        assertEquals(CausalLm.CacheStorage.SLOT_POOL, inPlace.cacheStorage());
    }

    /** The text as {@code count} sequences: each starts with BOS and continues {@code 7 x i} tokens further in. */
    static int[][] sequences(int count) {
        int[] text = text();
        int[][] out = new int[count][];
        for (int i = 0; i < count; i++) {
            out[i] = java.util.Arrays.copyOfRange(text, 7 * i, text.length);
            out[i][0] = text[0];
        }
        return out;
    }

    /**
     * OpenVINO writes present.* into the memory past_key_values.* is read from: every step's logits must be the bits
     * of the same steps run with the present in a separate buffer (then copied back as the past). Steps of 1..20
     * tokens, rollbacks (the rolled-back keys stay in memory, masked) and a full context.
     */
    @Test
    void inPlaceCacheEqualsSeparateOutputs() {
        int[] text = text();
        int max = inPlace.shape().maxContext();
        int[] full = new int[max];
        for (int i = 0; i < max; i++) {
            full[i] = text[i % 100 + 1];
        }
        full[0] = text[0];
        try (KvCache a = inPlace.newCache(); KvCache b = pingPong.newCache()) {
            int at = 0;
            int[] feeds = {12, 1, 5, 1, 1, 20, 1, 7, 1, 1, 3, 1, 16, 1, 1, 9, 1, 1, 1, 1, 2, 1, 1};
            int round = 0;
            while (at < max - 20) {
                int n = feeds[round++ % feeds.length];
                BatchedStepChecks.assertBitwise(pingPong.forward(b, full, at, n).row(n - 1),
                        inPlace.forward(a, full, at, n).row(n - 1), "step of " + n + " at " + at);
                at += n;
                if (round % 7 == 0) {  // roll back 3 (as a rejected verification) and go on from there
                    at -= 3;
                    a.truncate(at);
                    b.truncate(at);
                }
            }
            int n = max - at;
            BatchedStepChecks.assertBitwise(pingPong.forward(b, full, at, n).row(n - 1), inPlace.forward(a, full, at, n).row(n - 1),
                    "the last " + n + " positions");
        }
    }

    /**
     * The same for batched steps: four rows of different lengths (so the three shorter ones get padding in every
     * step), blocks of 1..7 tokens, a row left out of a step (all padding), rollbacks, a row leaving (the last row's
     * sequence moves into its place) and one joining. Every fed row's logits must be the same bits in place as with
     * the present in a separate buffer.
     */
    @Test
    void inPlaceBatchedStepsEqualSeparateOutputs() {
        batchedStepsInPlaceEqualSeparateOutputs(inPlace, pingPong, sequences(5));
    }

    /** The check above for any slots graph opened twice, in place and not; {@code texts}: 5 of at least 80 tokens. */
    static void batchedStepsInPlaceEqualSeparateOutputs(CausalLm inPlace, CausalLm pingPong, int[][] texts) {
        List<KvCache> a = new ArrayList<>();
        List<KvCache> b = new ArrayList<>();
        int[] at = new int[4];
        try {
            for (int i = 0; i < 4; i++) {
                a.add(inPlace.newCache());
                b.add(pingPong.newCache());
            }
            int[][] steps = {{3, 9, 14, 1}, {1, 1, 1, 1}, {5, 1, 3, 0}, {1, 7, 1, 2}, {0, 1, 1, 1}, {2, 2, 2, 2}};
            for (int round = 0; round < 12; round++) {
                if (round == 5) {  // the second sequence leaves (the last row's moves into its place), a fifth joins
                    a.get(1).close();
                    b.get(1).close();
                    a.set(1, inPlace.newCache());
                    b.set(1, pingPong.newCache());
                    texts[1] = texts[4];
                    at[1] = 0;
                }
                int[] n = steps[round % steps.length];
                List<Feed> fa = new ArrayList<>();
                List<Feed> fb = new ArrayList<>();
                List<Integer> which = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    if (n[i] > 0) {
                        fa.add(new Feed(a.get(i), texts[i], at[i], n[i]));
                        fb.add(new Feed(b.get(i), texts[i], at[i], n[i]));
                        which.add(i);
                    }
                }
                List<Logits> la = inPlace.forward(fa);
                List<Logits> lb = pingPong.forward(fb);
                for (int k = 0; k < which.size(); k++) {
                    int i = which.get(k);
                    for (int r = 0; r < n[i]; r++) {
                        BatchedStepChecks.assertBitwise(lb.get(k).row(r), la.get(k).row(r),
                                "round " + round + " sequence " + i + " (past " + at[i] + ") row " + r);
                    }
                    at[i] += n[i];
                }
                if (round % 4 == 3) {  // roll two rows back, as rejected verifications
                    for (int i : new int[] {0, 2}) {
                        at[i] -= 2;
                        a.get(i).truncate(at[i]);
                        b.get(i).truncate(at[i]);
                    }
                }
            }
        } finally {
            a.forEach(KvCache::close);
            b.forEach(KvCache::close);
        }
    }

    /** Every feed of a batched step gets the bits its single forward gives, on the real batched path. */
    @Test
    void batchedStepEqualsSingleForwardsBitForBit() {
        int before = inPlace.slotRowsInUse();
        BatchedStepChecks.check(inPlace, text(), 0);
        assertEquals(before, inPlace.slotRowsInUse(), "every row went back");
    }

    /**
     * A batched step is one infer call for all its feeds (rows of different lengths, blocks of different sizes, a
     * row in the range left out), not a loop of single forwards; a prompt chunk longer than LONG_FEED beside decode
     * steps runs in a second call, as on ONNX Runtime.
     */
    @Test
    void aBatchedStepIsOneInferCall() {
        int[][] texts = sequences(4);
        List<KvCache> caches = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                caches.add(inPlace.newCache());
            }
            long before = inPlace.slotInferCalls();
            inPlace.forward(List.of(new Feed(caches.get(0), texts[0], 0, 5), new Feed(caches.get(1), texts[1], 0, 12),
                    new Feed(caches.get(2), texts[2], 0, 1), new Feed(caches.get(3), texts[3], 0, 7)));
            assertEquals(before + 1, inPlace.slotInferCalls(), "prefills of 4 sequences in one call");
            inPlace.forward(List.of(new Feed(caches.get(3), texts[3], 7, 1), new Feed(caches.get(0), texts[0], 5, 3)));
            assertEquals(before + 2, inPlace.slotInferCalls(), "rows 0 and 3 (1 and 2 padded) in one call");
            inPlace.forward(List.of(new Feed(caches.get(1), texts[1], 12, SlotRows.LONG_FEED + 1),
                    new Feed(caches.get(2), texts[2], 1, 1)));
            assertEquals(before + 4, inPlace.slotInferCalls(), "a long prompt chunk apart from a decode step");
            assertThrows(IllegalArgumentException.class, () -> inPlace.forward(List.of(
                    new Feed(caches.get(0), texts[0], 8, 1), new Feed(caches.get(0), texts[0], 9, 1))));
            assertEquals(before + 4, inPlace.slotInferCalls(), "a refused batch runs nothing");
        } finally {
            caches.forEach(KvCache::close);
        }
    }

    /**
     * The scheduler's thread runs batched steps while other threads run single forwards (a draft, a readiness check)
     * on their own caches, and a cache closed meanwhile moves the last row's sequence (possibly one in the batch)
     * into its row: every result must be the bits of the same steps run one sequence at a time.
     */
    @Test
    void singleForwardsOnOtherThreadsBesideBatchedSteps() throws Exception {
        int[][] texts = sequences(5);
        int steps = 40;
        float[][][] expected = new float[5][steps][];
        for (int i = 0; i < 5; i++) {
            try (KvCache c = inPlace.newCache()) {
                inPlace.forward(c, texts[i], 0, 8);
                for (int k = 0; k < steps; k++) {
                    expected[i][k] = inPlace.forward(c, texts[i], 8 + k, 1).row(0);
                }
            }
        }
        KvCache leaving = inPlace.newCache();  // the first row: closing it moves the last row's sequence
        inPlace.forward(leaving, texts[0], 0, 3);
        List<KvCache> caches = new ArrayList<>();
        java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(3);
        try {
            KvCache[] bySequence = new KvCache[5];
            for (int i : new int[] {0, 3, 1, 4, 2}) {  // rows of the single forwards inside the batch's range (padded)
                bySequence[i] = inPlace.newCache();
                inPlace.forward(bySequence[i], texts[i], 0, 8);
            }
            caches.addAll(List.of(bySequence));
            List<java.util.concurrent.Future<?>> running = new ArrayList<>();
            running.add(threads.submit(() -> {  // the scheduler: sequences 0..2 in batched steps
                for (int k = 0; k < steps; k++) {
                    List<Feed> feeds = new ArrayList<>();
                    for (int i = 0; i < 3; i++) {
                        feeds.add(new Feed(caches.get(i), texts[i], 8 + k, 1));
                    }
                    List<Logits> out = inPlace.forward(feeds);
                    for (int i = 0; i < 3; i++) {
                        BatchedStepChecks.assertBitwise(expected[i][k], out.get(i).row(0), "batched sequence " + i + " step " + k);
                    }
                }
                return null;
            }));
            for (int i = 3; i < 5; i++) {
                int seq = i;
                running.add(threads.submit(() -> {  // single forwards on other threads
                    for (int k = 0; k < steps; k++) {
                        if (seq == 4 && k == steps / 2) {
                            leaving.close();
                        }
                        BatchedStepChecks.assertBitwise(expected[seq][k],
                                inPlace.forward(caches.get(seq), texts[seq], 8 + k, 1).row(0), "single sequence " + seq + " step " + k);
                    }
                    return null;
                }));
            }
            for (var f : running) {
                f.get();
            }
        } finally {
            threads.shutdown();
            leaving.close();
            caches.forEach(KvCache::close);
        }
    }

    /** What admission reserves for a sequence on this engine (KvFootprint.Layout.SLOT_POOL) is what a pool row holds. */
    @Test
    void footprintIsAPoolRow() {
        ModelShape s = inPlace.shape();
        assertEquals(2L * s.layers() * s.kvHeads() * 256 * s.headDim() * 4, inPlace.slotRowBytes(),
                "every layer's keys and values at the context (256) rounded up to 64");
        assertEquals(KvFootprint.Layout.SLOT_POOL, KvFootprint.Layout.forStorage(inPlace.cacheStorage()));
        for (int[] p : new int[][] {{5, 100, 1}, {1, 256, 6}, {200, 256, 1}}) {
            assertEquals(inPlace.slotRowBytes(), KvFootprint.Layout.SLOT_POOL.footprint(s, p[0], p[1], p[2]).kvBufferBytes());
        }
        assertEquals(8 * (4L * s.vocabSize() + 16), KvFootprint.slotRow(s, 3, 200, 5).stepBufferBytes());
    }

    /** Rows go back when caches close, whichever row leaves; a closed cache is refused. */
    @Test
    void closedRowsAreGivenBack() {
        int before = inPlace.slotRowsInUse();
        KvCache[] caches = new KvCache[5];
        for (int i = 0; i < caches.length; i++) {
            caches[i] = inPlace.newCache();
            inPlace.forward(caches[i], 1, 5 + i);
        }
        assertEquals(before + 5, inPlace.slotRowsInUse());
        caches[1].close();
        caches[3].close();
        caches[3].close();
        assertEquals(before + 3, inPlace.slotRowsInUse());
        assertThrows(IllegalStateException.class, () -> caches[1].truncate(0));
        assertThrows(IllegalStateException.class, () -> inPlace.forward(List.of(Feed.of(caches[3], 1))));
        for (KvCache c : caches) {
            c.close();
        }
        assertEquals(before, inPlace.slotRowsInUse());
    }
}
