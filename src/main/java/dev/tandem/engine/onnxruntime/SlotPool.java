package dev.tandem.engine.onnxruntime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tandem.engine.EngineException;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.SlotRows;
import java.lang.foreign.MemorySegment;
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
 * </ul>
 */
final class SlotPool extends SlotRows {
    private final OrtEnvironment env;
    private final OrtSession session;
    private final String[] pastNames;
    private final String[] presentNames;
    private final OnnxJavaType kvType;

    SlotPool(OrtEnvironment env, OrtSession session, ModelShape shape, String[] pastNames, String[] presentNames,
             OnnxJavaType kvType, int capacity) {
        super(shape, pastNames.length, capacity);
        this.env = env;
        this.session = session;
        this.pastNames = pastNames;
        this.presentNames = presentNames;
        this.kvType = kvType;
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
            in.put("position_ids", track(created, OnnxTensor.createTensor(env,
                    buffer(positions.asSlice(0, tokBytes)).asLongBuffer(), tokShape)));
            long[] kvShape = {batch, shape.kvHeads(), width(), shape.headDim()};
            for (int s = 0; s < pastNames.length; s++) {
                MemorySegment rowsOfSlot = slotRows(s, first, batch);
                in.put(pastNames[s], track(created, OnnxTensor.createTensor(env, buffer(rowsOfSlot), kvShape, kvType)));
                out.put(presentNames[s], track(created, OnnxTensor.createTensor(env, buffer(rowsOfSlot), kvShape, kvType)));
            }
            long logitBytes = 4L * batch * steps * shape.vocabSize();
            out.put("logits", track(created, OnnxTensor.createTensor(env,
                    buffer(logits.asSlice(0, logitBytes)).asFloatBuffer(), new long[] {batch, steps, shape.vocabSize()})));
            try (OrtSession.Result ignored = session.run(in, out)) {
                // written in place
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
