package dev.tandem.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The native memory of one sequence's KV cache, shared by the engines that hand a runtime
 * host-memory tensors (ONNX Runtime, OpenVINO).
 *
 * <p>Each of the {@code slots} (2 x layers: keys and values) holds a {@code [kvHeads, length,
 * headDim]} block at the start of its region. Two regions alternate: the runtime reads the past
 * from {@link #current()} and writes the present into {@link #next()}, then {@link #swap()} makes
 * that present the next step's past, so a step never copies the cache. Truncation compacts each
 * slot in place. Capacity grows geometrically ({@link #capacityFor}); a region that is outgrown is freed as
 * soon as its contents are copied (so a sequence holds two regions of its current capacity, and during a
 * growth step briefly the two it outgrew as well); everything is freed when the buffers close.
 */
public final class KvBuffers implements AutoCloseable {
    private final ModelShape shape;
    private final int slots;
    private Arena kvArena;         // current and next (replaced when the capacity grows)
    private Arena stepArena;       // ids and logits (replaced when a step feeds more rows)
    private int length;
    private int capacity;          // tokens per slot
    private MemorySegment current; // holds the past
    private MemorySegment next;    // receives the present
    private MemorySegment ids;     // token ids fed in a step (int64)
    private MemorySegment logits;  // logits of a step (float32, rows x vocab)
    private int rows;              // capacity of ids and logits, in fed tokens
    private boolean closed;

    /** The first capacity, in tokens: the smallest of the fixed steps {@link #capacityFor} grows through. */
    public static final int INITIAL_CAPACITY = 64;

    /**
     * The capacity a cache of {@code tokens} tokens is given: the smallest of 64, 128, 256, ... (64 x 2^j) that holds
     * them, capped at the context. Why fixed steps: the capacity after n tokens then depends on n alone, not on how
     * the tokens arrived (a whole prompt in one call, or in the scheduler's chunks, the first one smaller when decoding
     * rows take the step's budget), so the memory admission control reserves for a sequence
     * ({@code dev.tandem.memory.KvFootprint}) holds whatever chunks the scheduler picks. Growing to exactly the prompt's
     * length instead made a 100-token prompt take 100 tokens in one call but 64 then 128 in chunks of 64 and 36.
     * Also the reference engine's growth, so its heap figure holds the same way.
     */
    public static int capacityFor(int tokens, int maxContext) {
        long c = INITIAL_CAPACITY;
        while (c < tokens && c < maxContext) {
            c *= 2;
        }
        return (int) Math.min(c, maxContext);
    }

    public KvBuffers(ModelShape shape, int slots) {
        this.shape = shape;
        this.slots = slots;
    }

    /** Tokens held. */
    public int length() {
        return length;
    }

    /** After a step of {@code fed} tokens: the present becomes the past. */
    public void advance(int fed) {
        MemorySegment t = current;
        current = next;
        next = t;
        length += fed;
    }

    public void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("KV cache is closed");
        }
    }

    /** Makes room for a sequence of {@code tokens} tokens and a step of {@code tokens - length()} fed tokens. */
    public void ensureCapacity(int tokens) {
        int fed = tokens - length;
        if (logits == null || rows < fed) {
            if (stepArena != null) {
                stepArena.close();
            }
            stepArena = Arena.ofShared();
            rows = Math.max(fed, 8);
            logits = stepArena.allocate(4L * rows * shape.vocabSize(), 64);
            ids = stepArena.allocate(ValueLayout.JAVA_LONG, rows);
        }
        if (tokens <= capacity) {
            return;
        }
        int grown = capacityFor(tokens, shape.maxContext());
        long newSlot = slotBytes(grown);
        Arena grownArena = Arena.ofShared();
        MemorySegment grownCurrent = grownArena.allocate(newSlot * slots, 64);
        MemorySegment grownNext = grownArena.allocate(newSlot * slots, 64);
        if (length > 0) {  // the blocks keep their layout; only the slot starts move
            for (int s = 0; s < slots; s++) {
                MemorySegment.copy(current, s * slotBytes(capacity), grownCurrent, s * newSlot, blockBytes(length));
            }
        }
        if (kvArena != null) {
            kvArena.close();  // the outgrown regions
        }
        kvArena = grownArena;
        current = grownCurrent;
        next = grownNext;
        capacity = grown;
    }

    /** The past of slot {@code s}: its first {@link #length()} positions. */
    public MemorySegment past(int s) {
        return current.asSlice(s * slotBytes(capacity), blockBytes(length));
    }

    /** Where the runtime writes slot {@code s}'s present of {@code tokens} positions. */
    public MemorySegment present(int s, int tokens) {
        return next.asSlice(s * slotBytes(capacity), blockBytes(tokens));
    }

    /** Token ids for a step, as int64 (at least the step's length). */
    public MemorySegment ids() {
        return ids;
    }

    /** The logits buffer for a step of {@code fed} tokens. */
    public MemorySegment logits(int fed) {
        return logits.asSlice(0, 4L * fed * shape.vocabSize());
    }

    /** Forgets every position at or after {@code newLength}, compacting each slot in place. */
    public void truncate(int newLength) {
        ensureOpen();
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a cache of " + length + " tokens to " + newLength);
        }
        if (newLength == length) {
            return;
        }
        long rowBytes = (long) shape.headDim() * shape.kvBytesPerElement();
        long slot = slotBytes(capacity);
        for (int s = 0; s < slots; s++) {
            long base = s * slot;
            for (int h = 1; h < shape.kvHeads(); h++) {
                MemorySegment.copy(current, base + h * length * rowBytes, current, base + h * newLength * rowBytes,
                        newLength * rowBytes);
            }
        }
        length = newLength;
    }

    private long slotBytes(int tokens) {
        return blockBytes(tokens);
    }

    private long blockBytes(int tokens) {
        return (long) shape.kvHeads() * tokens * shape.headDim() * shape.kvBytesPerElement();
    }

    public boolean closed() {
        return closed;
    }

    /** Frees the memory. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (kvArena != null) {
                kvArena.close();
            }
            if (stepArena != null) {
                stepArena.close();
            }
        }
    }
}
