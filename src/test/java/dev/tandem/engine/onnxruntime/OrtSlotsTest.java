package dev.tandem.engine.onnxruntime;

import static dev.tandem.testing.TestArrays.ints;
import static dev.tandem.testing.TestArrays.argmax;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.BatchedStepChecks;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.memory.KvFootprint;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The slots layout on ONNX Runtime, on the tiny fixture graph (src/test/resources/models/slots-tiny: a random
 * Llama exported with {@code tandem.kv_layout=slots}, int8): the batched step is one run whose logits are the
 * single forwards' bit for bit, the in-place cache equals a run into separate outputs, and greedy decoding
 * matches the torch reference the fixture was exported with.
 */
class OrtSlotsTest {
    static final Path FIXTURE = Path.of(System.getProperty("tandem.test.slots-fixture", "src/test/resources/models/slots-tiny"));
    /** The model directory the checks run on: FIXTURE, or the external-data copy ({@link OrtSlotsExternalDataTest}). */
    static Path fixture;
    static ModelDirectory dir;
    static OrtCausalLm lm;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void open() {
        openOn(FIXTURE);
    }

    static void openOn(Path model) {
        fixture = model;
        dir = ModelDirectory.open(model);
        lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
        tokenizer = TextTokenizer.load(dir);
        graphDifference = graphBatchDifference();
        tolerance = graphDifference == 0 ? 0 : 1e-4;
    }

    /** Largest logit difference the graph itself shows for one token alone vs the same row twice in a batch. */
    static double graphDifference;
    /** 0 (the same bits) where the graph is batch invariant; else what the engine is held to until it is. */
    static double tolerance;

    /**
     * The graph on its own, through ONNX Runtime without the engine: one token after a past of 1..64 random
     * keys, as a batch of one and as a batch of the same row twice. A batch-invariant graph gives the same bits.
     */
    static double graphBatchDifference() {
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions();
             OrtSession session = OrtEnvironment.getEnvironment().createSession(dir.graph().toString(), so)) {
            double worst = 0;
            for (int past = 1; past <= 64; past++) {
                worst = Math.max(worst, graphBatchDifference(session, past));
            }
            return worst;
        } catch (ai.onnxruntime.OrtException e) {
            throw new IllegalStateException(e);
        }
    }

    private static double graphBatchDifference(OrtSession session, int past) {
        try {
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            ModelShape s = lm.shape();
            int w = lm.slotMaxWidth();
            java.util.Random rnd = new java.util.Random(1);
            float[] keys = new float[s.kvHeads() * w * s.headDim()];
            for (int h = 0; h < s.kvHeads(); h++) {
                for (int i = 0; i < past * s.headDim(); i++) {
                    keys[h * w * s.headDim() + i] = (float) rnd.nextGaussian();
                }
            }
            float[][] logits = new float[2][];
            {
                for (int batch = 1; batch <= 2; batch++) {
                    Map<String, OnnxTensor> in = new HashMap<>();
                    long[][] ids = new long[batch][];
                    long[][] pos = new long[batch][];
                    float[] kv = new float[batch * keys.length];
                    for (int b = 0; b < batch; b++) {
                        ids[b] = new long[] {777};
                        pos[b] = new long[] {past};
                        System.arraycopy(keys, 0, kv, b * keys.length, keys.length);
                    }
                    in.put("input_ids", OnnxTensor.createTensor(env, ids));
                    in.put("position_ids", OnnxTensor.createTensor(env, pos));
                    for (int i = 0; i < 2 * s.layers(); i++) {
                        in.put("past_key_values." + i / 2 + (i % 2 == 0 ? ".key" : ".value"), OnnxTensor.createTensor(env,
                                FloatBuffer.wrap(kv), new long[] {batch, s.kvHeads(), w, s.headDim()}));
                    }
                    try (OrtSession.Result r = session.run(in)) {
                        FloatBuffer l = ((OnnxTensor) r.get("logits").get()).getFloatBuffer();
                        logits[batch - 1] = new float[s.vocabSize()];
                        l.get(logits[batch - 1]);
                    } finally {
                        in.values().forEach(OnnxTensor::close);
                    }
                }
            }
            double worst = 0;
            for (int i = 0; i < s.vocabSize(); i++) {
                worst = Math.max(worst, Math.abs(logits[0][i] - logits[1][i]));
            }
            return worst;
        } catch (ai.onnxruntime.OrtException e) {
            throw new IllegalStateException(e);
        }
    }

    @AfterAll
    static void close() {
        lm.close();
        tokenizer.close();
    }

    static int[] text() {
        return tokenizer.encodePrompt("And it came to pass, when the king heard the words of the law, that he rent his clothes. "
                .repeat(8));
    }

    @Test
    void detectsTheSlotLayout() {
        assertTrue(lm.slotLayout());
        assertEquals(256, lm.slotMaxWidth(), "the context (256) rounded up to a multiple of 64");
        ModelShape s = lm.shape();
        assertEquals(2L * s.layers() * s.kvHeads() * 256 * s.headDim() * 4, lm.slotRowBytes());
        // what the KV budget reserves per sequence is what the pool takes per row
        assertEquals(KvFootprint.slotWidth(s.maxContext()), lm.slotMaxWidth());
        assertEquals(lm.slotRowBytes(), KvFootprint.Layout.SLOT_POOL.footprint(s, 5, 100, 6).kvBufferBytes());
    }

    /**
     * The graph's own batch invariance, which the bitwise checks below rest on. The fixture exported at 60f6e63
     * computed the rotary angles' Cos and Sin in the graph, and ONNX Runtime's CPU Cos/Sin give different last
     * bits for an element depending on where it falls in the tensor (vectorised or scalar tail): one token's
     * 6 angles alone vs 12 in a batch of two differ. The fixture is now exported with rotary tables gathered by
     * position_ids (exact; tools/models/NOTES.md "Slots layout"). Should a graph not be batch invariant, this is
     * skipped with that reason and the engine checks hold it to 1e-4 (a padding or row mix-up differs by far
     * more: 0.55 on the edge test below).
     */
    @Test
    void theFixtureGraphIsBatchInvariant() {
        Assumptions.assumeTrue(graphDifference == 0, "the fixture graph itself is not batch invariant (max logit difference "
                + graphDifference + " for one token alone vs twice in a batch: in-graph Cos/Sin), so the engine's batched"
                + " step is checked within " + tolerance + " instead of bit for bit");
    }

    @Test
    void batchedStepGivesEveryFeedTheBitsOfItsSingleForward() {
        BatchedStepChecks.check(lm, text(), tolerance);
        assertEquals(0, lm.slotRowsInUse(), "every row went back");
    }

    @Test
    void refusesTheSameCacheTwiceAndAnotherModelsCache() {
        int[] text = text();
        try (KvCache a = lm.newCache(); OrtCausalLm other = OrtCausalLm.open(dir.graph(), dir.config().shape(),
                OnnxRuntimeOptions.defaults()); KvCache foreign = other.newCache()) {
            lm.forward(a, text, 0, 3);
            assertThrows(IllegalArgumentException.class, () -> lm.forward(List.of(new Feed(a, text, 3, 1), new Feed(a, text, 4, 1))));
            assertThrows(IllegalArgumentException.class, () -> lm.forward(List.of(new Feed(a, text, 3, 1), Feed.of(foreign, 1))));
            assertThrows(IllegalArgumentException.class, () -> lm.forward(foreign, 1));
            assertEquals(3, a.length());
        }
    }

    /**
     * Batched calls of every size, in an order that creates, grows and reuses the buffers a call's token ids,
     * positions and logits go through (the pool keeps them from call to call; a call whose logits exceed
     * {@link SlotPool#REUSED_LOGITS_BYTES} has buffers of its own): every feed still gets the bits of its single
     * forward, whatever the calls before it left in the buffers.
     */
    @Test
    void largeAndSmallCallsInTurnGiveEveryFeedItsOwnBits() {
        int[] source = text();
        int[] text = new int[240];
        for (int i = 0; i < text.length; i++) {
            text[i] = source[i % (source.length - 1) + 1];
        }
        text[0] = source[0];
        int own = (int) (SlotPool.REUSED_LOGITS_BYTES / (4L * lm.shape().vocabSize())) / 2 + 10;  // two rows of it: own buffers
        try (KvCache a = lm.newCache(); KvCache b = lm.newCache(); KvCache c = lm.newCache();
             KvCache a1 = lm.newCache(); KvCache b1 = lm.newCache(); KvCache c1 = lm.newCache()) {
            List<KvCache> batched = List.of(a, b, c);
            List<KvCache> alone = List.of(a1, b1, c1);
            stepAndCompare(batched, alone, text, 5, 5, 5);      // the first call: reused buffers made
            stepAndCompare(batched, alone, text, own, own, 0);  // larger than the reused buffers: its own
            stepAndCompare(batched, alone, text, 1, 1, 1);      // reused again, after the large call
            stepAndCompare(batched, alone, text, 1, 0, 100);    // a long feed apart: the reused buffers grow
            stepAndCompare(batched, alone, text, 6, 6, 6);
            stepAndCompare(batched, alone, text, 1, 1, 1);
        }
    }

    /** Feeds {@code counts[i]} more tokens of {@code text} to batched cache i in one step, and the same to alone cache i. */
    private static void stepAndCompare(List<KvCache> batched, List<KvCache> alone, int[] text, int... counts) {
        List<Feed> feeds = new java.util.ArrayList<>();
        for (int i = 0; i < counts.length; i++) {
            if (counts[i] > 0) {
                feeds.add(new Feed(batched.get(i), text, batched.get(i).length(), counts[i]));
            }
        }
        List<Logits> out = lm.forward(feeds);
        for (int i = 0, f = 0; i < counts.length; i++) {
            if (counts[i] == 0) {
                continue;
            }
            Logits got = out.get(f++);
            int past = alone.get(i).length();
            Logits expected = lm.forward(alone.get(i), text, past, counts[i]);
            for (int r = 0; r < counts[i]; r++) {
                same(expected.row(r), got.row(r), "cache " + i + " (past " + past + ", " + counts[i] + " fed) row " + r);
            }
        }
    }

    /**
     * A row that reaches the context exactly, in a step that feeds another row more tokens: its padding has no
     * column left but the last one, which holds its last real token; padding must not change that token's keys.
     */
    @Test
    void aRowReachingTheContextInABatchKeepsItsBits() {
        int[] text = text();
        int max = lm.shape().maxContext();
        int[] full = new int[max];
        for (int i = 0; i < max; i++) {
            full[i] = text[i % 100 + 1];
        }
        full[0] = text[0];
        try (KvCache edge = lm.newCache(); KvCache other = lm.newCache(); KvCache alone = lm.newCache()) {
            lm.forward(edge, full, 0, max - 3);
            lm.forward(alone, full, 0, max - 3);
            lm.forward(other, text, 0, 20);
            List<Logits> out = lm.forward(List.of(new Feed(edge, full, max - 3, 3), new Feed(other, text, 20, 6)));
            float[] last = out.get(0).row(2);
            same(lm.forward(alone, full, max - 3, 3).row(2), last, "the token at the last position");
            assertEquals(max, edge.length());
            // the full row stays in the batch range (not fed) while the other one goes on, then rolls back and goes on
            try (KvCache third = lm.newCache()) {
                lm.forward(third, text, 0, 4);
                lm.forward(List.of(new Feed(other, text, 26, 6), new Feed(third, text, 4, 6)));
            }
            edge.truncate(max - 10);
            alone.truncate(max - 10);
            float[] resumed = lm.forward(List.of(new Feed(edge, text, 30, 5), new Feed(other, text, 32, 1))).get(0).row(4);
            same(lm.forward(alone, text, 30, 5).row(4), resumed, "after rolling back from the edge");
        }
    }

    /**
     * The engine binds present.* to the memory past_key_values.* is read from. The same steps run with ONNX
     * Runtime allocating separate outputs (the present of one step fed as the next step's past) give the same bits.
     */
    @Test
    void inPlaceCacheEqualsSeparateOutputs() throws Exception {
        int[] text = text();
        ModelShape s = lm.shape();
        int w = lm.slotMaxWidth();
        int[][] steps = {{0, 12}, {12, 1}, {13, 5}, {18, 1}};
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (KvCache cache = lm.newCache(); OrtSession.SessionOptions so = new OrtSession.SessionOptions();
             OrtSession session = env.createSession(dir.graph().toString(), so)) {
            float[][] past = new float[2 * s.layers()][s.kvHeads() * w * s.headDim()];
            for (int[] st : steps) {
                float[] engine = lm.forward(cache, text, st[0], st[1]).row(st[1] - 1);
                Map<String, OnnxTensor> in = new HashMap<>();
                long[][] ids = {Arrays.stream(text, st[0], st[0] + st[1]).asLongStream().toArray()};
                long[][] pos = {java.util.stream.LongStream.range(st[0], st[0] + st[1]).toArray()};
                in.put("input_ids", OnnxTensor.createTensor(env, ids));
                in.put("position_ids", OnnxTensor.createTensor(env, pos));
                for (int i = 0; i < past.length; i++) {
                    in.put("past_key_values." + i / 2 + (i % 2 == 0 ? ".key" : ".value"), OnnxTensor.createTensor(env,
                            FloatBuffer.wrap(past[i]), new long[] {1, s.kvHeads(), w, s.headDim()}));
                }
                try (OrtSession.Result r = session.run(in)) {
                    FloatBuffer logits = ((OnnxTensor) r.get("logits").get()).getFloatBuffer();
                    float[] separate = new float[s.vocabSize()];
                    logits.position((st[1] - 1) * s.vocabSize());
                    logits.get(separate);
                    BatchedStepChecks.assertBitwise(separate, engine, "step at " + st[0]);
                    for (int i = 0; i < past.length; i++) {
                        past[i] = ((OnnxTensor) r.get("present." + i / 2 + (i % 2 == 0 ? ".key" : ".value")).get())
                                .getFloatBuffer().array();
                    }
                } finally {
                    in.values().forEach(OnnxTensor::close);
                }
            }
        }
    }

    /**
     * The pool's width follows its longest row (SlotRows): sequences joining, stepping alone and in batches (decode
     * steps, verifications, long feeds), rolling back and leaving, in a seeded random order, on a pool of its own.
     * Every logit must be what the graph gives the same sequence run on its own at the full width (256, which the
     * pool used for every call before; batch 1, ONNX Runtime without the engine), and the width must have grown
     * and narrowed on the way.
     */
    @Test
    void widthFollowsTheRowsWithTheFullWidthsBits() throws Exception {
        java.util.Random rnd = new java.util.Random(7);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        ModelShape s = lm.shape();
        try (OrtCausalLm pool = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
             OrtSession.SessionOptions so = new OrtSession.SessionOptions();
             OrtSession session = env.createSession(dir.graph().toString(), so)) {
            assertEquals(64, pool.slotWidth(), "an empty pool");
            List<FullWidthSequence> live = new java.util.ArrayList<>();
            for (int i = 0; i < 3; i++) {
                live.add(new FullWidthSequence(pool.newCache(), session, s, rnd.nextLong()));
            }
            // the middle row at exactly 64 columns, in the range of a step that does not feed it: its padding must
            // not land on its last key (the pool widens instead of clamping to column 63)
            for (int[] fed : new int[][] {{3, 64, 5}, {1, 0, 1}, {1, 1, 1}}) {
                List<Feed> feeds = new java.util.ArrayList<>();
                List<int[]> tokens = new java.util.ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    tokens.add(live.get(i).next(fed[i]));
                    if (fed[i] > 0) {
                        feeds.add(new Feed(live.get(i).cache, tokens.get(i), 0, fed[i]));
                    }
                }
                List<Logits> out = pool.forward(feeds);
                for (int i = 0, f = 0; i < 3; i++) {
                    if (fed[i] > 0) {
                        live.get(i).check(tokens.get(i), out.get(f++), "row " + i + " fed " + fed[i]);
                    }
                }
            }
            assertEquals(128, pool.slotWidth());
            java.util.TreeSet<Integer> widths = new java.util.TreeSet<>();
            int narrowed = 0;
            for (int op = 0; op < 400; op++) {
                int before = pool.slotWidth();
                int r = rnd.nextInt(100);
                if (live.isEmpty() || r < 8 && live.size() < 5) {
                    live.add(new FullWidthSequence(pool.newCache(), session, s, rnd.nextLong()));
                } else if (r < 14) {
                    live.remove(rnd.nextInt(live.size())).cache.close();
                } else if (r < 24) {
                    FullWidthSequence q = live.get(rnd.nextInt(live.size()));
                    int length = q.cache.length();
                    q.truncate(rnd.nextInt(6) == 0 ? rnd.nextInt(length + 1) : length - Math.min(length, rnd.nextInt(18)));
                } else if (r < 40) {
                    FullWidthSequence q = live.get(rnd.nextInt(live.size()));
                    int[] t = q.next(Math.min(s.maxContext() - q.cache.length(), 1 + rnd.nextInt(rnd.nextBoolean() ? 3 : 20)));
                    if (t.length > 0) {
                        q.check(t, pool.forward(q.cache, t, 0, t.length), "op " + op + " alone");
                    }
                } else {
                    List<FullWidthSequence> stepped = new java.util.ArrayList<>();
                    List<int[]> fed = new java.util.ArrayList<>();
                    List<Feed> feeds = new java.util.ArrayList<>();
                    for (FullWidthSequence q : live) {
                        int room = s.maxContext() - q.cache.length();
                        if (room > 0 && rnd.nextInt(4) != 0) {
                            int[] t = q.next(Math.min(room, rnd.nextInt(10) == 0 ? 17 + rnd.nextInt(20) : 1 + rnd.nextInt(6)));
                            stepped.add(q);
                            fed.add(t);
                            feeds.add(new Feed(q.cache, t, 0, t.length));
                        }
                    }
                    if (!feeds.isEmpty()) {
                        List<Logits> out = pool.forward(feeds);
                        for (int i = 0; i < stepped.size(); i++) {
                            stepped.get(i).check(fed.get(i), out.get(i), "op " + op + " batched, sequence " + i);
                        }
                    }
                }
                widths.add(pool.slotWidth());
                narrowed += pool.slotWidth() < before ? 1 : 0;
            }
            assertTrue(widths.last() >= 192, "widths " + widths);
            assertTrue(narrowed > 0, "the pool never narrowed");
            live.forEach(q -> q.cache.close());
            assertEquals(64, pool.slotWidth(), "every sequence left");
        }
    }

    /** A sequence in a pool, and the same tokens through the bare graph at the full width on past/present arrays. */
    private static final class FullWidthSequence {
        final KvCache cache;
        final OrtSession session;
        final ModelShape s;
        final java.util.Random tokens;
        final float[][] past;
        final int width;

        FullWidthSequence(KvCache cache, OrtSession session, ModelShape s, long seed) {
            this.cache = cache;
            this.session = session;
            this.s = s;
            this.tokens = new java.util.Random(seed);
            this.width = KvFootprint.slotWidth(s.maxContext());
            this.past = new float[2 * s.layers()][s.kvHeads() * width * s.headDim()];
        }

        int[] next(int n) {
            int[] t = new int[n];
            for (int i = 0; i < n; i++) {
                t[i] = 1 + tokens.nextInt(s.vocabSize() - 1);
            }
            return t;
        }

        void truncate(int length) {
            cache.truncate(length);  // the reference's length is the cache's: its keys beyond are never attended to
        }

        /** Feeds {@code t} to the bare graph after the cache's past, and compares with what the pool gave. */
        void check(int[] t, Logits got, String where) throws ai.onnxruntime.OrtException {
            int at = cache.length() - t.length;
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            Map<String, OnnxTensor> in = new HashMap<>();
            in.put("input_ids", OnnxTensor.createTensor(env, new long[][] {Arrays.stream(t).asLongStream().toArray()}));
            in.put("position_ids", OnnxTensor.createTensor(env, new long[][] {java.util.stream.LongStream.range(at, at + t.length)
                    .toArray()}));
            for (int i = 0; i < past.length; i++) {
                in.put("past_key_values." + i / 2 + (i % 2 == 0 ? ".key" : ".value"), OnnxTensor.createTensor(env,
                        FloatBuffer.wrap(past[i]), new long[] {1, s.kvHeads(), width, s.headDim()}));
            }
            try (OrtSession.Result r = session.run(in)) {
                FloatBuffer logits = ((OnnxTensor) r.get("logits").get()).getFloatBuffer();
                for (int row = 0; row < t.length; row++) {
                    float[] expected = new float[s.vocabSize()];
                    logits.position(row * s.vocabSize());
                    logits.get(expected);
                    same(expected, got.row(row), where + ", token " + row + " of " + t.length + " at " + (at + row));
                }
                for (int i = 0; i < past.length; i++) {
                    past[i] = ((OnnxTensor) r.get("present." + i / 2 + (i % 2 == 0 ? ".key" : ".value")).get())
                            .getFloatBuffer().array();
                }
            } finally {
                in.values().forEach(OnnxTensor::close);
            }
        }
    }

    /** Greedy decoding through the engine gives the continuations torch computed from the same weights. */
    @Test
    void greedyMatchesTheTorchReference() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(fixture.resolve("reference.json").toFile());
        assertEquals("slots", ref.get("kv_layout").asText());
        for (JsonNode p : ref.get("prompts")) {
            int[] prompt = ints(p.get("prompt_ids"));
            int[] expected = ints(p.get("greedy_ids"));
            assertArrayEquals(prompt, tokenizer.encodePrompt(p.get("prompt").asText()));
            int[] got = new int[expected.length];
            try (KvCache cache = lm.newCache()) {
                Logits l = lm.forward(cache, prompt);
                for (int i = 0; i < expected.length; i++) {
                    got[i] = argmax(l.row(l.rows() - 1));
                    if (i + 1 < expected.length) {
                        l = lm.forward(cache, got[i]);
                    }
                }
            }
            assertArrayEquals(expected, got, p.get("prompt").asText());
        }
    }

    /** Rows go back when caches close: the batch after a burst covers only the sequences still open. */
    @Test
    void closedRowsAreGivenBack() {
        int before = lm.slotRowsInUse();
        KvCache[] caches = new KvCache[5];
        for (int i = 0; i < caches.length; i++) {
            caches[i] = lm.newCache();
            lm.forward(caches[i], 1, 5 + i);
        }
        assertEquals(before + 5, lm.slotRowsInUse());
        caches[1].close();
        caches[3].close();
        caches[3].close();
        assertEquals(before + 3, lm.slotRowsInUse());
        assertThrows(IllegalStateException.class, () -> caches[1].truncate(0));
        for (KvCache c : caches) {
            c.close();
        }
        assertEquals(before, lm.slotRowsInUse());
    }

    /** The same bits, or within {@link #tolerance} while the fixture graph is not batch invariant. */
    static void same(float[] expected, float[] actual, String where) {
        if (tolerance == 0) {
            BatchedStepChecks.assertBitwise(expected, actual, where);
        } else {
            BatchedStepChecks.assertClose(expected, actual, tolerance, where);
        }
    }

}
