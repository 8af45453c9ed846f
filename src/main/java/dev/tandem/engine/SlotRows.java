package dev.tandem.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The bookkeeping of a pool of KV caches for a graph in the "slots" layout ({@code tandem.kv_layout=slots}, docs in
 * notes/slots.md), whatever runtime runs the graph: every sequence is one row of a pool tensor
 * {@code [rows, kvHeads, w, headDim]} per layer's keys and values ({@link #slots} of them), and the graph writes a
 * step's keys and values into the row at the tokens' {@code position_ids} (ScatterElements). One runtime call steps
 * any set of sequences: the batch is the range of rows from the lowest to the highest row fed. A runtime's pool (ONNX
 * Runtime's SlotPool, OpenVINO's OvSlotPool) extends this class with only what is its own: how one call over a range
 * of rows is bound and run ({@link #run}), and what it holds per row or per pool ({@link Row#freeRuntime},
 * {@link #closeRuntime}).
 *
 * <p>Design, and why:
 * <ul>
 *   <li><b>The width follows the longest row.</b> The graph attends over every column of the rows it is
 *   given, masked ones included, so a call costs what its width {@code w} is, not what the rows hold. Measured
 *   on a 1024-context edition of the bundled target (DecodeBenchmark --batched, 2 threads, past 64, ms per call),
 *   the full width 1024 against 256: B=1 T=1 4.35 / 4.24, B=1 T=6 7.99 / 6.53, B=8 T=1 10.6 / 8.6, B=16 T=1
 *   18.5 / 13.3, B=8 T=6 42.4 / 28.4, up to +50% on batched steps. So the rows are laid out at the current width
 *   {@code w} ({@link #width()}), a multiple of 64 (the contract: the graph gives the same bits at every such
 *   width, so results do not depend on it), kept at the smallest one that covers what the rows need, up to
 *   the full width {@code W} = the context rounded up to 64 ({@link #maxWidth()}). A call that would write at
 *   or beyond column {@code w} first widens the pool ({@link #fitWidth}): every row in use moves to the new
 *   stride in place (a copy of the columns the rows hold, once per 64 columns the longest row grows: about the
 *   bytes one batched step over those rows reads, so at most a few per cent of the steps between two copies).
 *   Measured the same way after the change, past 64 (w 128) against the full width (1024): B=1 T=1 4.04 / 4.42,
 *   B=8 T=1 7.96 / 10.5, B=16 T=6 48.7 / 86.1; past 250 (w 256): B=16 T=1 15.3 / 20.2; past 1000 the same.
 *   The pool narrows again when the longest row leaves or is truncated, keeping
 *   {@link #SHRINK_MARGIN} columns beyond the longest row, so that a verification's rollback across a multiple
 *   of 64 does not widen and narrow the pool at every step. Memory is still reserved, and counted by the KV
 *   budget (KvFootprint.Layout.SLOT_POOL), for {@code W} columns per row ({@link #rowBytes()}): a narrower
 *   layout only takes less.</li>
 *   <li><b>Reserved rows.</b> Room for {@link #DEFAULT_ROWS} rows is reserved as address space
 *   ({@link ReservedMemory}): pages cost memory only once written, so a sequence joining takes a free
 *   row and copies nothing. The rows in use are kept at the front ({@code [0, used)}): a sequence
 *   leaving gives its row to the last row's sequence (a copy of that one sequence's keys and
 *   values), and the last row's pages go back to the system. A batched step over the sequences in
 *   use therefore covers no empty rows.</li>
 *   <li><b>Rollback is a length change</b>: positions at or beyond a row's length are masked by
 *   causality and overwritten before they are read again.</li>
 *   <li><b>Padding.</b> A batch feeds {@code T} = the longest feed's tokens to every row in its
 *   range. A row that feeds fewer (or is not in the step at all) gets padding tokens at the positions
 *   after its real ones: they write keys where nothing real is (beyond the row's length). Positions
 *   past the last column are clamped to {@code w - 1}. Before the call the pool is made wide enough
 *   that this never lands on a real key: {@code w >= length + fed} for a row the call steps, and
 *   {@code w > length} for a row of the range it does not step (a row of exactly {@code w} columns
 *   would otherwise have its last key overwritten). So a clamped position is either beyond the row's
 *   length, or the column of the row's last real token of this step (it reaches {@code w} exactly):
 *   there the padding repeats that token, whose keys and values at that position are the same bits,
 *   so the write changes nothing. Only at the full width may a row of the range not stepped hold
 *   {@code W} columns (it filled the context): it can never be fed again without truncating first, so
 *   its column {@code W - 1} is never read again and padding may overwrite it.</li>
 *   <li><b>Length-addressed graphs</b> ({@link #lengthAddressed}; ONNX Runtime GenAI graphs, whose
 *   GroupQueryAttention writes a row's new keys at the row's length, from the attention mask, rather than at
 *   position ids): there is no clamping, every row of a call's range writes all {@code T} of its fed and padding
 *   columns after its length, so the pool is first made wide enough for {@code length + T} of every row of the
 *   range. Near the full width, where that would not fit, the call's feeds run one by one instead (each alone
 *   writes only its own tokens).</li>
 *   <li><b>Long feeds apart.</b> Because of that padding, a feed longer than {@link #LONG_FEED} (a prompt
 *   chunk) beside shorter ones runs in a call of its own.</li>
 *   <li><b>Logits</b> of a batch are produced into one {@code [rows, T, vocab]} buffer for the call
 *   (the pool's, reused from call to call up to {@link #REUSED_LOGITS_BYTES})
 *   and copied into each sequence's own logits buffer ({@code 4 x vocab} bytes per fed token), so
 *   they stay valid until that sequence's next step, whatever other batches run meanwhile.</li>
 *   <li><b>Concurrency.</b> Single-sequence forwards (the draft model, readiness checks) touch only
 *   their own row and run side by side under a read lock; a batched step writes padding into every
 *   row of its range, and joining/leaving move rows, so those take the write lock, as does a single
 *   forward that needs a wider pool (widening moves every row).</li>
 * </ul>
 */
public abstract class SlotRows implements AutoCloseable {
    /** Rows reserved (address space only, see {@link ReservedMemory}): sequences of one model decoding at once. */
    public static final int DEFAULT_ROWS = 256;
    /** Columns are kept a multiple of this: the slots contract requires it (the graph's attention gives the same bits at every such width). */
    public static final int WIDTH_STEP = 64;
    /** Any valid token id: what rows that are not stepped are fed. */
    private static final long PAD_TOKEN = 0;
    /** Batched calls with logits up to this size reuse the pool's buffers; larger ones (long prompt chunks) get their own. */
    public static final long REUSED_LOGITS_BYTES = 4L << 20;
    /**
     * A feed longer than this (a prompt chunk) runs in a call of its own: in one padded call every row computes as
     * many tokens as the longest feed, so a 128-token chunk beside 8 decode steps would cost 8 x 128 tokens; measured
     * (docs/benchmarks.md, long prompt amid streams) the streams' inter-token p99 went from 50 to 590 ms.
     */
    public static final int LONG_FEED = 16;

    /**
     * Columns kept beyond the longest row before the pool narrows: more than a verification rolls back
     * (AssistOptions.MAX_ASSISTANT_TOKENS + 1 = 17 tokens), so a sequence that verifies across a multiple of 64
     * and rolls back does not narrow and widen the pool (two copies of every row) at every step; narrowing waits
     * for the longest row to leave or to be truncated by more.
     */
    public static final int SHRINK_MARGIN = 32;

    /** The model's dimensions. */
    protected final ModelShape shape;
    /** Columns a row can grow to (W, the reservation): the context rounded up to a multiple of 64. */
    private final int maxWidth;
    /** Columns of every row now (w): a multiple of 64, at most W; changed only under the write lock. */
    private volatile int width = WIDTH_STEP;
    /** Pool tensors: 2 x layers (keys and values of every layer). */
    protected final int slots;
    /** Bytes reserved for one row of one slot: kvHeads x W x headDim elements. */
    private final long maxSlotRowBytes;
    private final int capacity;
    private final ReservedMemory memory;
    private final Row[] rows;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private int used;
    private boolean closed;
    /** Runtime calls made ({@link #run}), single and batched. */
    private final java.util.concurrent.atomic.LongAdder callCount = new java.util.concurrent.atomic.LongAdder();
    /** The batched calls' buffers, reused from call to call (see {@link #callBuffers}); null before the first. */
    private CallBuffers reused;

    /**
     * Whether the graph addresses a row's columns by its length rather than by position ids: it writes a call's
     * {@code T} tokens of every row of the range at columns {@code [length, length + T)} (see the class comment).
     */
    private final boolean lengthAddressed;

    /** A pool of {@code capacity} rows of {@code slots} pool tensors, reserved (not committed) at once. */
    protected SlotRows(ModelShape shape, int slots, int capacity) {
        this(shape, slots, capacity, false);
    }

    /**
     * A pool as {@link #SlotRows(ModelShape, int, int)}, for a graph that writes each row's keys at the row's length
     * when {@code lengthAddressed} (see the class comment).
     */
    protected SlotRows(ModelShape shape, int slots, int capacity, boolean lengthAddressed) {
        this.shape = shape;
        this.lengthAddressed = lengthAddressed;
        this.maxWidth = maxWidth(shape.maxContext());
        this.slots = slots;
        this.capacity = capacity;
        this.maxSlotRowBytes = slotRowBytes(maxWidth);
        this.memory = new ReservedMemory(maxSlotRowBytes * capacity * slots);
        this.rows = new Row[capacity];
    }

    /** The most columns a pool for a model of {@code maxContext} tokens has: the context rounded up to a multiple of 64. */
    public static int maxWidth(int maxContext) {
        return roundUp(maxContext);
    }

    private static int roundUp(int columns) {
        return (columns + WIDTH_STEP - 1) / WIDTH_STEP * WIDTH_STEP;
    }

    /** The most columns the rows can have (W): what the pool reserves memory for. */
    public int maxWidth() {
        return maxWidth;
    }

    /**
     * The columns of every row now (w, a multiple of 64, at most {@link #maxWidth()}): the width of the tensors a
     * call is given. It changes only under the write lock, so it is stable inside {@link #run}.
     */
    public int width() {
        return width;
    }

    /**
     * Bytes one sequence's row takes at most, at the full width with every page of it written (keys and values of
     * every layer): what the pool reserves per row and the KV budget counts.
     */
    public long rowBytes() {
        return maxSlotRowBytes * slots;
    }

    /** Bytes of one row of one slot at {@code columns} columns: kvHeads x columns x headDim elements. */
    private long slotRowBytes(int columns) {
        return (long) shape.kvHeads() * columns * shape.headDim() * shape.kvBytesPerElement();
    }

    /** Runtime calls made so far, single and batched (a batched step may take more than one, see {@link #forward(List)}). */
    public long runtimeCalls() {
        return callCount.sum();
    }

    /** Rows in use. */
    public int used() {
        lock.readLock().lock();
        try {
            return used;
        } finally {
            lock.readLock().unlock();
        }
    }

    public boolean owns(KvCache cache) {
        return cache instanceof Row r && r.pool() == this;
    }

    /** A new sequence: the first free row (it reads as zeros or stale keys; neither is ever attended to). */
    public Row newRow() {
        lock.writeLock().lock();
        try {
            if (closed) {
                throw new IllegalStateException("the model is closed");
            }
            if (used == capacity) {
                throw new IllegalStateException("the model already holds " + capacity + " sequences, the most it can hold at once");
            }
            Row r = createRow(used);
            rows[used++] = r;
            return r;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The sequence object of a new row at {@code index}: a runtime that keeps something per row returns its own subclass. */
    protected Row createRow(int index) {
        return new Row(index);
    }

    /**
     * The runtime call over rows {@code [first, first + batch)}: {@code batch x steps} token ids and positions (int64)
     * in, keys and values written into the rows ({@link #slotRows}, tensors {@code [batch, kvHeads, width(), headDim]}),
     * every position fed below {@link #width()} (on a length-addressed graph, row {@code b}'s first position is its
     * length and {@code length + steps <= width()} for every row of the range), {@code batch x steps x vocab} float32
     * logits into
     * {@code logits}. {@code single} is the row of a single forward (under the read lock: other single forwards may run
     * at the same time on other rows), null for a batched call (under the write lock).
     */
    protected abstract void run(Row single, int first, int batch, int steps, MemorySegment ids, MemorySegment positions,
                                MemorySegment logits);

    /** What the runtime holds for the whole pool, freed when the pool closes (under the write lock, before the rows' memory goes). */
    protected void closeRuntime() {
    }

    /**
     * Rows {@code [first, first + batch)} of pool tensor {@code slot}: {@code batch x kvHeads x w x headDim} elements
     * at the current width ({@link #width()}). Under the lock (the rows move when the width changes).
     */
    protected MemorySegment slotRows(int slot, int first, int batch) {
        return memory.segment().asSlice(offset(slot, first), slotRowBytes(width) * batch);
    }

    /**
     * One sequence's step: a batch of one row, that row's memory only, under the read lock; a step that would write
     * beyond the pool's width takes the write lock and widens the pool first.
     */
    public Logits forward(Row row, int[] tokens, int offset, int length) {
        row.ensureOpen();
        GraphChecks.checkStep(shape, row.length, tokens, offset, length);
        lock.readLock().lock();
        try {
            if (row.length + length <= width) {
                return forwardAlone(row, tokens, offset, length);
            }
        } finally {
            lock.readLock().unlock();
        }
        lock.writeLock().lock();
        try {
            ensureOpen(row);
            fitWidth(row.length + length);
            return forwardAlone(row, tokens, offset, length);
        } finally {
            lock.writeLock().unlock();
        }
    }

    private void ensureOpen(Row row) {
        row.ensureOpen();
        if (closed) {
            throw new IllegalStateException("the model is closed");
        }
    }

    /** {@link #forward(Row, int[], int, int)} once the pool is wide enough for it, under either lock. */
    private Logits forwardAlone(Row row, int[] tokens, int offset, int length) {
        ensureOpen(row);
        row.ensureStep(length);
        int past = row.length;
        for (int i = 0; i < length; i++) {
            row.ids.setAtIndex(ValueLayout.JAVA_LONG, i, tokens[offset + i]);
            row.positions.setAtIndex(ValueLayout.JAVA_LONG, i, past + i);
        }
        run(row, row.index, 1, length, row.ids, row.positions, row.logits);
        callCount.increment();
        row.length = past + length;
        return row.view(length);
    }

    /**
     * The batched step: every feed in one runtime call, except that feeds longer than {@link #LONG_FEED} beside
     * shorter ones run in a second call. All feeds are checked before anything runs, so an invalid one changes
     * nothing. Each feed's logits are bit for bit those of its single forward.
     */
    public List<Logits> forward(List<Feed> feeds) {
        List<List<Feed>> calls = calls(feeds);
        if (calls.size() == 1) {
            return forwardInOneCall(feeds);
        }
        check(feeds);  // a refused batch changes nothing: check all before any call
        Map<Feed, Logits> byFeed = new IdentityHashMap<>();
        for (List<Feed> call : calls) {
            List<Logits> out = forwardInOneCall(call);
            for (int i = 0; i < call.size(); i++) {
                byFeed.put(call.get(i), out.get(i));
            }
        }
        List<Logits> out = new ArrayList<>(feeds.size());
        for (Feed f : feeds) {
            out.add(byFeed.get(f));
        }
        return out;
    }

    /**
     * The runtime calls a batch runs in: the feeds of up to {@link #LONG_FEED} tokens together and the longer ones
     * together; or, where the runtime takes a block of several tokens for one row at a time ({@link #batchesBlocks}),
     * the one-token feeds together and every longer feed in a call of its own.
     */
    private List<List<Feed>> calls(List<Feed> feeds) {
        boolean blocks = batchesBlocks();
        List<Feed> together = new ArrayList<>(feeds.size());
        List<Feed> apart = new ArrayList<>();
        for (Feed f : feeds) {
            (f.length() > (blocks ? LONG_FEED : 1) ? apart : together).add(f);
        }
        List<List<Feed>> calls = new ArrayList<>();
        if (!together.isEmpty()) {
            calls.add(together);
        }
        if (blocks && !apart.isEmpty()) {
            calls.add(apart);
        } else {
            for (Feed f : apart) {
                calls.add(List.of(f));
            }
        }
        return calls;
    }

    /**
     * Whether one call may feed blocks of several tokens to several rows. ONNX Runtime's GroupQueryAttention on the
     * CPU refuses a batch of more than one row when it feeds several tokens after a past ("batch_size must be 1
     * when sequence_length > 1 and past context is given"), so its pool says no: its verifications and prompt
     * chunks each run alone, its one-token decode steps together.
     */
    protected boolean batchesBlocks() {
        return true;
    }

    /** Checks every feed as {@link #forwardInOneCall} would, without running anything. */
    private void check(List<Feed> feeds) {
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
     * Every feed in one runtime call over rows {@code [lowest fed, highest fed]}. All feeds are
     * checked before anything runs, so an invalid one changes nothing.
     */
    private List<Logits> forwardInOneCall(List<Feed> feeds) {
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
            // the columns the call writes (see the class comment, "Padding"): a stepped row's real tokens, and one
            // beyond every other row of the range, whose padding is clamped to the last column; on a
            // length-addressed graph every row's T columns after its length
            int needed = 0;
            for (int i = lo; i <= hi; i++) {
                Feed f = byRow.get(rows[i]);
                needed = Math.max(needed, rows[i].length + (lengthAddressed ? steps : f == null ? 1 : f.length()));
            }
            if (lengthAddressed && needed > maxWidth) {
                return forwardOneByOne(feeds);
            }
            fitWidth(needed);
            int batch = hi - lo + 1;
            CallBuffers call = callBuffers(batch * steps);
            try {
                for (int b = 0; b < batch; b++) {
                    Row r = rows[lo + b];
                    fillRow(call.ids, call.positions, b * steps, steps, r.length, byRow.get(r));
                }
                run(null, lo, batch, steps, call.ids, call.positions, call.logits);
                callCount.increment();
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
     * The feeds of a batch each in a call of its own (a length-addressed graph's batch whose padding would not fit in
     * the full width). Under the write lock, the feeds checked.
     */
    private List<Logits> forwardOneByOne(List<Feed> feeds) {
        List<Logits> out = new ArrayList<>(feeds.size());
        for (Feed f : feeds) {
            Row r = (Row) f.cache();
            fitWidth(r.length + f.length());
            out.add(forwardAlone(r, f.tokens(), f.offset(), f.length()));
        }
        return out;
    }

    /**
     * Buffers for a batched call of {@code tokens} (rows x steps) fed tokens: the pool's reused ones, grown when a
     * call needs more, or, for a call larger than {@link #REUSED_LOGITS_BYTES}, buffers of its own that the caller
     * frees. A decode step used to allocate (and zero) these on every call; the buffers are only ever touched under
     * the write lock, and every row's logits are copied out before it is released, so one set serves every call.
     * Under the write lock.
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
     * One row of a batch: its real tokens at positions {@code past, past + 1, ...}, then padding up to
     * {@code steps} tokens (see the class comment for why the clamped positions are harmless).
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
     * Where a row of a pool tensor starts: each tensor keeps its reservation of {@code capacity} full-width rows,
     * and its rows in use lie at its start at the current width's stride.
     */
    private long offset(int slot, int row) {
        return slot * (long) capacity * maxSlotRowBytes + row * slotRowBytes(width);
    }

    /**
     * Makes the width fit a call that writes {@code needed} columns of some row (0: none, a row left): widened to
     * the smallest multiple of 64 that holds them (at most W), or narrowed when every row in use would still have
     * {@link #SHRINK_MARGIN} free columns at a smaller one. Under the write lock.
     */
    private void fitWidth(int needed) {
        int longest = 0;
        for (int i = 0; i < used; i++) {
            longest = Math.max(longest, rows[i].length);
        }
        int fit = Math.min(maxWidth, Math.max(WIDTH_STEP, roundUp(needed)));
        if (fit > width) {
            relayout(fit);
        } else {
            int roomy = Math.min(maxWidth, Math.max(fit, roundUp(longest + 1 + SHRINK_MARGIN)));
            if (roomy < width) {
                relayout(roomy);
            }
        }
    }

    /**
     * Moves every row in use to the stride of {@code columns} columns, in place: the first {@code length} columns
     * of each (row, head) block (the rest is never read before it is written). Widening moves blocks to higher
     * addresses, so the last block moves first; narrowing the other way round; either way no block is overwritten
     * before it has moved ({@link MemorySegment#copy} handles a block overlapping itself). After narrowing, the
     * pages beyond the rows in use go back to the system. Under the write lock.
     */
    private void relayout(int columns) {
        long column = (long) shape.headDim() * shape.kvBytesPerElement();
        long fromBlock = width * column;
        long toBlock = columns * column;
        int heads = shape.kvHeads();
        int blocks = used * heads;
        MemorySegment all = memory.segment();
        for (int s = 0; s < slots; s++) {
            long base = s * (long) capacity * maxSlotRowBytes;
            for (int i = 0; i < blocks; i++) {
                int block = columns > width ? blocks - 1 - i : i;
                long bytes = Math.min(rows[block / heads].length, columns) * column;
                MemorySegment.copy(all, base + block * fromBlock, all, base + block * toBlock, bytes);
            }
            if (columns < width) {
                memory.discard(base + blocks * toBlock, blocks * (fromBlock - toBlock));
            }
        }
        width = columns;
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
                memory.discard(offset(s, last), slotRowBytes(width));
            }
            rows[last] = null;
            used = last;
            fitWidth(0);  // narrower if this was the longest row
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Frees the pool (the runtime's part first, see {@link #closeRuntime}); called once the model has no calls inside it. */
    @Override
    public final void close() {
        lock.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                closeRuntime();
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

    /** One sequence: a row of the pool, its length, and its own step buffers (token ids, positions, logits). */
    public class Row implements KvCache {
        private int index;                // guarded by the pool's lock (moves when a row before it is freed)
        private volatile int length;
        private volatile boolean rowClosed;
        private Arena stepArena;
        private int stepRows;
        private MemorySegment ids;        // int64 x stepRows
        private MemorySegment positions;  // int64 x stepRows
        private MemorySegment logits;     // float32 x stepRows x vocab

        protected Row(int index) {
            this.index = index;
        }

        private SlotRows pool() {
            return SlotRows.this;
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

        /** Frees what the runtime holds for the row (see {@link #freeRuntime}), then the row. Idempotent. */
        @Override
        public final void close() {
            if (rowClosed) {
                return;
            }
            rowClosed = true;
            freeRuntime();
            release(this);
            if (stepArena != null) {
                stepArena.close();
            }
        }

        /** What the runtime holds for this row alone, freed when it closes, before its row is given to another sequence. */
        protected void freeRuntime() {
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
