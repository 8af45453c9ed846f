package dev.tandem.engine.openvino;

import dev.tandem.engine.ModelShape;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One sequence's KV cache for a graph in the "slots" layout ({@code tandem.kv_layout=slots}, see
 * notes/slots.md) on OpenVINO: for each of the {@code 2 x layers} slots a {@code [1, kvHeads, W, headDim]}
 * tensor that the graph reads as {@code past_key_values.*} and returns as {@code present.*} with the new
 * tokens' keys and values written at their positions (ScatterElements), every other position unchanged.
 *
 * <p>Design, and why:
 * <ul>
 *   <li><b>In place</b> (the default): {@code present.*} is bound to the very memory {@code past_key_values.*}
 *   is read from, so a step copies no cache and a sequence holds one copy of it. OpenVINO's CPU plugin gives
 *   the same bits as a run into separate buffers (OpenVinoSlotsTest checks it step by step). {@code inPlace
 *   = false} alternates two buffers instead (ping-pong: the present written into the other buffer becomes
 *   the next step's past), kept for that check and in case a device does not tolerate the aliasing.</li>
 *   <li><b>Width</b> {@code W} grows with the sequence, in steps of {@link #WIDTH_STEP} (the slots contract
 *   requires a multiple of 64): the graph attends over all {@code W} columns (those past the length are
 *   masked), so a short sequence pays for a short cache only. Growing re-allocates and copies the real
 *   positions of each head (once per 64 tokens), then frees the outgrown buffer: the peak is the old and the
 *   new buffers together ({@code KvFootprint.slotBuffers} counts exactly that). The width never exceeds the
 *   context rounded up to 64, which is also the graph's rotary-table width.</li>
 *   <li><b>Rollback is a length change</b>: positions at or beyond the length are masked by causality
 *   (position_ids) and overwritten before they are read again.</li>
 * </ul>
 */
final class SlotBuffers implements AutoCloseable {
    /** Widths are kept a multiple of this. */
    static final int WIDTH_STEP = 64;

    private final ModelShape shape;
    private final int slots;
    private final boolean inPlace;
    private final int maxWidth;
    private Arena kvArena;
    private MemorySegment current;  // the past: slots x [kvHeads, width, headDim]
    private MemorySegment next;     // ping-pong only: receives the present
    private int width;
    private int length;
    private Arena stepArena;
    private int rows;
    private MemorySegment ids;        // int64 x rows
    private MemorySegment positions;  // int64 x rows
    private MemorySegment logits;     // float32 x rows x vocab
    private boolean closed;

    SlotBuffers(ModelShape shape, int slots, boolean inPlace) {
        this.shape = shape;
        this.slots = slots;
        this.inPlace = inPlace;
        this.maxWidth = width(shape.maxContext());
    }

    /** The width that holds {@code tokens} positions: rounded up to a multiple of 64. */
    static int width(int tokens) {
        return (tokens + WIDTH_STEP - 1) / WIDTH_STEP * WIDTH_STEP;
    }

    int length() {
        return length;
    }

    int width() {
        return width;
    }

    boolean closed() {
        return closed;
    }

    void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("KV cache is closed");
        }
    }

    /**
     * Makes room for a step of {@code fed} tokens after the current length: step buffers of at least
     * {@code fed} rows (at least 8), and a width of at least {@code length + fed} positions, and writes the
     * step's token ids and positions.
     */
    void prepare(int[] tokens, int offset, int fed) {
        if (logits == null || rows < fed) {
            if (stepArena != null) {
                stepArena.close();
            }
            stepArena = Arena.ofShared();
            rows = Math.max(fed, 8);
            logits = stepArena.allocate(4L * rows * shape.vocabSize(), 64);
            ids = stepArena.allocate(ValueLayout.JAVA_LONG, rows);
            positions = stepArena.allocate(ValueLayout.JAVA_LONG, rows);
        }
        int total = length + fed;
        if (total > width) {
            grow(Math.min(maxWidth, width(total)));
        }
        for (int i = 0; i < fed; i++) {
            ids.setAtIndex(ValueLayout.JAVA_LONG, i, tokens[offset + i]);
            positions.setAtIndex(ValueLayout.JAVA_LONG, i, length + i);
        }
    }

    /** New buffers of {@code grown} columns; each head's first {@code length} positions are copied over. */
    private void grow(int grown) {
        long newSlot = slotBytes(grown);
        Arena arena = Arena.ofShared();
        MemorySegment c = arena.allocate(newSlot * slots, 64);
        MemorySegment n = inPlace ? null : arena.allocate(newSlot * slots, 64);
        if (length > 0) {
            long oldHead = headBytes(width);
            long newHead = headBytes(grown);
            long used = headBytes(length);
            for (int s = 0; s < slots; s++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    MemorySegment.copy(current, s * slotBytes(width) + h * oldHead, c, s * newSlot + h * newHead, used);
                }
            }
        }
        if (kvArena != null) {
            kvArena.close();
        }
        kvArena = arena;
        current = c;
        next = n;
        width = grown;
    }

    /** Slot {@code s}'s past, {@code [1, kvHeads, width, headDim]}. */
    MemorySegment past(int s) {
        return current.asSlice(s * slotBytes(width), slotBytes(width));
    }

    /** Where slot {@code s}'s present is written: the past itself in place, else the other buffer. */
    MemorySegment present(int s) {
        return (inPlace ? current : next).asSlice(s * slotBytes(width), slotBytes(width));
    }

    MemorySegment ids() {
        return ids;
    }

    MemorySegment positions() {
        return positions;
    }

    MemorySegment logits(int fed) {
        return logits.asSlice(0, 4L * fed * shape.vocabSize());
    }

    /** After a step of {@code fed} tokens: the present is the past. */
    void advance(int fed) {
        if (!inPlace) {
            MemorySegment t = current;
            current = next;
            next = t;
        }
        length += fed;
    }

    /** Forgets every position at or after {@code newLength}: only the length changes (the rest is masked). */
    void truncate(int newLength) {
        ensureOpen();
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a cache of " + length + " tokens to " + newLength);
        }
        length = newLength;
    }

    private long slotBytes(int columns) {
        return shape.kvHeads() * headBytes(columns);
    }

    private long headBytes(int columns) {
        return (long) columns * shape.headDim() * shape.kvBytesPerElement();
    }

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
