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

    /** Feeds a prompt of {@code prompt} tokens as {@code first} tokens, then chunks of at most {@code chunk}; returns the largest chunk after the first (0: none). */
    static int feedInChunks(Meter m, int prompt, int first, int chunk) {
        m.step(first);
        int largest = 0;
        while (m.kv.length() < prompt) {
            int fed = Math.min(chunk, prompt - m.kv.length());
            m.step(fed);
            largest = Math.max(largest, fed);
        }
        return largest;
    }

    @Test
    void chunkedPromptsAllocateExactlyWhatTheModelSays() {
        // the scheduler feeds a prompt in chunks, the first one smaller when decoding rows take the step's budget
        for (ModelShape s : new ModelShape[] {STORIES, KJV_TARGET, ODD}) {
            for (int prompt : new int[] {1, 17, 64, 65, 100, 129, 200, s.maxContext() - 1}) {
                for (int chunk : new int[] {16, 48, 64}) {
                    for (int first : new int[] {1, 5, 16, chunk}) {
                        if (first > Math.min(prompt, chunk)) {
                            continue;
                        }
                        for (int tokens : new int[] {prompt + 1, prompt + 40, s.maxContext()}) {
                            if (tokens > s.maxContext()) {
                                continue;
                            }
                            try (Meter m = new Meter(s)) {
                                int later = feedInChunks(m, prompt, first, chunk);
                                while (m.kv.length() < tokens) {
                                    m.step(1);
                                }
                                String what = s + " prompt " + prompt + " as " + first + " then chunks of " + chunk + ", to " + tokens;
                                assertEquals(KvFootprint.of(s, first, tokens, Math.max(later, 1)), m.measured(), what);
                                // what admission reserves for the prompt fed in chunks, however the scheduler cut them
                                KvFootprint reserved = KvFootprint.Layout.KV_BUFFERS.chunked(s, prompt, chunk, tokens, 1);
                                assertEquals(reserved.kvBufferBytes(), m.measured().kvBufferBytes(), what);
                                assertTrue(m.measured().stepBufferBytes() <= reserved.stepBufferBytes(), what);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void theChunkedReservationHoldsEveryChunkingAndIsReached() {
        // the case that made the one-call figure wrong: a 100-token prompt in one call takes a capacity of 100 (old
        // KvBuffers: 100, then 200 at the 101st token); in chunks of 64 and 36 it took 64, 128, then 256
        Random rnd = new Random(15);
        for (ModelShape s : new ModelShape[] {STORIES, KJV_TARGET, ODD}) {
            for (int run = 0; run < 300; run++) {
                int prompt = 1 + rnd.nextInt(s.maxContext() - 1);
                int tokens = prompt + 1 + rnd.nextInt(s.maxContext() - prompt);
                int chunk = new int[] {16, 64, 100, 256, KvFootprint.UNCHUNKED}[rnd.nextInt(5)];
                int first = 1 + rnd.nextInt(Math.min(prompt, chunk));
                try (Meter m = new Meter(s)) {
                    feedInChunks(m, prompt, first, chunk);
                    while (m.kv.length() < tokens) {  // assisted steps, rolled back as verification does
                        int fed = Math.min(1 + rnd.nextInt(MAX_STEP_FEED), tokens - m.kv.length());
                        int before = m.kv.length();
                        m.step(fed);
                        m.kv.truncate(before + 1 + rnd.nextInt(fed));
                    }
                    KvFootprint reserved = KvFootprint.Layout.KV_BUFFERS.chunked(s, prompt, chunk, tokens, MAX_STEP_FEED);
                    KvFootprint got = m.measured();
                    String what = s + " prompt " + prompt + " as " + first + " then chunks of " + chunk + ", to " + tokens;
                    assertTrue(got.kvBufferBytes() <= reserved.kvBufferBytes(), what + ": " + got + " > " + reserved);
                    assertTrue(got.stepBufferBytes() <= reserved.stepBufferBytes(), what + ": " + got + " > " + reserved);
                }
            }
            // and reached: a one-token first chunk, then full chunks, then one token a step
            for (int prompt : new int[] {100, s.maxContext() - 1}) {
                try (Meter m = new Meter(s)) {
                    feedInChunks(m, prompt, 1, 64);
                    while (m.kv.length() < s.maxContext()) {
                        m.step(1);
                    }
                    assertEquals(KvFootprint.Layout.KV_BUFFERS.chunked(s, prompt, 64, s.maxContext(), 1), m.measured(),
                            s + " prompt " + prompt);
                }
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
        KvFootprint.Worst w = KvFootprint.worst(KvFootprint.Layout.KV_BUFFERS, KJV_TARGET, 256, MAX_STEP_FEED, 64);
        for (int p = 1; p <= 256; p++) {
            for (int first = 1; first <= Math.min(p, 64); first++) {  // every first chunk; later ones up to 64 tokens
                assertTrue(KvFootprint.of(KJV_TARGET, first, 256, Math.max(Math.min(p, 64), MAX_STEP_FEED)).total()
                        <= w.footprint().total());
            }
        }
        // fed in chunks of 64 (the scheduler's default), the first one smaller: capacity 64, 128, then 256 while the
        // 128 still exists: 2 x (128 + 256) x 16,384 KV bytes, plus one chunk's 64 logits rows of 4 x 4096 + 8 bytes;
        // every prompt of 64 tokens or more gives it
        assertEquals(64, w.promptTokens());
        assertEquals(2L * (128 + 256) * 16_384 + 64L * (4 * 4096 + 8), w.footprint().total());
        assertEquals(13_632_000L, w.footprint().total());  // where the full cache itself holds 4,194,304
        // a prompt fed in one call (as a lagging draft may catch up) counts all its rows
        KvFootprint.Worst oneCall = KvFootprint.worst(KvFootprint.Layout.KV_BUFFERS, KJV_TARGET, 256, MAX_STEP_FEED,
                KvFootprint.UNCHUNKED);
        assertEquals(256, oneCall.promptTokens());
        assertEquals(2L * (128 + 256) * 16_384 + 256L * (4 * 4096 + 8), oneCall.footprint().total());
    }
}
