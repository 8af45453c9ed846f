package dev.tandem.engine.openvino;

import dev.tandem.engine.EngineException;
import dev.tandem.engine.Feed;
import dev.tandem.engine.GraphChecks;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.ReservedMemory;
import dev.tandem.engine.openvino.OvApi.ElementType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The KV caches of a graph in the "slots" layout ({@code tandem.kv_layout=slots}, notes/slots.md) on OpenVINO: every
 * sequence is one row of a pool tensor {@code [rows, kvHeads, W, headDim]} per layer's keys and values, and the graph
 * writes a step's keys and values into the row at the tokens' {@code position_ids} (ScatterElements). One infer
 * request steps any set of sequences: the batch is the range of rows from the lowest to the highest row fed. The
 * design is ONNX Runtime's {@code engine/onnxruntime/SlotPool} (same layout, padding, row moves and footprint:
 * KvFootprint.Layout.SLOT_POOL), with OpenVINO's calls; what differs is said below.
 *
 * <ul>
 *   <li><b>In place.</b> {@code present.*} is set to the very host memory {@code past_key_values.*} is read from
 *   ({@code ov_tensor_create_from_host_ptr} over the same rows), so a step copies no cache. Measured on OpenVINO
 *   2024.4's CPU plugin (fixture and bundled target, 3 rows of lengths 30/45/7 fed 1/5/3 tokens, stale values in
 *   every slot): logits and every present element are the same bits as a run into separate output buffers, and each
 *   row's logits the bits it gives alone at widths 64, 128 and 256. OpenVinoSlotsTest checks in place against
 *   separate outputs ({@code inPlace = false}: the present goes to a scratch buffer, copied back after the call) on
 *   batched steps. Separate outputs would cost a full write of every batched row's cache per step (OpenVINO's
 *   scatter copies the past into the present, then the copy back): bundled target, 16 rows x 1 token at past 64,
 *   157 ms in place against 242 ms (medians, 2 loaded cores, OpenVinoSlotsTargetTest.batchedStepTiming).</li>
 *   <li><b>Fixed width</b> {@code W} = the context rounded up to a multiple of 64: the batch is one contiguous range
 *   of rows, so every row has the same width, and a row never moves or grows (a growing width would re-lay out every
 *   sequence). The C API has no strided tensors, which is why the rows of a batch must be adjacent. The price is
 *   attention over all W columns in single forwards too: on the bundled target (W 256) rows looped one by one at
 *   past 64 took ~10-15% longer than with the former per-sequence buffers of width 128 (noisy; one batched call
 *   of 8 / 16 rows was 2.8 / 3.9 x faster than that former loop).</li>
 *   <li><b>Reserved rows</b> ({@link ReservedMemory}: address space, pages committed when written); the rows in use
 *   are kept at the front: a sequence leaving gives its row to the last row's sequence (a copy of that one
 *   sequence's keys and values), whose pages then go back to the system. Joining copies nothing.</li>
 *   <li><b>Rollback is a length change</b>: positions at or beyond a row's length are masked by causality.</li>
 *   <li><b>Padding</b> as SlotPool: a batch feeds {@code T} = the longest feed's tokens to every row of its range; a
 *   row that feeds fewer (or none) gets padding tokens at the positions after its real ones, clamped to
 *   {@code W - 1}, repeating its last real token where the clamp lands on it.</li>
 *   <li><b>Infer requests.</b> An OpenVINO infer request runs one inference at a time, and single forwards (the
 *   draft model, readiness checks) may run on several threads at once: each row gets its own request, created at
 *   its first single forward (a sequence the scheduler only steps in batches never needs one); batched steps use
 *   the pool's one request.</li>
 *   <li><b>Concurrency.</b> Single forwards touch only their own row and run side by side under a read lock; a
 *   batched step writes padding into every row of its range, and joining/leaving move rows: the write lock.</li>
 *   <li><b>Logits</b> of a batch land in one {@code [rows, T, vocab]} buffer (reused up to
 *   {@link #REUSED_LOGITS_BYTES}) and are copied into each sequence's own buffer, so they stay valid until that
 *   sequence's next step.</li>
 * </ul>
 */
final class OvSlotPool implements AutoCloseable {
    /** Rows reserved (address space only): sequences of one model decoding at once. */
    static final int DEFAULT_ROWS = 256;
    /** Columns are kept a multiple of this: the slots contract requires it. */
    static final int WIDTH_STEP = 64;
    /** Any valid token id: what rows that are not stepped are fed. */
    private static final long PAD_TOKEN = 0;
    /** Batched calls with logits up to this size reuse the pool's buffers; larger ones (long prompt chunks) get their own. */
    static final long REUSED_LOGITS_BYTES = 4L << 20;

    /** C strings of the graph's port names (owned by the model, which outlives the pool). */
    record Names(MemorySegment inputIds, MemorySegment positionIds, MemorySegment logits, MemorySegment[] past,
                 MemorySegment[] present) {
    }

    private final OvApi api;
    private final MemorySegment compiledModel;
    private final ModelShape shape;
    private final Names names;
    private final int kvType;
    private final boolean inPlace;
    private final int width;
    private final int capacity;
    private final int slots;
    /** Bytes of one row of one slot (2 x layers slots): kvHeads x W x headDim elements. */
    private final long slotRowBytes;
    private final ReservedMemory memory;
    private final Row[] rows;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final LongAdder inferCalls = new LongAdder();
    private int used;
    private boolean closed;
    /** The batched steps' infer request, created at the first one; used under the write lock only. */
    private MemorySegment batchRequest;
    /** The batched calls' buffers, reused from call to call; null before the first. */
    private CallBuffers reused;

    OvSlotPool(OvApi api, MemorySegment compiledModel, ModelShape shape, Names names, int kvType, boolean inPlace,
               int capacity) {
        this.api = api;
        this.compiledModel = compiledModel;
        this.shape = shape;
        this.names = names;
        this.kvType = kvType;
        this.inPlace = inPlace;
        this.width = width(shape.maxContext());
        this.capacity = capacity;
        this.slots = names.past().length;
        this.slotRowBytes = (long) shape.kvHeads() * width * shape.headDim() * shape.kvBytesPerElement();
        this.memory = new ReservedMemory(slotRowBytes * capacity * slots);
        this.rows = new Row[capacity];
    }

    /** The pool's width for a model of {@code maxContext} tokens: the context rounded up to a multiple of 64. */
    static int width(int maxContext) {
        return (maxContext + WIDTH_STEP - 1) / WIDTH_STEP * WIDTH_STEP;
    }

    int width() {
        return width;
    }

    /** Bytes one sequence's row takes when every page of it is written (keys and values of every layer). */
    long rowBytes() {
        return slotRowBytes * slots;
    }

    /** Infer calls made so far (single and batched): a batched step must be one. */
    long inferCalls() {
        return inferCalls.sum();
    }

    /** Rows in use. */
    int used() {
        lock.readLock().lock();
        try {
            return used;
        } finally {
            lock.readLock().unlock();
        }
    }

    boolean owns(KvCache cache) {
        return cache instanceof Row r && r.pool() == this;
    }

    /** A new sequence: the first free row (it reads as zeros or stale keys; neither is ever attended to). */
    Row newRow() {
        lock.writeLock().lock();
        try {
            if (closed) {
                throw new IllegalStateException("the model is closed");
            }
            if (used == capacity) {
                throw new IllegalStateException("the model already holds " + capacity + " sequences, the most it can hold at once");
            }
            Row r = new Row(used);
            rows[used++] = r;
            return r;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** One sequence's step: a batch of one row, on the row's own infer request. */
    Logits forward(Row row, int[] tokens, int offset, int length) {
        row.ensureOpen();
        GraphChecks.checkStep(shape, row.length, tokens, offset, length);
        lock.readLock().lock();
        try {
            row.ensureOpen();
            if (closed) {
                throw new IllegalStateException("the model is closed");
            }
            row.ensureStep(length);
            if (row.request == null) {
                row.request = api.createInferRequest(compiledModel);
            }
            int past = row.length;
            for (int i = 0; i < length; i++) {
                row.ids.setAtIndex(ValueLayout.JAVA_LONG, i, tokens[offset + i]);
                row.positions.setAtIndex(ValueLayout.JAVA_LONG, i, past + i);
            }
            run(row.request, row.index, 1, length, row.ids, row.positions, row.logits);
            row.length = past + length;
            return row.view(length);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Checks every feed as {@link #forward(List)} would, without running anything. */
    void check(List<Feed> feeds) {
        lock.writeLock().lock();
        try {
            checked(feeds);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The feeds by row, after checking that every row is open, fed once and within the context. Under the lock. */
    private Map<Row, Feed> checked(List<Feed> feeds) {
        Map<Row, Feed> byRow = new IdentityHashMap<>();
        for (Feed f : feeds) {
            Row r = (Row) f.cache();
            r.ensureOpen();
            GraphChecks.checkStep(shape, r.length, f.tokens(), f.offset(), f.length());
            if (byRow.put(r, f) != null) {
                throw new IllegalArgumentException("a batched step feeds each cache at most once");
            }
        }
        return byRow;
    }

    /**
     * Every feed in one infer call over rows {@code [lowest fed, highest fed]}. All feeds are checked before anything
     * runs, so an invalid one changes nothing.
     */
    List<Logits> forward(List<Feed> feeds) {
        if (feeds.isEmpty()) {
            return List.of();
        }
        lock.writeLock().lock();
        try {
            Map<Row, Feed> byRow = checked(feeds);
            if (closed) {
                throw new IllegalStateException("the model is closed");
            }
            int lo = Integer.MAX_VALUE;
            int hi = -1;
            int steps = 0;
            for (Feed f : feeds) {
                Row r = (Row) f.cache();
                lo = Math.min(lo, r.index);
                hi = Math.max(hi, r.index);
                steps = Math.max(steps, f.length());
            }
            for (Feed f : feeds) {
                ((Row) f.cache()).ensureStep(f.length());
            }
            if (batchRequest == null) {
                batchRequest = api.createInferRequest(compiledModel);
            }
            int batch = hi - lo + 1;
            CallBuffers call = callBuffers(batch * steps);
            try {
                for (int b = 0; b < batch; b++) {
                    Row r = rows[lo + b];
                    fillRow(call.ids, call.positions, b * steps, steps, r.length, byRow.get(r));
                }
                run(batchRequest, lo, batch, steps, call.ids, call.positions, call.logits);
                List<Logits> out = new ArrayList<>(feeds.size());
                long rowBytes = 4L * shape.vocabSize();
                for (Feed f : feeds) {
                    Row r = (Row) f.cache();
                    MemorySegment.copy(call.logits, (long) (r.index - lo) * steps * rowBytes, r.logits, 0,
                            f.length() * rowBytes);
                    r.length += f.length();
                    out.add(r.view(f.length()));
                }
                return out;
            } finally {
                if (call != reused) {
                    call.arena.close();
                }
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Buffers for a batched call of {@code tokens} (rows x steps) fed tokens: the pool's reused ones, grown when a
     * call needs more, or, for a call larger than {@link #REUSED_LOGITS_BYTES}, buffers of its own that the caller
     * frees. Under the write lock.
     */
    private CallBuffers callBuffers(int tokens) {
        long logitBytes = 4L * tokens * shape.vocabSize();
        if (logitBytes > REUSED_LOGITS_BYTES) {
            return new CallBuffers(Arena.ofConfined(), tokens);
        }
        if (reused == null || reused.tokens < tokens) {
            if (reused != null) {
                reused.arena.close();
            }
            int grown = reused == null ? tokens : Math.max(tokens, reused.tokens * 2);
            reused = new CallBuffers(Arena.ofShared(), (int) Math.min(grown, REUSED_LOGITS_BYTES / (4L * shape.vocabSize())));
        }
        return reused;
    }

    /** Token ids, positions and logits of a batched call of up to {@code tokens} fed tokens (rows x steps). */
    private final class CallBuffers {
        final Arena arena;
        final int tokens;
        final MemorySegment ids;
        final MemorySegment positions;
        final MemorySegment logits;

        CallBuffers(Arena arena, int tokens) {
            this.arena = arena;
            this.tokens = tokens;
            this.ids = arena.allocate(8L * tokens, 8);
            this.positions = arena.allocate(8L * tokens, 8);
            this.logits = arena.allocate(4L * tokens * shape.vocabSize(), 64);
        }
    }

    /**
     * One row of a batch: its real tokens at positions {@code past, past + 1, ...}, then padding up to {@code steps}
     * tokens (see the class comment for why the clamped positions are harmless).
     */
    private void fillRow(MemorySegment ids, MemorySegment positions, int at, int steps, int past, Feed f) {
        int real = f == null ? 0 : f.length();
        long last = PAD_TOKEN;
        for (int t = 0; t < steps; t++) {
            long id;
            if (t < real) {
                id = f.tokens()[f.offset() + t];
                last = id;
            } else {
                id = last;  // the last real token when a clamped position lands on it, otherwise any valid id
            }
            ids.setAtIndex(ValueLayout.JAVA_LONG, at + t, id);
            positions.setAtIndex(ValueLayout.JAVA_LONG, at + t, Math.min(past + t, width - 1));
        }
    }

    /**
     * One infer call over rows {@code [first, first + batch)}: keys and values in place (or, with {@code inPlace}
     * false, into a scratch buffer copied back afterwards), logits into {@code logits}.
     */
    private void run(MemorySegment request, int first, int batch, int steps, MemorySegment ids, MemorySegment positions,
                     MemorySegment logits) {
        int i64 = ElementType.I64.code;
        try (Arena step = Arena.ofConfined()) {
            api.setHostTensor(step, request, names.inputIds(), i64, ids, batch, steps);
            api.setHostTensor(step, request, names.positionIds(), i64, positions, batch, steps);
            MemorySegment scratch = inPlace ? null : step.allocate(slotRowBytes * batch * slots, 64);
            for (int s = 0; s < slots; s++) {
                MemorySegment rowsOfSlot = memory.segment().asSlice(offset(s, first), slotRowBytes * batch);
                MemorySegment present = inPlace ? rowsOfSlot : scratch.asSlice(s * slotRowBytes * batch, slotRowBytes * batch);
                api.setHostTensor(step, request, names.past()[s], kvType, rowsOfSlot, batch, shape.kvHeads(), width,
                        shape.headDim());
                api.setHostTensor(step, request, names.present()[s], kvType, present, batch, shape.kvHeads(), width,
                        shape.headDim());
            }
            api.setHostTensor(step, request, names.logits(), ElementType.F32.code, logits, batch, steps, shape.vocabSize());
            inferCalls.increment();
            api.infer(request);
            if (!inPlace) {
                for (int s = 0; s < slots; s++) {
                    MemorySegment.copy(scratch, s * slotRowBytes * batch, memory.segment(), offset(s, first),
                            slotRowBytes * batch);
                }
            }
        } catch (OpenVinoException e) {
            // in place, a failed step may have written some keys: beyond the rows' lengths, where nothing is read
            throw new EngineException("OpenVINO failed on a step of " + batch + " sequence(s) x " + steps + " tokens: "
                    + e.getMessage(), e);
        }
    }

    private long offset(int slot, int row) {
        return (slot * (long) capacity + row) * slotRowBytes;
    }

    /** Frees a row: the last row's sequence moves into it (its keys and values only), the last row's pages go back. */
    private void release(Row row) {
        lock.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            int last = used - 1;
            if (row.index != last) {
                Row moved = rows[last];
                long headBytes = (long) width * shape.headDim() * shape.kvBytesPerElement();
                long usedBytes = (long) moved.length * shape.headDim() * shape.kvBytesPerElement();
                MemorySegment all = memory.segment();
                for (int s = 0; s < slots; s++) {
                    for (int h = 0; h < shape.kvHeads(); h++) {
                        MemorySegment.copy(all, offset(s, last) + h * headBytes, all, offset(s, row.index) + h * headBytes,
                                usedBytes);
                    }
                }
                moved.index = row.index;
                rows[row.index] = moved;
            }
            for (int s = 0; s < slots; s++) {
                memory.discard(offset(s, last), slotRowBytes);
            }
            rows[last] = null;
            used = last;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Frees the pool's memory and batch request; called once the model has no calls inside it. Rows free their own requests. */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                api.inferRequestFree(batchRequest);
                batchRequest = null;
                memory.close();
                if (reused != null) {
                    reused.arena.close();
                    reused = null;
                }
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** One sequence: a row of the pool, its length, its step buffers and (once it has run alone) its infer request. */
    final class Row implements KvCache {
        private int index;                // guarded by the pool's lock (moves when a row before it is freed)
        private volatile int length;
        private volatile boolean rowClosed;
        private MemorySegment request;    // for single forwards; null until the first
        private Arena stepArena;
        private int stepRows;
        private MemorySegment ids;        // int64 x stepRows
        private MemorySegment positions;  // int64 x stepRows
        private MemorySegment logits;     // float32 x stepRows x vocab

        private Row(int index) {
            this.index = index;
        }

        OvSlotPool pool() {
            return OvSlotPool.this;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int newLength) {
            ensureOpen();
            if (newLength < 0 || newLength > length) {
                throw new IllegalArgumentException("cannot truncate a cache of " + length + " tokens to " + newLength);
            }
            length = newLength;
        }

        /** Frees the infer request (which references the row's memory), then the row. Idempotent. */
        @Override
        public void close() {
            if (rowClosed) {
                return;
            }
            rowClosed = true;
            api.inferRequestFree(request);
            request = null;
            release(this);
            if (stepArena != null) {
                stepArena.close();
            }
        }

        void ensureOpen() {
            if (rowClosed) {
                throw new IllegalStateException("KV cache is closed");
            }
        }

        /** Step buffers for {@code fed} tokens: at least 8 rows, replaced (old ones freed) when a step feeds more. */
        private void ensureStep(int fed) {
            if (logits != null && stepRows >= fed) {
                return;
            }
            if (stepArena != null) {
                stepArena.close();
            }
            stepArena = Arena.ofShared();
            stepRows = Math.max(fed, 8);
            logits = stepArena.allocate(4L * stepRows * shape.vocabSize(), 64);
            ids = stepArena.allocate(ValueLayout.JAVA_LONG, stepRows);
            positions = stepArena.allocate(ValueLayout.JAVA_LONG, stepRows);
        }

        private Logits view(int fed) {
            return new Logits(logits.asSlice(0, 4L * fed * shape.vocabSize()).asByteBuffer().order(ByteOrder.nativeOrder())
                    .asFloatBuffer().asReadOnlyBuffer(), fed, shape.vocabSize());
        }
    }
}
