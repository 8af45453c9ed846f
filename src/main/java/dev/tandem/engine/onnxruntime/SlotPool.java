package dev.tandem.engine.onnxruntime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tandem.engine.EngineException;
import dev.tandem.engine.HalfFloats;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.SlotRows;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The KV caches of a graph in the "slots" layout on ONNX Runtime: the rows, their moves, padding, batching and
 * locking are {@link SlotRows}' (its class comment says why); what is ONNX Runtime's is the call, one
 * {@code session.run} over a range of rows with tensors created over the pool's memory.
 *
 * <ul>
 *   <li><b>In place.</b> {@code present.*} is bound to the very memory {@code past_key_values.*} is
 *   read from. ONNX Runtime's CPU ScatterElements skips its copy of the input when input and output
 *   are the same buffer, so a step writes only the new positions: no per-step copy of any cache, and
 *   one copy of the pool instead of two. (OrtSlotsTest checks the results equal a run into a separate
 *   output buffer.)</li>
 *   <li><b>GroupQueryAttention graphs</b> (the ONNX Runtime GenAI layout: {@code attention_mask} in, no position
 *   ids needed) are served the same way, length-addressed (SlotRows): GroupQueryAttention takes its past and present
 *   as one buffer when they are the same memory ({@code past_present_share_buffer}), writes each row's new keys at
 *   {@code seqlens_k + 1 - T}, which the graph computes from the mask's ones, and attends over that row's own
 *   length only. So row {@code b} is fed a mask of {@code length_b + T} ones (padded with zeros to the longest row
 *   of the call): its real tokens at its length, its padding after them, nothing copied. Without sharing, the
 *   operator would copy every row's whole past into a new present at every step.</li>
 * </ul>
 */
final class SlotPool extends SlotRows {
    private final OrtEnvironment env;
    private final OrtSession session;
    private final String[] pastNames;
    private final String[] presentNames;
    private final OnnxJavaType kvType;
    /** Whether the graph is fed {@code attention_mask} (a GroupQueryAttention graph: length-addressed rows). */
    private final boolean attentionMask;
    private final boolean positionIds;
    /** Whether the graph's logits are float16: written into the first half of the float32 buffer, widened in place. */
    private final boolean halfLogits;
    /** All ones: the mask of a single forward (one row, every column up to its new length). Read only. */
    private final MemorySegment ones;
    /**
     * The mask of a batched call, reused from call to call (batched calls run under the write lock); grown by doubling
     * (an outgrown one stays in the arena until the pool closes: at most as much again).
     */
    private MemorySegment batchMask;
    private final Arena arena = Arena.ofShared();

    /** A pool for a {@code tandem.kv_layout=slots} graph: position ids in, keys scattered at them. */
    SlotPool(OrtEnvironment env, OrtSession session, ModelShape shape, String[] pastNames, String[] presentNames,
             OnnxJavaType kvType, int capacity) {
        this(env, session, shape, pastNames, presentNames, kvType, capacity, false, true, false);
    }

    /**
     * A pool for a slots graph ({@code attentionMask} false) or a GroupQueryAttention graph ({@code attentionMask}
     * true; {@code positionIds} whether it also takes position ids; {@code halfLogits} whether its logits are float16,
     * as in the model builder's float16 graphs).
     */
    SlotPool(OrtEnvironment env, OrtSession session, ModelShape shape, String[] pastNames, String[] presentNames,
             OnnxJavaType kvType, int capacity, boolean attentionMask, boolean positionIds, boolean halfLogits) {
        super(shape, pastNames.length, capacity, attentionMask);
        this.env = env;
        this.session = session;
        this.pastNames = pastNames;
        this.presentNames = presentNames;
        this.kvType = kvType;
        this.attentionMask = attentionMask;
        this.positionIds = positionIds;
        this.halfLogits = halfLogits;
        this.ones = attentionMask ? arena.allocate(ValueLayout.JAVA_LONG, maxWidth()) : null;
        if (ones != null) {
            for (long i = 0; i < maxWidth(); i++) {
                ones.setAtIndex(ValueLayout.JAVA_LONG, i, 1L);
            }
        }
    }

    /**
     * The attention mask of a call: row {@code b} has ones for its length plus the call's {@code steps} tokens (its
     * first position is its length), zeros after, up to the longest row's.
     */
    private OnnxTensor mask(Row single, int batch, int steps, MemorySegment positions) throws OrtException {
        if (single != null) {
            long total = positions.getAtIndex(ValueLayout.JAVA_LONG, 0) + steps;
            return OnnxTensor.createTensor(env, buffer(ones.asSlice(0, 8 * total)).asLongBuffer(), new long[] {1, total});
        }
        long total = 0;
        for (int b = 0; b < batch; b++) {
            total = Math.max(total, positions.getAtIndex(ValueLayout.JAVA_LONG, (long) b * steps) + steps);
        }
        long cells = batch * total;
        if (batchMask == null || batchMask.byteSize() < 8 * cells) {
            batchMask = arena.allocate(ValueLayout.JAVA_LONG, Math.max(cells, 2 * (batchMask == null ? 0 : batchMask.byteSize() / 8)));
        }
        for (int b = 0; b < batch; b++) {
            long length = positions.getAtIndex(ValueLayout.JAVA_LONG, (long) b * steps) + steps;
            MemorySegment row = batchMask.asSlice(8 * b * total, 8 * total);
            row.asSlice(0, 8 * length).copyFrom(ones.asSlice(0, 8 * length));
            row.asSlice(8 * length).fill((byte) 0);
        }
        return OnnxTensor.createTensor(env, buffer(batchMask.asSlice(0, 8 * cells)).asLongBuffer(), new long[] {batch, total});
    }

    /** GroupQueryAttention takes a block of several tokens after a past for one row at a time (SlotRows#batchesBlocks). */
    @Override
    protected boolean batchesBlocks() {
        return !attentionMask;
    }

    @Override
    protected void closeRuntime() {
        arena.close();
    }

    /** session.run over rows {@code [first, first + batch)}, keys and values in place, logits into {@code logits}. */
    @Override
    protected void run(Row single, int first, int batch, int steps, MemorySegment ids, MemorySegment positions,
                       MemorySegment logits) {
        List<OnnxTensor> created = new ArrayList<>(3 + 2 * pastNames.length);
        try {
            Map<String, OnnxTensor> in = new HashMap<>(4 + pastNames.length * 2);
            Map<String, OnnxTensor> out = new HashMap<>(2 + presentNames.length * 2);
            long[] tokShape = {batch, steps};
            long tokBytes = 8L * batch * steps;
            in.put("input_ids", track(created, OnnxTensor.createTensor(env, buffer(ids.asSlice(0, tokBytes)).asLongBuffer(),
                    tokShape)));
            if (positionIds) {
                in.put("position_ids", track(created, OnnxTensor.createTensor(env,
                        buffer(positions.asSlice(0, tokBytes)).asLongBuffer(), tokShape)));
            }
            if (attentionMask) {
                in.put("attention_mask", track(created, mask(single, batch, steps, positions)));
            }
            long[] kvShape = {batch, shape.kvHeads(), width(), shape.headDim()};
            for (int s = 0; s < pastNames.length; s++) {
                MemorySegment rowsOfSlot = slotRows(s, first, batch);
                in.put(pastNames[s], track(created, OnnxTensor.createTensor(env, buffer(rowsOfSlot), kvShape, kvType)));
                out.put(presentNames[s], track(created, OnnxTensor.createTensor(env, buffer(rowsOfSlot), kvShape, kvType)));
            }
            long count = (long) batch * steps * shape.vocabSize();
            long[] logitsShape = {batch, steps, shape.vocabSize()};
            out.put("logits", track(created, halfLogits
                    // the first half of the float32 buffer receives the float16 logits, widened in place below
                    ? OnnxTensor.createTensor(env, buffer(logits.asSlice(0, 2 * count)), logitsShape, OnnxJavaType.FLOAT16)
                    : OnnxTensor.createTensor(env, buffer(logits.asSlice(0, 4 * count)).asFloatBuffer(), logitsShape)));
            try (OrtSession.Result ignored = session.run(in, out)) {
                // written in place
            }
            if (halfLogits) {
                HalfFloats.widenInPlace(logits, count);
            }
        } catch (OrtException e) {
            throw new EngineException("ONNX Runtime failed on a step of " + batch + " sequence(s) x " + steps + " tokens: "
                    + e.getMessage(), e);
        } finally {
            for (OnnxTensor t : created) {
                t.close();
            }
        }
    }

    private static ByteBuffer buffer(MemorySegment segment) {
        return segment.asByteBuffer().order(ByteOrder.nativeOrder());
    }

    private static OnnxTensor track(List<OnnxTensor> created, OnnxTensor t) {
        created.add(t);
        return t;
    }
}
