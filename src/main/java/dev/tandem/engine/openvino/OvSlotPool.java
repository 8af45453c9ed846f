package dev.tandem.engine.openvino;

import dev.tandem.engine.EngineException;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.SlotRows;
import dev.tandem.engine.openvino.OvApi.ElementType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.LongAdder;

/**
 * The KV caches of a graph in the "slots" layout ({@code tandem.kv_layout=slots}, notes/slots.md) on OpenVINO: the
 * rows, their moves, padding, batching and locking are {@link SlotRows}' (the same as ONNX Runtime's SlotPool: same
 * layout, padding, row moves and footprint, KvFootprint.Layout.SLOT_POOL; its class comment says why); what is
 * OpenVINO's is the call, one infer request over a range of rows with host tensors over the pool's memory, and what
 * differs is said below.
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
 *   <li><b>One width</b>: the batch is one contiguous range of rows, so every row has the same width, the pool's
 *   current one (SlotRows: it follows the longest row in use). The C API has no strided tensors, which is why the
 *   rows of a batch must be adjacent. The price is attention over all w columns in single forwards too, however
 *   short the row (when the pool had a fixed width of 256 on the bundled target, rows looped one by one at past 64
 *   took ~10-15% longer than with the former per-sequence buffers of width 128; noisy; one batched call of 8 / 16
 *   rows was 2.8 / 3.9 x faster than that former loop).</li>
 *   <li><b>Infer requests.</b> An OpenVINO infer request runs one inference at a time, and single forwards (the
 *   draft model, readiness checks) may run on several threads at once: each row gets its own request, created at
 *   its first single forward (a sequence the scheduler only steps in batches never needs one); batched steps use
 *   the pool's one request.</li>
 * </ul>
 */
final class OvSlotPool extends SlotRows {
    /** C strings of the graph's port names (owned by the model, which outlives the pool). */
    record Names(MemorySegment inputIds, MemorySegment positionIds, MemorySegment logits, MemorySegment[] past,
                 MemorySegment[] present) {
    }

    private final OvApi api;
    private final MemorySegment compiledModel;
    private final Names names;
    private final int kvType;
    private final boolean inPlace;
    private final LongAdder inferCalls = new LongAdder();
    /** The batched steps' infer request, created at the first one; used under the write lock only. */
    private MemorySegment batchRequest;

    OvSlotPool(OvApi api, MemorySegment compiledModel, ModelShape shape, Names names, int kvType, boolean inPlace,
               int capacity) {
        super(shape, names.past().length, capacity);
        this.api = api;
        this.compiledModel = compiledModel;
        this.names = names;
        this.kvType = kvType;
        this.inPlace = inPlace;
    }

    /** Infer calls made so far (single and batched): a batched step must be one. */
    long inferCalls() {
        return inferCalls.sum();
    }

    @Override
    protected Row createRow(int index) {
        return new Row(index);
    }

    /**
     * One infer call over rows {@code [first, first + batch)}, on the row's own request for a single forward (created
     * at its first) or the pool's batch request: keys and values in place (or, with {@code inPlace} false, into a
     * scratch buffer copied back afterwards), logits into {@code logits}.
     */
    @Override
    protected void run(SlotRows.Row single, int first, int batch, int steps, MemorySegment ids, MemorySegment positions,
                       MemorySegment logits) {
        MemorySegment request;
        if (single != null) {
            Row row = (Row) single;
            if (row.request == null) {
                row.request = api.createInferRequest(compiledModel);
            }
            request = row.request;
        } else {
            if (batchRequest == null) {
                batchRequest = api.createInferRequest(compiledModel);
            }
            request = batchRequest;
        }
        int i64 = ElementType.I64.code;
        try (Arena step = Arena.ofConfined()) {
            api.setHostTensor(step, request, names.inputIds(), i64, ids, batch, steps);
            api.setHostTensor(step, request, names.positionIds(), i64, positions, batch, steps);
            int width = width();
            long slotBytes = slotRows(0, first, batch).byteSize();  // the batch's rows of one pool tensor
            MemorySegment scratch = inPlace ? null : step.allocate(slotBytes * slots, 64);
            for (int s = 0; s < slots; s++) {
                MemorySegment rowsOfSlot = slotRows(s, first, batch);
                MemorySegment present = inPlace ? rowsOfSlot : scratch.asSlice(s * slotBytes, slotBytes);
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
                    MemorySegment.copy(scratch, s * slotBytes, slotRows(s, first, batch), 0, slotBytes);
                }
            }
        } catch (OpenVinoException e) {
            // in place, a failed step may have written some keys: beyond the rows' lengths, where nothing is read
            throw new EngineException("OpenVINO failed on a step of " + batch + " sequence(s) x " + steps + " tokens: "
                    + e.getMessage(), e);
        }
    }

    /** Frees the batch request (the pool's memory goes next, in {@link SlotRows#close}); rows free their own requests. */
    @Override
    protected void closeRuntime() {
        api.inferRequestFree(batchRequest);
        batchRequest = null;
    }

    /** One sequence: a row of the pool and (once it has run alone) its infer request. */
    final class Row extends SlotRows.Row {
        private MemorySegment request;    // for single forwards; null until the first

        private Row(int index) {
            super(index);
        }

        /** Frees the infer request (which references the row's memory) before the row is given away. */
        @Override
        protected void freeRuntime() {
            api.inferRequestFree(request);
            request = null;
        }
    }
}
