package dev.tandem.engine.openvino;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.EngineException;
import dev.tandem.engine.Feed;
import dev.tandem.engine.GraphChecks;
import dev.tandem.engine.HalfFloats;
import dev.tandem.engine.KvBuffers;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.NativeLifetime;
import dev.tandem.engine.SlotRows;
import static dev.tandem.engine.GraphChecks.dim;
import static dev.tandem.engine.GraphChecks.require;
import dev.tandem.engine.openvino.OvApi.ElementType;
import dev.tandem.engine.openvino.OvApi.PortInfo;
import dev.tandem.onnx.OnnxFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * The engine SPI on OpenVINO (C API over FFM), for decoder-only graphs in the Hugging Face Optimum
 * layout ({@code input_ids}, {@code attention_mask}, optional {@code position_ids},
 * {@code past_key_values.{i}.key|value} in; {@code logits}, {@code present.{i}.key|value} out),
 * read directly from ONNX (or an IR converted from it without making it stateful).
 *
 * <p>Mirrors {@code OrtCausalLm}: each cache owns one infer request and native buffers in its own
 * {@link Arena}; per step, every input <em>and output</em> is set by name as a tensor over that
 * memory ({@code ov_tensor_create_from_host_ptr}), so OpenVINO reads the past from one buffer and
 * writes the present into the other, which then becomes the next step's past. Logits land in a
 * native buffer returned as a {@link Logits} view. Nothing is copied between Java and OpenVINO.
 *
 * <p>Stateful models (optimum-intel's default IR export: {@code input_ids}, {@code attention_mask},
 * {@code position_ids}, {@code beam_idx} in, {@code logits} out, the cache held as variable state
 * inside the infer request) are served too, in plain decoding only. Each cache owns its infer
 * request (the state lives in it) and the same native ids/logits buffers; a step feeds the new ids,
 * the attention mask over past and new tokens, their positions and {@code beam_idx = [0]}, and reads
 * the logits. Such a cache cannot be rolled back, because the OpenVINO C API has no variable-state
 * calls: {@code src/bindings/c/include/openvino/c/ov_infer_request.h} (checked in the 2024 line,
 * and {@code src/bindings/c/src/ov_infer_request.cpp} in the 2025 line) offers set/get tensor (by
 * name, port or index), infer, start_async, wait, wait_for, cancel, set_callback,
 * get_profiling_info and free, but nothing like C++'s {@code ov::InferRequest::query_state()} /
 * {@code reset_state()} or {@code ov::VariableState} ({@code reset}, {@code get_state},
 * {@code set_state}), and no header declares a variable-state type. So {@link KvCache#truncate} on a
 * stateful cache accepts only its current length (there is no reset call either, so not even 0),
 * {@link #supportsRollback()} is false, and the server refuses assisted requests on such a model.
 * A graph with neither past inputs nor {@code beam_idx} (an export without cache) is refused.
 *
 * <p>Graphs in the "slots" layout (ONNX metadata {@code tandem.kv_layout=slots}, notes/slots.md:
 * {@code input_ids} and {@code position_ids} [B, T], {@code past_key_values.*} and {@code present.*}
 * [B, kvHeads, W, headDim], no attention mask) keep every cache as a row of one pool ({@link OvSlotPool}, as
 * ONNX Runtime's SlotPool): a batched step {@link #forward(List)} is one infer call over the rows fed, the
 * present written in place into the past's memory, each feed's logits bit for bit those of its single
 * forward; rollback is a length change. The OpenVINO C API cannot read a model's metadata, so the layout
 * is read from the ONNX file itself ({@link OnnxFile#metadata}).
 */
public final class OpenVinoCausalLm implements CausalLm {
    private static final Logger LOG = Logger.getLogger(OpenVinoCausalLm.class);

    private final OvApi api;
    private final Path graph;
    private final MemorySegment compiledModel;
    private final ModelShape shape;
    private final Plan plan;
    /** Names as C strings and read-only constants shared by every cache: 0..maxContext-1, maxContext ones, true. */
    private final Arena constants = Arena.ofShared();
    private final MemorySegment inputIdsName;
    private final MemorySegment attentionMaskName;
    private final MemorySegment positionIdsName;
    private final MemorySegment useCacheBranchName;
    private final MemorySegment beamIdxName;
    private final MemorySegment logitsName;
    private final MemorySegment[] pastNames;
    private final MemorySegment[] presentNames;
    private final MemorySegment positions;
    private final MemorySegment ones;
    private final MemorySegment trueFlag;
    private final MemorySegment zeroBeam;
    private volatile boolean closed;
    private final NativeLifetime lifetime = new NativeLifetime("the OpenVINO model");

    /**
     * What {@link #plan} derived from a graph's inputs and outputs.
     *
     * @param kvType           element type code of the past/present tensors (f32 or f16); undefined
     *                         for a stateful model
     * @param pastNames        past_key_values.{i}.key, .value, ... in slot order (none when stateful)
     * @param presentNames     present.{i}.key, .value, ... in slot order (none when stateful)
     * @param stateful         the cache is variable state inside the infer request ({@code beam_idx}
     *                         input); the shape's cache geometry then comes from config.json alone
     * @param halfLogits       the logits are f16 (an fp16 Optimum export): written into the f32 logits buffer and
     *                         widened there after each step
     */
    record Plan(ModelShape shape, int kvType, List<String> pastNames, List<String> presentNames,
                boolean hasAttentionMask, boolean hasPositionIds, boolean hasUseCacheBranch, boolean stateful,
                boolean slots, boolean halfLogits) {
    }

    /** Model metadata key that names the KV layout of a graph, and its value for the slots layout (as OrtCausalLm). */
    static final String KV_LAYOUT = "tandem.kv_layout";
    static final String SLOTS = "slots";

    /**
     * Whether present.* is bound to the memory past_key_values.* is read from on slots graphs (the default); false
     * writes it into a scratch buffer copied back after the call (so that a test can compare the two).
     */
    private final boolean slotsInPlace;
    /** The caches of a slots graph; null for other layouts. */
    private final OvSlotPool pool;

    private OpenVinoCausalLm(OvApi api, Path graph, MemorySegment compiledModel, Plan plan, boolean slotsInPlace) {
        this.api = api;
        this.slotsInPlace = slotsInPlace;
        this.graph = graph;
        this.compiledModel = compiledModel;
        this.plan = plan;
        this.shape = plan.shape();
        inputIdsName = constants.allocateFrom("input_ids");
        attentionMaskName = constants.allocateFrom("attention_mask");
        positionIdsName = constants.allocateFrom("position_ids");
        useCacheBranchName = constants.allocateFrom("use_cache_branch");
        beamIdxName = constants.allocateFrom("beam_idx");
        logitsName = constants.allocateFrom("logits");
        pastNames = plan.pastNames().stream().map(constants::allocateFrom).toArray(MemorySegment[]::new);
        presentNames = plan.presentNames().stream().map(constants::allocateFrom).toArray(MemorySegment[]::new);
        int max = shape.maxContext();
        positions = constants.allocate(JAVA_LONG, max);
        ones = constants.allocate(JAVA_LONG, max);
        for (int i = 0; i < max; i++) {
            positions.setAtIndex(JAVA_LONG, i, i);
            ones.setAtIndex(JAVA_LONG, i, 1L);
        }
        trueFlag = constants.allocate(JAVA_BYTE, 8);  // ov::element::boolean is one byte
        trueFlag.set(JAVA_BYTE, 0, (byte) 1);
        zeroBeam = constants.allocate(JAVA_INT);  // beam_idx = [0]: batch 1, the only beam keeps its own state
        pool = plan.slots() ? new OvSlotPool(api, compiledModel, shape, new OvSlotPool.Names(inputIdsName, positionIdsName,
                logitsName, pastNames, presentNames), plan.kvType(), slotsInPlace, OvSlotPool.DEFAULT_ROWS) : null;
    }

    /**
     * Reads {@code graph}, checks it against {@code expected} (from the model's config.json) like
     * {@code OrtCausalLm.open}, and compiles it for {@code options.device()}.
     *
     * @throws IllegalArgumentException naming the file, for graphs OpenVINO cannot read or this
     *     engine cannot serve
     * @throws OpenVinoException naming the file and device, when compilation fails
     */
    public static OpenVinoCausalLm open(OpenVinoRuntime rt, Path graph, ModelShape expected, OpenVinoOptions options) {
        return open(rt, graph, expected, options, true);
    }

    /** As {@link #open(OpenVinoRuntime, Path, ModelShape, OpenVinoOptions)}; {@code slotsInPlace} false: present into a scratch buffer. */
    static OpenVinoCausalLm open(OpenVinoRuntime rt, Path graph, ModelShape expected, OpenVinoOptions options,
                                 boolean slotsInPlace) {
        OvApi api = rt.api();
        // read before OpenVINO sees the file, whose C API cannot report metadata; an IR carries none of ours. A path that
        // is not a readable file is left to OpenVINO to refuse, with its own message (its reader may also resolve paths
        // this process cannot, as the test stub library does)
        String kvLayout = graph.getFileName().toString().endsWith(".onnx") && java.nio.file.Files.isRegularFile(graph)
                ? OnnxFile.metadata(graph).getOrDefault(KV_LAYOUT, "") : "";
        MemorySegment core = rt.core();
        MemorySegment model;
        try {
            model = api.readModel(core, graph.toString());
        } catch (OpenVinoException e) {
            throw new IllegalArgumentException(graph + ": OpenVINO cannot read this graph: " + e.getMessage(), e);
        }
        MemorySegment compiled = null;
        try {
            Map<String, PortInfo> inputs = ports(api, model, false);
            Map<String, PortInfo> outputs = ports(api, model, true);
            Plan plan = plan(graph, inputs, outputs, expected, kvLayout);
            var properties = options.compileProperties(rt.propertyKeys());
            try {
                compiled = api.compileModel(core, model, options.device(), properties);
            } catch (OpenVinoException e) {
                throw new OpenVinoException(graph + ": OpenVINO cannot compile this graph for " + options.device()
                        + " with " + properties + ": " + e.getMessage(), e);
            }
            OpenVinoCausalLm lm = new OpenVinoCausalLm(api, graph, compiled, plan, slotsInPlace);
            LOG.infof("OpenVINO %s compiled %s for %s (%s): %s, KV %s, position_ids %s", rt.version(), graph,
                    options.device(), options.performanceHint(), plan.shape(), lm.kvDescription(),
                    plan.hasPositionIds() ? "fed" : "absent (computed by the graph)");
            if (plan.stateful()) {
                LOG.warnf("%s is a stateful model (beam_idx): served with plain decoding only, because its KV cache lives"
                        + " in the infer request and the OpenVINO C API cannot truncate it", graph);
            }
            return lm;
        } catch (RuntimeException e) {
            api.compiledModelFree(compiled);
            throw e;
        } finally {
            api.modelFree(model);  // the compiled model does not need the source model
        }
    }

    private static Map<String, PortInfo> ports(OvApi api, MemorySegment model, boolean outputs) {
        long n = outputs ? api.modelOutputsSize(model) : api.modelInputsSize(model);
        Map<String, PortInfo> out = new LinkedHashMap<>();
        for (long i = 0; i < n; i++) {
            PortInfo p = api.port(model, i, outputs);
            out.put(p.name(), p);
        }
        return out;
    }

    /**
     * Derives the cache geometry from a graph's ports and checks what the engine will feed. Pure
     * (no runtime needed): {@code inputs}/{@code outputs} are what {@code ov_port_*} reported.
     *
     * @throws IllegalArgumentException naming {@code graph} and what is wrong
     */
    static Plan plan(Path graph, Map<String, PortInfo> inputs, Map<String, PortInfo> outputs, ModelShape expected) {
        return plan(graph, inputs, outputs, expected, "");
    }

    /** As {@link #plan(Path, Map, Map, ModelShape)} for a graph whose metadata names {@code kvLayout} ("" for none). */
    static Plan plan(Path graph, Map<String, PortInfo> inputs, Map<String, PortInfo> outputs, ModelShape expected,
                     String kvLayout) {
        boolean slots = SLOTS.equals(kvLayout);
        require(kvLayout.isEmpty() || slots, graph, "has " + KV_LAYOUT + "=" + kvLayout + ", a KV layout this engine does"
                + " not know (it serves the Optimum layout and " + KV_LAYOUT + "=" + SLOTS + ")");
        require(inputs.containsKey("input_ids"), graph, "has no input 'input_ids' (inputs: " + inputs.keySet() + ")");
        require(outputs.containsKey("logits"), graph, "has no output 'logits' (outputs: " + outputs.keySet() + ")");
        requireType(inputs.get("input_ids"), ElementType.I64, graph);
        int logitsType = outputs.get("logits").elementType();
        require(logitsType == ElementType.F32.code || logitsType == ElementType.F16.code && !slots, graph, slots
                ? "is marked " + KV_LAYOUT + "=" + SLOTS + " but its logits are " + ElementType.nameOf(logitsType)
                        + ": the slots layout needs f32 logits"
                : "logits must be f32 or f16, are " + ElementType.nameOf(logitsType));
        boolean halfLogits = logitsType == ElementType.F16.code;
        if (inputs.containsKey("attention_mask")) {
            requireType(inputs.get("attention_mask"), ElementType.I64, graph);
        }
        if (inputs.containsKey("position_ids")) {
            requireType(inputs.get("position_ids"), ElementType.I64, graph);
        }
        if (inputs.containsKey("use_cache_branch")) {
            requireType(inputs.get("use_cache_branch"), ElementType.BOOLEAN, graph);
        }
        int layers = 0;
        while (inputs.containsKey("past_key_values." + layers + ".key")) {
            layers++;
        }
        boolean stateful = inputs.containsKey("beam_idx");
        if (stateful) {
            require(layers == 0, graph, "has both a beam_idx input (a stateful model) and past_key_values inputs");
            requireType(inputs.get("beam_idx"), ElementType.I32, graph);
        } else {
            require(layers > 0, graph, "has neither past_key_values inputs nor a beam_idx input (inputs: " + inputs.keySet()
                    + "): an export without a KV cache, or a stateful model without beam_idx, neither of which this"
                    + " engine serves. Export with the cache: optimum-cli export openvino (stateful, plain decoding only),"
                    + " optimum-cli export openvino --disable-stateful, or the Optimum ONNX export"
                    + " (--task text-generation-with-past)");
        }
        Set<String> known = new LinkedHashSet<>(slots ? List.of("input_ids", "position_ids")
                : List.of("input_ids", "attention_mask", "position_ids", "use_cache_branch"));
        require(!slots || inputs.containsKey("position_ids"), graph,
                "is marked " + KV_LAYOUT + "=" + SLOTS + " but has no input 'position_ids'");
        require(!(slots && stateful), graph, "is marked " + KV_LAYOUT + "=" + SLOTS + " but is a stateful model (beam_idx)");
        if (stateful) {
            known.add("beam_idx");
        }
        String[] past = new String[2 * layers];
        String[] present = new String[2 * layers];
        for (int l = 0; l < layers; l++) {
            for (int kv = 0; kv < 2; kv++) {
                String suffix = kv == 0 ? "key" : "value";
                past[2 * l + kv] = "past_key_values." + l + "." + suffix;
                present[2 * l + kv] = "present." + l + "." + suffix;
                require(inputs.containsKey(past[2 * l + kv]), graph, "has no input '" + past[2 * l + kv] + "'");
                require(outputs.containsKey(present[2 * l + kv]), graph, "has no output '" + present[2 * l + kv] + "'");
                known.add(past[2 * l + kv]);
            }
        }
        for (String name : inputs.keySet()) {
            require(known.contains(name), graph, "has an input this engine does not know how to feed: '" + name + "'");
        }
        long[] logitDims = outputs.get("logits").dims();
        long graphVocab = logitDims == null || logitDims.length == 0 ? -1 : logitDims[logitDims.length - 1];
        int vocab = dim(graphVocab, expected.vocabSize(), graph, "vocabulary size (vocab_size)");
        if (stateful) {  // the cache is inside the plugin: its geometry is config.json's, unchecked
            ModelShape shape = new ModelShape(vocab, expected.maxContext(), expected.layers(), expected.kvHeads(),
                    expected.headDim(), expected.kvBytesPerElement());
            return new Plan(shape, ElementType.UNDEFINED.code, List.of(), List.of(), inputs.containsKey("attention_mask"),
                    inputs.containsKey("position_ids"), inputs.containsKey("use_cache_branch"), true, false, halfLogits);
        }
        require(layers == expected.layers(), graph,
                "has " + layers + " layers of past_key_values but config.json says num_hidden_layers=" + expected.layers());

        PortInfo first = inputs.get(past[0]);
        long[] dims = first.dims();
        require(dims != null && dims.length == 4, graph, past[0] + " must be [batch, kv_heads, past, head_dim], is "
                + first.describe());
        int kvHeads = dim(dims[1], expected.kvHeads(), graph, "key/value heads (num_key_value_heads)");
        int headDim = dim(dims[3], expected.headDim(), graph, "head size (head_dim)");
        int kvType = first.elementType();
        require(kvType == ElementType.F32.code || kvType == ElementType.F16.code, graph,
                "past_key_values must be f32 or f16, are " + ElementType.nameOf(kvType));
        for (String name : past) {
            require(inputs.get(name).elementType() == kvType, graph, name + " is " + inputs.get(name).describe()
                    + " but " + past[0] + " is " + ElementType.nameOf(kvType));
        }
        for (String name : present) {
            require(outputs.get(name).elementType() == kvType, graph, name + " is " + outputs.get(name).describe()
                    + " but the past tensors are " + ElementType.nameOf(kvType));
        }
        ModelShape shape = new ModelShape(vocab, expected.maxContext(), layers, kvHeads, headDim,
                ElementType.of(kvType).orElseThrow().bytes);
        return new Plan(shape, kvType, List.of(past), List.of(present), inputs.containsKey("attention_mask"),
                inputs.containsKey("position_ids"), inputs.containsKey("use_cache_branch"), false, slots, halfLogits);
    }

    private static void requireType(PortInfo port, ElementType type, Path graph) {
        require(port.elementType() == type.code, graph, port.name() + " must be " + type.name().toLowerCase()
                + ", is " + ElementType.nameOf(port.elementType()));
    }



    @Override
    public ModelShape shape() {
        return shape;
    }

    /** False for a stateful model: its cache is variable state in the infer request, which the C API cannot truncate. */
    @Override
    public boolean supportsRollback() {
        return !plan.stateful();
    }

    /** Whether this is a slots-layout graph (caches are rows of an {@link OvSlotPool}). */
    public boolean slotLayout() {
        return plan.slots();
    }

    @Override
    public CacheStorage cacheStorage() {
        return plan.slots() ? CacheStorage.SLOT_POOL : CausalLm.super.cacheStorage();
    }

    /** Bytes reserved for one slot-pool row (every layer's keys and values at the pool's full width); 0 for other layouts. */
    public long slotRowBytes() {
        return pool == null ? 0 : pool.rowBytes();
    }

    /** The slot pool's current width in positions (it follows the longest sequence, see SlotRows); 0 for other layouts. */
    public int slotWidth() {
        return pool == null ? 0 : pool.width();
    }

    /** Infer calls on the slot pool so far (a batched step is one); 0 for other layouts. For tests. */
    long slotInferCalls() {
        return pool == null ? 0 : pool.inferCalls();
    }

    /** Slot-pool rows in use (sequences open on a slots graph); 0 for other layouts. */
    int slotRowsInUse() {
        return pool == null ? 0 : pool.used();
    }

    @Override
    public KvCache newCache() {
        lifetime.enter();  // an infer request is created from the compiled model: not while it is being freed
        try {
            ensureOpen();
            return pool != null ? pool.newRow() : new Cache();
        } finally {
            lifetime.exit();
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("OpenVINO model is closed");
        }
    }

    @Override
    public Logits forward(KvCache kvCache, int[] tokens, int offset, int length) {
        lifetime.enter();  // the session stays alive until this pass is out of it
        try {
            return forwardInside(kvCache, tokens, offset, length);
        } finally {
            lifetime.exit();
        }
    }

    /**
     * The batched step. On a slots graph: one infer call for every feed (two when prompt chunks longer than
     * {@link SlotRows#LONG_FEED} tokens come with shorter feeds), each feed's logits bit for bit those of its single forward;
     * otherwise the default loop of single forwards.
     */
    @Override
    public List<Logits> forward(List<Feed> feeds) {
        if (pool == null) {
            return CausalLm.super.forward(feeds);
        }
        for (Feed f : feeds) {
            if (!pool.owns(f.cache())) {
                throw new IllegalArgumentException("cache belongs to another model");
            }
        }
        lifetime.enter();
        try {
            return pool.forward(feeds);
        } finally {
            lifetime.exit();
        }
    }

    private Logits forwardInside(KvCache kvCache, int[] tokens, int offset, int length) {
        if (pool != null) {
            if (!pool.owns(kvCache)) {
                throw new IllegalArgumentException("cache belongs to another model");
            }
            return pool.forward((OvSlotPool.Row) kvCache, tokens, offset, length);
        }
        if (!(kvCache instanceof Cache cache) || cache.owner() != this) {
            throw new IllegalArgumentException("cache belongs to another model");
        }
        KvBuffers buffers = cache.buffers;
        if (cache.broken != null) {
            throw new IllegalStateException("this KV cache of stateful model " + graph + " is unusable: a step failed"
                    + " (" + cache.broken + "), so the state inside its infer request is unknown");
        }
        int past = buffers.length();
        int total = GraphChecks.checkStep(shape, past, tokens, offset, length);
        buffers.ensureOpen();
        buffers.ensureCapacity(total);
        MemorySegment ids = buffers.ids();
        for (int i = 0; i < length; i++) {
            ids.setAtIndex(JAVA_LONG, i, tokens[offset + i]);
        }
        MemorySegment logits = buffers.logits(length);
        MemorySegment req = cache.request;
        int i64 = ElementType.I64.code;
        int kv = plan.kvType();
        try (Arena step = Arena.ofConfined()) {
            api.setHostTensor(step, req, inputIdsName, i64, ids, 1, length);
            if (plan.hasAttentionMask()) {
                api.setHostTensor(step, req, attentionMaskName, i64, ones, 1, total);
            }
            if (plan.hasPositionIds()) {
                api.setHostTensor(step, req, positionIdsName, i64, positions.asSlice(8L * past), 1, length);
            }
            if (plan.hasUseCacheBranch()) {  // Optimum's merged decoder: the with-past branch also serves prefill
                api.setHostTensor(step, req, useCacheBranchName, ElementType.BOOLEAN.code, trueFlag, 1);
            }
            if (plan.stateful()) {
                api.setHostTensor(step, req, beamIdxName, ElementType.I32.code, zeroBeam, 1);
            }
            for (int s = 0; s < pastNames.length; s++) {  // none for a stateful model: the request holds the cache
                // At prefill (past == 0) the past tensors are [1, kvHeads, 0, headDim]: empty, but typed and shaped.
                api.setHostTensor(step, req, pastNames[s], kv, buffers.past(s), 1, shape.kvHeads(), past, shape.headDim());
                api.setHostTensor(step, req, presentNames[s], kv, buffers.present(s, total), 1, shape.kvHeads(), total,
                        shape.headDim());
            }
            // f16 logits go into the first half of the f32 buffer, widened in place below
            api.setHostTensor(step, req, logitsName, plan.halfLogits() ? ElementType.F16.code : ElementType.F32.code,
                    logits, 1, length, shape.vocabSize());
            api.infer(req);
        } catch (OpenVinoException e) {
            if (plan.stateful()) {  // the request's state may or may not hold this step's tokens
                cache.broken = e.getMessage();
            }
            throw new EngineException("OpenVINO failed on a step of " + length + " tokens after " + past + ": " + e.getMessage(), e);
        }
        buffers.advance(length);
        if (plan.halfLogits()) {
            HalfFloats.widenInPlace(logits, (long) length * shape.vocabSize());
        }
        var floats = logits.asByteBuffer().order(ByteOrder.nativeOrder()).asFloatBuffer();
        return new Logits(floats.asReadOnlyBuffer(), length, shape.vocabSize());
    }

    /**
     * Waits for inferences in progress, then frees the compiled model and the shared constants; later
     * forward passes fail. Caches should be closed before. Idempotent.
     */
    @Override
    public void close() {
        lifetime.close(() -> {
            closed = true;
            if (pool != null) {
                pool.close();
            }
            api.compiledModelFree(compiledModel);
            constants.close();
        });
    }

    @Override
    public String toString() {
        return "OpenVinoCausalLm[" + shape + ", KV " + kvDescription() + "]";
    }

    private String kvDescription() {
        return plan.stateful() ? "inside the infer request (stateful)" : ElementType.nameOf(plan.kvType())
                + (plan.slots() ? " in a slot pool of width up to " + pool.maxWidth() + " (" + (slotsInPlace ? "in place"
                : "present into a scratch buffer") + ")" : "");
    }

    /**
     * One sequence: an infer request plus the native buffers its past is read from and its present
     * written into; for a stateful model the request itself holds the cache, and the buffers (with
     * no KV slots) only the step's ids and logits.
     */
    private final class Cache implements KvCache {
        private final KvBuffers buffers = new KvBuffers(shape, pastNames.length);
        private final MemorySegment request;
        /** Stateful only: why a step failed, after which the request's state is unknown. */
        private String broken;

        Cache() {
            try {
                request = api.createInferRequest(compiledModel);
            } catch (RuntimeException e) {
                buffers.close();
                throw e;
            }
        }

        CausalLm owner() {
            return OpenVinoCausalLm.this;
        }

        @Override
        public int length() {
            return buffers.length();
        }

        @Override
        public void truncate(int newLength) {
            buffers.ensureOpen();
            if (plan.stateful() && newLength >= 0 && newLength < buffers.length()) {
                throw new UnsupportedOperationException("cannot truncate the KV cache of " + graph + " from "
                        + buffers.length() + " to " + newLength + " tokens: it is a stateful model, whose cache lives in"
                        + " the infer request's variable state, and the OpenVINO C API has no call to trim or reset"
                        + " variable state. Stateful models are served with plain decoding only; for assisted decoding"
                        + " export the model without state (optimum-cli export openvino --disable-stateful) or as ONNX");
            }
            buffers.truncate(newLength);  // stateful: a no-op at the current length, refuses lengths outside [0, length]
        }

        /** Frees the infer request (which references this cache's memory), then the memory. Idempotent. */
        @Override
        public void close() {
            if (!buffers.closed()) {
                api.inferRequestFree(request);
                buffers.close();
            }
        }
    }
}
