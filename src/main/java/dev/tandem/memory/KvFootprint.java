package dev.tandem.memory;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvBuffers;
import dev.tandem.engine.ModelShape;

/**
 * The native memory one sequence's cache really takes in the engines that keep it in
 * {@code dev.tandem.engine.KvBuffers} (ONNX Runtime, and OpenVINO on a stateless graph), as opposed to
 * the textbook figure {@code tokens x kvBytesPerToken}:
 *
 * <ul>
 *   <li>two regions of the same capacity alternate as past (read) and present (written), so the cache
 *       takes twice its capacity;</li>
 *   <li>capacity steps through 64, 128, 256, ... tokens (capped at the context), the step that holds the
 *       tokens so far ({@code KvBuffers.capacityFor}); the outgrown regions are freed once their contents
 *       are copied, so the peak is at the last growth, when the old and the new regions briefly coexist:
 *       one that grows from 256 to 512 peaks at (256 + 512) tokens, twice. A first feed that already lands
 *       in the final capacity has no old region;</li>
 *   <li>step buffers: logits ({@code 4 x vocab} bytes per row) and token ids (8 bytes per row), rows
 *       = {@code max(tokens fed, 8)}, replaced (the old ones freed first) when a step feeds more rows
 *       than they have.</li>
 * </ul>
 *
 * <p>The serving path feeds a prompt in chunks (the scheduler's chunked prefill), the first one possibly smaller
 * than the rest: {@link Layout#chunked} and {@link #worst} count that, the largest chunk bounding the step rows.
 *
 * Allocation alignment (under 64 bytes per allocation) is not counted. The model is checked against
 * {@code KvBuffers} itself in {@code KvFootprintTest}; change both together.
 *
 * @param kvBufferBytes   the most the ping-pong KV regions take at once
 * @param stepBufferBytes the most the logits and token-id buffers take at once
 */
public record KvFootprint(long kvBufferBytes, long stepBufferBytes) {
    /** KvBuffers' fewest step rows. */
    static final int MIN_ROWS = 8;
    /** A feed bound for a sequence whose feeds are not chunked: its largest feed is the sequence itself. */
    public static final int UNCHUNKED = Integer.MAX_VALUE;

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
         * A row of the slot pool of ONNX Runtime or OpenVINO (graphs marked {@code tandem.kv_layout=slots}, and on
         * ONNX Runtime GroupQueryAttention graphs, whose past and present are one buffer):
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

        /**
         * The footprint of a sequence under this layout (see {@link KvFootprint#of}) whose first feed is exactly
         * {@code firstFeed} tokens and every later one at most {@code maxFeed}, in any pattern: the most any such
         * sequence takes.
         */
        public KvFootprint footprint(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
            return switch (this) {
                case KV_BUFFERS -> of(shape, firstFeed, tokens, maxFeed);
                case JAVA_HEAP -> onHeap(shape, firstFeed, tokens, maxFeed);
                case RUNTIME_STATE -> new KvFootprint((long) Math.max(1, Math.min(tokens, shape.maxContext()))
                        * shape.kvBytesPerToken(), 0);
                case SLOT_POOL -> slotRow(shape, firstFeed, tokens, maxFeed);
            };
        }

        /**
         * The most a sequence takes whose {@code prompt} is fed in chunks of at most {@code prefillChunk} tokens (the
         * scheduler's chunked prefill; {@link KvFootprint#UNCHUNKED}: in one call) and every later step feeds at most
         * {@code maxFeed}. Why not the one-call figure: the step buffers only grow to the largest feed, so a long
         * prompt's rows count only up to the chunk (a 1024-token prompt in chunks of 64 takes 64 logits rows, not
         * 1024); and the first chunk may be as small as one token (decoding rows take the step's budget), so the
         * caches may grow through every capacity: counted with a one-token first feed, which never takes less.
         */
        public KvFootprint chunked(ModelShape shape, int prompt, int prefillChunk, int tokens, int maxFeed) {
            int largestChunk = Math.min(Math.max(1, prompt), Math.max(1, prefillChunk));
            return footprint(shape, 1, tokens, Math.max(largestChunk, maxFeed));
        }
    }

    /**
     * The reference engine's cache: Java arrays of the capacity (the same fixed steps as KvBuffers, but one
     * copy, and outgrown arrays become garbage, so the final capacity alone counts), one logits array of
     * {@code max(rows fed, 8)} rows, float32.
     */
    public static KvFootprint onHeap(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
        int last = Math.max(1, Math.min(tokens, shape.maxContext()));
        int first = Math.max(1, Math.min(firstFeed, last));
        int capacity = KvBuffers.capacityFor(last, shape.maxContext());
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
     * The most a sequence takes that is first fed {@code firstFeed} tokens, grows to at most {@code tokens}
     * tokens (capped at the model's context) and afterwards feeds at most {@code maxFeed} tokens per step (prompt
     * chunks; 1 for plain decoding; candidates + 1 when verifying drafts), in any pattern.
     *
     * <p>The KV regions peak at the last growth, into the final capacity {@code capacityFor(tokens)}: unless the
     * first feed already landed there, the old regions are those of the step below it (a sequence that passes
     * through every length, as one fed a token at a time, grows through it; one whose feeds skip it holds less),
     * so the figure is the most any feed pattern takes, and what the common one (feeds under 64 tokens) takes.
     */
    public static KvFootprint of(ModelShape shape, int firstFeed, int tokens, int maxFeed) {
        int context = shape.maxContext();
        int last = Math.max(1, Math.min(tokens, context));
        int first = Math.max(1, Math.min(firstFeed, last));
        int capacity = KvBuffers.capacityFor(last, context);
        long peakTokens = capacity;
        if (KvBuffers.capacityFor(first, context) < capacity) {
            peakTokens += stepBelow(capacity);  // old and new regions, during the copy
        }
        long kv = 2L * peakTokens * shape.kvBytesPerToken();
        long rows = Math.max(Math.max(first, maxFeed), MIN_ROWS);
        long step = rows * (4L * shape.vocabSize() + 8L);
        return new KvFootprint(kv, step);
    }

    /** The largest of KvBuffers' capacities below {@code capacity} (which is above the first one). */
    private static int stepBelow(int capacity) {
        int below = KvBuffers.INITIAL_CAPACITY;
        while (2 * below < capacity) {
            below *= 2;
        }
        return below;
    }

    /** The worst footprint of a sequence of {@code tokens} tokens, and the (shortest) prompt length that gives it. */
    public record Worst(KvFootprint footprint, int promptTokens) {
    }

    /**
     * The worst case over every prompt length (1..tokens) for a sequence that grows to {@code tokens} tokens, its
     * prompt fed in chunks of at most {@code prefillChunk} tokens ({@link Layout#chunked}; {@link #UNCHUNKED}: in
     * one call) and later steps feeding at most {@code maxFeed}: what the planner reports as the bytes one such
     * sequence may hold. With chunks, every prompt of at least the chunk's length is the worst; the shortest is
     * reported.
     */
    public static Worst worst(Layout layout, ModelShape shape, int tokens, int maxFeed, int prefillChunk) {
        int last = Math.max(1, Math.min(tokens, shape.maxContext()));
        KvFootprint worst = NONE;
        int at = 1;
        for (int p = 1; p <= last; p++) {
            KvFootprint f = layout.chunked(shape, p, prefillChunk, last, maxFeed);
            if (f.total() > worst.total()) {
                worst = f;
                at = p;
            }
        }
        return new Worst(worst, at);
    }
}
