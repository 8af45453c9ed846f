package dev.tandem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.KvBuffers;
import dev.tandem.engine.ModelShape;
import dev.tandem.generation.AssistOptions;
import java.lang.reflect.Field;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link KvFootprint} models what {@link KvBuffers} really allocates. KvBuffers takes its memory from one arena
 * freed only when the cache closes, so every region it allocates stays until then: here a real KvBuffers is
 * driven through decoding patterns and each allocation it makes (a new capacity: two regions; new step rows:
 * logits and ids) is read from its fields and added up, then compared with the model.
 */
class KvFootprintTest {
    /** The worst-case step the service plans with (a verification of the most candidates, plus one). */
    static final int MAX_STEP_FEED = MemoryPlan.maxStepFeed(AssistOptions.MAX_ASSISTANT_TOKENS);

    static final ModelShape STORIES = new ModelShape(512, 512, 5, 4, 8, 4);
    static final ModelShape KJV_TARGET = new ModelShape(4096, 256, 8, 4, 64, 4);
    static final ModelShape ODD = new ModelShape(300, 200, 3, 2, 16, 2);  // context not a power of two, float16

    /** The most a KvBuffers holds at once while it is driven (outgrown buffers are freed). */
    static final class Meter implements AutoCloseable {
        final ModelShape shape;
        final KvBuffers kv;
        long peakCapacities;
        long peakRows;
        int lastCapacity;
        int lastRows;

        Meter(ModelShape shape) {
            this.shape = shape;
            this.kv = new KvBuffers(shape, 2 * shape.layers());
        }

        /** One forward step of {@code fed} tokens, as the engines drive KvBuffers. */
        void step(int fed) {
            kv.ensureCapacity(kv.length() + fed);
            int c = intField("capacity");
            int r = intField("rows");
            if (c != lastCapacity) {  // the old regions live until the new ones hold the copy
                peakCapacities = Math.max(peakCapacities, (long) lastCapacity + c);
                lastCapacity = c;
            }
            if (r != lastRows) {      // the old step buffers are freed before the new ones are allocated
                peakRows = Math.max(peakRows, r);
                lastRows = r;
            }
            kv.advance(fed);
        }

        KvFootprint measured() {
            return new KvFootprint(2 * peakCapacities * shape.kvBytesPerToken(), peakRows * (4L * shape.vocabSize() + 8));
        }

        int intField(String name) {
            try {
                Field f = KvBuffers.class.getDeclaredField(name);
                f.setAccessible(true);
                return f.getInt(kv);
            } catch (ReflectiveOperationException e) {
                throw new AssertionError("KvBuffers changed: no int field '" + name + "'; update KvFootprint and this test", e);
            }
        }

        @Override
        public void close() {
            kv.close();
        }
    }

    @Test
    void plainDecodingAllocatesExactlyWhatTheModelSays() {
        for (ModelShape s : new ModelShape[] {STORIES, KJV_TARGET, ODD}) {
            for (int prompt : new int[] {1, 7, 8, 9, 63, 64, 65, 127, 128, 129, s.maxContext() - 1}) {
                for (int tokens : new int[] {prompt + 1, prompt + 16, s.maxContext()}) {
                    if (tokens > s.maxContext()) {
                        continue;
                    }
                    try (Meter m = new Meter(s)) {
                        m.step(prompt);
                        while (m.kv.length() < tokens) {
                            m.step(1);
                        }
                        assertEquals(KvFootprint.of(s, prompt, tokens, 1), m.measured(),
                                s + " prompt " + prompt + " to " + tokens + " tokens");
                    }
                }
            }
        }
    }

    @Test
    void assistedStepsStayWithinTheBoundAndReachIt() {
        Random rnd = new Random(8);
        for (ModelShape s : new ModelShape[] {STORIES, KJV_TARGET, ODD}) {
            for (int run = 0; run < 200; run++) {
                int prompt = 1 + rnd.nextInt(s.maxContext() - 1);
                int tokens = prompt + 1 + rnd.nextInt(s.maxContext() - prompt);
                try (Meter m = new Meter(s)) {
                    m.step(prompt);
                    while (m.kv.length() < tokens) {  // verify 1..17 tokens, then roll back the rejected ones
                        int fed = Math.min(1 + rnd.nextInt(MAX_STEP_FEED), tokens - m.kv.length());
                        int before = m.kv.length();
                        m.step(fed);
                        m.kv.truncate(before + 1 + rnd.nextInt(fed));
                    }
                    KvFootprint bound = KvFootprint.of(s, prompt, tokens, MAX_STEP_FEED);
                    KvFootprint got = m.measured();
                    assertEquals(bound.kvBufferBytes(), got.kvBufferBytes(), s + " prompt " + prompt + " to " + tokens);
                    assertTrue(got.stepBufferBytes() <= bound.stepBufferBytes(), s + " prompt " + prompt + ": " + got + " > " + bound);
                }
            }
            // the worst step pattern: a short prompt, then every verification one token longer than the last
            try (Meter m = new Meter(s)) {
                m.step(3);
                for (int fed = 9; fed <= MAX_STEP_FEED; fed++) {
                    m.step(fed);
                }
                assertEquals(KvFootprint.of(s, 3, m.kv.length(), MAX_STEP_FEED), m.measured());
            }
        }
    }

    @Test
    void theReferenceEngineKeepsOneCopyOnTheHeap() {
        // Java arrays of the final capacity (outgrown ones are garbage) and one logits array of max(rows fed, 8) rows
        assertEquals(new KvFootprint(512L * 1280, 8L * 4 * 512), KvFootprint.onHeap(STORIES, 1, 512, 1));
        assertEquals(new KvFootprint(128L * 1280, 17L * 4 * 512), KvFootprint.onHeap(STORIES, 5, 100, MAX_STEP_FEED));
        assertEquals(KvFootprint.onHeap(STORIES, 5, 100, 17), KvFootprint.Layout.JAVA_HEAP.footprint(STORIES, 5, 100, 17));
        // a cache inside the runtime counts the textbook bytes
        assertEquals(new KvFootprint(100L * 1280, 0), KvFootprint.Layout.RUNTIME_STATE.footprint(STORIES, 5, 100, 17));
    }

    @Test
    void worstCaseIsTheMaximumOverPromptLengths() {
        KvFootprint.Worst w = KvFootprint.worst(KJV_TARGET, 256, MAX_STEP_FEED);
        for (int p = 1; p <= 256; p++) {
            assertTrue(KvFootprint.of(KJV_TARGET, p, 256, MAX_STEP_FEED).total() <= w.footprint().total());
        }
        // a 255-token prompt: capacity 255, grown to 256 at the first decode step while the 255 still exists:
        // 2 x (255 + 256) x 16,384 KV bytes, plus the prompt's 255 logits rows of 4 x 4096 + 8 bytes
        assertEquals(255, w.promptTokens());
        assertEquals(2L * (255 + 256) * 16_384 + 255L * (4 * 4096 + 8), w.footprint().total());
        assertEquals(20_924_408L, w.footprint().total());  // where the full cache itself holds 4,194,304
    }
}
