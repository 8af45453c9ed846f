package dev.tandem.memory;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.ModelShape;

/**
 * The native memory one sequence's cache really takes in the engines that keep it in
 * {@code dev.tandem.engine.KvBuffers} (ONNX Runtime, and OpenVINO on a stateless graph), as opposed to
 * the textbook figure {@code tokens x kvBytesPerToken}:
 *
 * <ul>
 *   <li>two regions of the same capacity alternate as past (read) and present (written), so the cache
 *       takes twice its capacity;</li>
 *   <li>capacity starts at {@code max(firstFeed, 64)} tokens and doubles (capped at the context) when a
 *       step needs more; the outgrown regions are freed once their contents are copied, so the peak is
 *       at the last growth, when the old and the new regions briefly coexist: one that grows from 256 to
 *       512 peaks at (256 + 512) tokens, twice;</li>
 *   <li>step buffers: logits ({@code 4 x vocab} bytes per row) and token ids (8 bytes per row), rows
 *       = {@code max(tokens fed, 8)}, replaced (the old ones freed first) when a step feeds more rows
 *       than they have.</li>
 * </ul>
 *
 * Allocation alignment (under 64 bytes per allocation) is not counted. The model is checked against
 * {@code KvBuffers} itself in {@code KvFootprintTest}; change both together.
 *
 * @param kvBufferBytes   the most the ping-pong KV regions take at once
 * @param stepBufferBytes the most the logits and token-id buffers take at once
 */
public record KvFootprint(long kvBufferBytes, long stepBufferBytes) {
    /** KvBuffers' first capacity, in tokens. */
    static final int INITIAL_CAPACITY = 64;
    /** KvBuffers' fewest step rows. */
    static final int MIN_ROWS = 8;

    public static final KvFootprint NONE = new KvFootprint(0, 0);

    /** Where an engine keeps a sequence's cache, which decides what it really takes. */
    public enum Layout {
        /** dev.tandem.engine.KvBuffers (ONNX Runtime; OpenVINO on a stateless graph): {@link #of}. */
        KV_BUFFERS,
        /** Java arrays (the reference engine): one copy of the capacity, outgrown arrays garbage: {@link #onHeap}. */
        JAVA_HEAP,
        /** Inside the runtime (stateful OpenVINO): not observable; the theoretical bytes are counted. */
        RUNTIME_STATE,
        /**
         * A row of the slot pool of ONNX Runtime or OpenVINO (graphs marked {@code tandem.kv_layout=slots}):
         * {@link #slotRow}. One copy (keys and values are written in place), reserved at the full width (the pool
         * lays its rows out narrower while they are short, SlotRows), nothing grows beyond it.
         */
        SLOT_POOL;

        /**
         * The layout of a loaded model's caches, as its engine says: every figure that counts a sequence's bytes
         * (admission, {@code GET /v1/models/{id}}, {@code tools/plan.sh}) must take it from here, so that a graph's
         * layout (Optimum or slots), not the file, decides what is counted.
         */
        public static Layout forStorage(CausalLm.CacheStorage storage) {
            return switch (storage) {
                case RUNTIME_STATE -> RUNTIME_STATE;
                case JAVA_HEAP -> JAVA_HEAP;
                case KV_BUFFERS -> KV_BUFFERS;
                case SLOT_POOL -> SLOT_POOL;
            };
        }

        /** The footprint of a sequence under this layout (see {@link KvFootprint#of}). */
        public KvFootprint footprint(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
            return switch (this) {
                case KV_BUFFERS -> of(shape, firstFeed, tokens, maxFeed);
                case JAVA_HEAP -> onHeap(shape, firstFeed, tokens, maxFeed);
                case RUNTIME_STATE -> new KvFootprint((long) Math.max(1, Math.min(tokens, shape.maxContext()))
                        * shape.kvBytesPerToken(), 0);
                case SLOT_POOL -> slotRow(shape, firstFeed, tokens, maxFeed);
            };
        }
    }

    /**
     * The reference engine's cache: Java arrays of the capacity (same growth policy as KvBuffers, but one
     * copy, and outgrown arrays become garbage), one logits array of {@code max(rows fed, 8)} rows, float32.
     */
    public static KvFootprint onHeap(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
        int context = shape.maxContext();
        int last = Math.max(1, Math.min(tokens, context));
        int first = Math.max(1, Math.min(firstFeed, last));
        int capacity = Math.min(context, Math.max(first, INITIAL_CAPACITY));
        while (capacity < last) {
            capacity = Math.min(context, Math.max(capacity + Math.min(maxFeed, last - capacity), capacity * 2));
        }
        long rows = Math.max(Math.max(first, maxFeed), MIN_ROWS);
        return new KvFootprint((long) capacity * shape.kvBytesPerToken(), rows * 4L * shape.vocabSize());
    }

    /** The slot pool's full width, what a row reserves: the context rounded up to a multiple of 64 (as the engines' slot pools). */
    public static int slotWidth(int maxContext) {
        return (maxContext + 63) / 64 * 64;
    }

    /**
     * A sequence on a slots graph: one pool row of {@link #slotWidth} positions whatever its length (pages of it
     * that are never written take no memory, so this is the most it takes), and its own step buffers: logits
     * ({@code 4 x vocab} bytes per row), token ids and positions (8 bytes each per row), rows = {@code max(tokens
     * fed, 8)}. A batched step also holds, for the duration of the call, one padded logits buffer for the whole
     * batch ({@code rows in the batch x longest feed x 4 x vocab}), freed when the call returns.
     */
    public static KvFootprint slotRow(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
        int last = Math.max(1, Math.min(tokens, shape.maxContext()));
        int first = Math.max(1, Math.min(firstFeed, last));
        long kv = (long) slotWidth(shape.maxContext()) * shape.kvBytesPerToken();
        long rows = Math.max(Math.max(first, maxFeed), MIN_ROWS);
        return new KvFootprint(kv, rows * (4L * shape.vocabSize() + 16L));
    }

    public long total() {
        return kvBufferBytes + stepBufferBytes;
    }

    public KvFootprint plus(KvFootprint o) {
        return new KvFootprint(kvBufferBytes + o.kvBufferBytes, stepBufferBytes + o.stepBufferBytes);
    }

    /**
     * The most a sequence takes that is first fed {@code firstFeed} tokens (the prompt), grows to at most
     * {@code tokens} tokens (capped at the model's context) and afterwards feeds at most {@code maxFeed}
     * tokens per step (1 for plain decoding; candidates + 1 when verifying drafts).
     */
    public static KvFootprint of(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
        int context = shape.maxContext();
        int last = Math.max(1, Math.min(tokens, context));
        int first = Math.max(1, Math.min(firstFeed, last));
        int capacity = Math.min(context, Math.max(first, INITIAL_CAPACITY));
        long peakTokens = capacity;
        while (capacity < last) {  // each later step feeds at most maxFeed <= 64 <= capacity: the capacity doubles
            int grown = Math.min(context, Math.max(capacity + Math.min(maxFeed, last - capacity), capacity * 2));
            peakTokens = Math.max(peakTokens, (long) capacity + grown);  // old and new regions, during the copy
            capacity = grown;
        }
        long kv = 2L * peakTokens * shape.kvBytesPerToken();
        long rows = Math.max(Math.max(first, maxFeed), MIN_ROWS);
        long step = rows * (4L * shape.vocabSize() + 8L);
        return new KvFootprint(kv, step);
    }

    /** The worst footprint of a sequence of {@code tokens} tokens, and the prompt length that gives it. */
    public record Worst(KvFootprint footprint, int promptTokens) {
    }

    /**
     * The worst case over every prompt length (1..tokens) for a sequence that grows to {@code tokens}
     * tokens: what the planner reports as the bytes one such sequence may hold.
     */
    public static Worst worst(ModelShape shape, int tokens, int maxFeed) {
        return worst(Layout.KV_BUFFERS, shape, tokens, maxFeed);
    }

    /** As {@link #worst(ModelShape, int, int)} for a cache kept as {@code layout} says. */
    public static Worst worst(Layout layout, ModelShape shape, int tokens, int maxFeed) {
        int last = Math.max(1, Math.min(tokens, shape.maxContext()));
        KvFootprint worst = NONE;
        int at = 1;
        for (int p = 1; p <= last; p++) {
            KvFootprint f = layout.footprint(shape, p, last, maxFeed);
            if (f.total() > worst.total()) {
                worst = f;
                at = p;
            }
        }
        return new Worst(worst, at);
    }
}
