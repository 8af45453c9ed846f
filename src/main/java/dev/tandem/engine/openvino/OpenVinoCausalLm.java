package dev.tandem.engine.openvino;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.EngineException;
import dev.tandem.engine.GraphChecks;
import dev.tandem.engine.KvBuffers;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import static dev.tandem.engine.GraphChecks.dim;
import static dev.tandem.engine.GraphChecks.require;
import dev.tandem.engine.openvino.OvApi.ElementType;
import dev.tandem.engine.openvino.OvApi.PortInfo;
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
 * <p>Stateful models (optimum-intel's default IR export: a {@code beam_idx} input, no past inputs,
 * the cache hidden in the plugin) are refused: assisted decoding rolls caches back and needs the
 * past as explicit tensors.
 */
public final class OpenVinoCausalLm implements CausalLm {
    private static final Logger LOG = Logger.getLogger(OpenVinoCausalLm.class);

    private final OvApi api;
    private final MemorySegment compiledModel;
    private final ModelShape shape;
    private final Plan plan;
    /** Names as C strings and read-only constants shared by every cache: 0..maxContext-1, maxContext ones, true. */
    private final Arena constants = Arena.ofShared();
    private final MemorySegment inputIdsName;
    private final MemorySegment attentionMaskName;
    private final MemorySegment positionIdsName;
    private final MemorySegment useCacheBranchName;
    private final MemorySegment logitsName;
    private final MemorySegment[] pastNames;
    private final MemorySegment[] presentNames;
    private final MemorySegment positions;
    private final MemorySegment ones;
    private final MemorySegment trueFlag;
    private boolean closed;

    /**
     * What {@link #plan} derived from a graph's inputs and outputs.
     *
     * @param kvType           element type code of the past/present tensors (f32 or f16)
     * @param pastNames        past_key_values.{i}.key, .value, ... in slot order
     * @param presentNames     present.{i}.key, .value, ... in slot order
     */
    record Plan(ModelShape shape, int kvType, List<String> pastNames, List<String> presentNames,
                boolean hasAttentionMask, boolean hasPositionIds, boolean hasUseCacheBranch) {
    }

    private OpenVinoCausalLm(OvApi api, MemorySegment compiledModel, Plan plan) {
        this.api = api;
        this.compiledModel = compiledModel;
        this.plan = plan;
        this.shape = plan.shape();
        inputIdsName = constants.allocateFrom("input_ids");
        attentionMaskName = constants.allocateFrom("attention_mask");
        positionIdsName = constants.allocateFrom("position_ids");
        useCacheBranchName = constants.allocateFrom("use_cache_branch");
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
        OvApi api = rt.api();
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
            Plan plan = plan(graph, inputs, outputs, expected);
            var properties = options.compileProperties(rt.propertyKeys());
            try {
                compiled = api.compileModel(core, model, options.device(), properties);
            } catch (OpenVinoException e) {
                throw new OpenVinoException(graph + ": OpenVINO cannot compile this graph for " + options.device()
                        + " with " + properties + ": " + e.getMessage(), e);
            }
            OpenVinoCausalLm lm = new OpenVinoCausalLm(api, compiled, plan);
            LOG.infof("OpenVINO %s compiled %s for %s (%s): %s, KV %s, position_ids %s", rt.version(), graph,
                    options.device(), options.performanceHint(), plan.shape(), ElementType.nameOf(plan.kvType()),
                    plan.hasPositionIds() ? "fed" : "absent (computed by the graph)");
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
        if (inputs.containsKey("beam_idx") || (inputs.containsKey("input_ids") && !inputs.containsKey("past_key_values.0.key"))) {
            throw new IllegalArgumentException(graph + ": is a stateful model (inputs " + inputs.keySet() + ": the KV cache"
                    + " is hidden inside OpenVINO). Assisted decoding needs explicit past tensors: use the Optimum ONNX"
                    + " export (text-generation-with-past), or convert to IR with stateful=False"
                    + " (optimum-cli export openvino --disable-stateful)");
        }
        require(inputs.containsKey("input_ids"), graph, "has no input 'input_ids' (inputs: " + inputs.keySet() + ")");
        require(outputs.containsKey("logits"), graph, "has no output 'logits' (outputs: " + outputs.keySet() + ")");
        requireType(inputs.get("input_ids"), ElementType.I64, graph);
        requireType(outputs.get("logits"), ElementType.F32, graph);
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
        Set<String> known = new LinkedHashSet<>(List.of("input_ids", "attention_mask", "position_ids", "use_cache_branch"));
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
        long[] logitDims = outputs.get("logits").dims();
        long graphVocab = logitDims == null || logitDims.length == 0 ? -1 : logitDims[logitDims.length - 1];
        int vocab = dim(graphVocab, expected.vocabSize(), graph, "vocabulary size (vocab_size)");
        ModelShape shape = new ModelShape(vocab, expected.maxContext(), layers, kvHeads, headDim,
                ElementType.of(kvType).orElseThrow().bytes);
        return new Plan(shape, kvType, List.of(past), List.of(present), inputs.containsKey("attention_mask"),
                inputs.containsKey("position_ids"), inputs.containsKey("use_cache_branch"));
    }

    private static void requireType(PortInfo port, ElementType type, Path graph) {
        require(port.elementType() == type.code, graph, port.name() + " must be " + type.name().toLowerCase()
                + ", is " + ElementType.nameOf(port.elementType()));
    }



    @Override
    public ModelShape shape() {
        return shape;
    }

    @Override
    public KvCache newCache() {
        ensureOpen();
        return new Cache();
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("OpenVINO model is closed");
        }
    }

    @Override
    public Logits forward(KvCache kvCache, int[] tokens, int offset, int length) {
        if (!(kvCache instanceof Cache cache) || cache.owner() != this) {
            throw new IllegalArgumentException("cache belongs to another model");
        }
        KvBuffers buffers = cache.buffers;
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
            for (int s = 0; s < pastNames.length; s++) {
                // At prefill (past == 0) the past tensors are [1, kvHeads, 0, headDim]: empty, but typed and shaped.
                api.setHostTensor(step, req, pastNames[s], kv, buffers.past(s), 1, shape.kvHeads(), past, shape.headDim());
                api.setHostTensor(step, req, presentNames[s], kv, buffers.present(s, total), 1, shape.kvHeads(), total,
                        shape.headDim());
            }
            api.setHostTensor(step, req, logitsName, ElementType.F32.code, logits, 1, length, shape.vocabSize());
            api.infer(req);
        } catch (OpenVinoException e) {
            throw new EngineException("OpenVINO failed on a step of " + length + " tokens after " + past + ": " + e.getMessage(), e);
        }
        buffers.advance(length);
        var floats = logits.asByteBuffer().order(ByteOrder.nativeOrder()).asFloatBuffer();
        return new Logits(floats.asReadOnlyBuffer(), length, shape.vocabSize());
    }

    /** Frees the compiled model and the shared constants. Caches must be closed before. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            api.compiledModelFree(compiledModel);
            constants.close();
        }
    }

    @Override
    public String toString() {
        return "OpenVinoCausalLm[" + shape + ", KV " + ElementType.nameOf(plan.kvType()) + "]";
    }

    /** One sequence: an infer request plus the native buffers its past is read from and its present written into. */
    private final class Cache implements KvCache {
        private final KvBuffers buffers = new KvBuffers(shape, pastNames.length);
        private final MemorySegment request;

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
            buffers.truncate(newLength);
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
