package dev.tandem.engine.openvino;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.BatchedStepChecks;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.memory.KvFootprint;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The slots layout on OpenVINO, on the tiny fixture graph (src/test/resources/models/slots-tiny): the cache
 * written in place (present bound to the past's memory) gives the same bits as ping-pong buffers, the width grows
 * in steps of 64, and the KV budget's figure is what a cache holds. (The engine contract on this fixture:
 * SlotsContractTest.)
 */
class OpenVinoSlotsTest {
    static final Path FIXTURE = Path.of("src/test/resources/models/slots-tiny");
    static ModelDirectory dir;
    static OpenVinoRuntime rt;
    static OpenVinoCausalLm inPlace;
    static OpenVinoCausalLm pingPong;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void open() {
        try {
            rt = OpenVinoRuntime.load();
        } catch (OpenVinoRuntime.NotAvailableException e) {
            Assumptions.assumeFalse("true".equalsIgnoreCase(System.getenv("CI")), "CI=true but no OpenVINO runtime");
            Assumptions.abort("OpenVINO runtime not available here: " + e.getMessage());
        }
        dir = ModelDirectory.open(FIXTURE);
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
        assertEquals(CausalLm.CacheStorage.SLOT_BUFFERS, inPlace.cacheStorage());
    }

    /**
     * OpenVINO writes present.* into the memory past_key_values.* is read from: every step's logits must be the bits
     * of the same steps run with the present in a separate buffer (then swapped in as the past). Steps of 1..20
     * tokens, across the width steps at 64 and 128, rollbacks (the rolled-back keys stay in memory, masked) and a
     * full context.
     */
    @Test
    void inPlaceCacheEqualsPingPongBuffers() {
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

    /** The width follows the length in steps of 64, and never exceeds the context rounded up to 64. */
    @Test
    void widthGrowsInStepsOf64() {
        SlotBuffers b = new SlotBuffers(inPlace.shape(), 4, true);
        try (b) {
            int[] ids = new int[300];
            b.prepare(ids, 0, 5);
            assertEquals(64, b.width());
            b.advance(5);
            b.prepare(ids, 0, 59);
            assertEquals(64, b.width(), "64 positions fit a width of 64");
            b.advance(59);
            b.prepare(ids, 0, 1);
            assertEquals(128, b.width());
            b.advance(1);
            b.truncate(10);
            b.prepare(ids, 0, 1);
            assertEquals(128, b.width(), "rollback keeps the buffer");
            b.advance(1);
            b.prepare(ids, 0, 245);
            assertEquals(256, b.width(), "the context, 256");
        }
    }

    /** What admission reserves for a sequence on this engine covers what the cache really takes at its peak. */
    @Test
    void footprintIsTheCachesPeak() {
        var shape = inPlace.shape();
        long perToken = shape.kvBytesPerToken();
        // a 10-token prompt growing to 100: widths 64 then 128, both held during the copy
        assertEquals((64 + 128) * perToken, KvFootprint.slotBuffers(shape, 10, 100, 1).kvBufferBytes());
        // a prompt that fits the last width: one buffer, no growth
        assertEquals(128 * perToken, KvFootprint.slotBuffers(shape, 70, 100, 1).kvBufferBytes());
        // to the full context, from a short prompt: 192 and 256 during the last growth
        assertEquals((192 + 256) * perToken, KvFootprint.slotBuffers(shape, 1, 256, 5).kvBufferBytes());
        assertEquals(KvFootprint.slotBuffers(shape, 3, 200, 5), KvFootprint.Layout.SLOT_BUFFERS.footprint(shape, 3, 200, 5));
        assertEquals(8 * (4L * shape.vocabSize() + 16), KvFootprint.slotBuffers(shape, 3, 200, 5).stepBufferBytes());
    }
}
