package dev.tandem.engine.onnxruntime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.tandem.engine.CausalLm;
import dev.tandem.engine.EngineException;
import dev.tandem.engine.Feed;
import dev.tandem.engine.GraphChecks;
import dev.tandem.engine.HalfFloats;
import dev.tandem.engine.KvBuffers;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelFiles;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.NativeLifetime;
import dev.tandem.engine.SlotRows;
import dev.tandem.onnx.OnnxFile;
import static dev.tandem.engine.GraphChecks.dim;
import static dev.tandem.engine.GraphChecks.require;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * The engine SPI on ONNX Runtime, for decoder-only graphs in the Hugging Face Optimum layout
 * ({@code input_ids}, {@code attention_mask}, optional {@code position_ids},
 * {@code past_key_values.{i}.key|value} in; {@code logits}, {@code present.{i}.key|value} out).
 * The Optimum variants users bring are served as they are (src/test/resources/models/optimum-tiny-*, built by
 * tools/models/optimum_fixture.py; OrtOptimumVariantsTest): no {@code position_ids} (the graph counts positions
 * itself), float16 weights with float16 past/present and float16 or float32 logits, and the merged decoder
 * ({@code decoder_model_merged.onnx}: its {@code use_cache_branch} is always fed true, the with-past branch also
 * serving the first step with an empty past).
 *
 * <p>Per step, nothing is copied between Java and the runtime: each cache owns native buffers that
 * ONNX Runtime reads the past from and writes the present into (pre-allocated, "pinned" outputs),
 * alternating between two buffers so that this step's present becomes the next step's past. The
 * logits are written into a native buffer too and handed out as a view. The only per-step work
 * outside {@code session.run} is wrapping those buffers as tensors (a few microseconds each).
 *
 * <p>Graphs marked {@code tandem.kv_layout=slots} (metadata) keep every cache as a row of one pool
 * ({@link SlotPool}) and run a batched step {@link #forward(List)} as one {@code session.run} whose
 * logits are bit for bit those of single forwards. On Optimum graphs the batched step is the
 * default loop of single forwards: their graph appends new keys at one shared past length, so a
 * padded batch of rows of different lengths has holes that change the last bits of the results,
 * and the padded batch tensor would need every sequence's cache copied into it at each step (a
 * sequence's cache lives in its own buffers; the batch needs them side by side at one stride).
 */
public final class OrtCausalLm implements CausalLm {
    private static final Logger LOG = Logger.getLogger(OrtCausalLm.class);
    private final NativeLifetime lifetime = new NativeLifetime("the ONNX Runtime model");

    private final OrtSession session;
    private final OrtEnvironment env;
    private final ModelShape shape;
    private final String[] pastNames;     // past_key_values.{i}.key, past_key_values.{i}.value, ... (slot order)
    private final String[] presentNames;  // present.{i}.key, present.{i}.value, ...
    private final OnnxJavaType kvType;
    /**
     * Whether the graph's logits are float16 (an fp16 Optimum export of a recent transformers, which no longer
     * upcasts them): they are written into the step's float32 logits buffer and widened there after the run.
     */
    private final boolean halfLogits;
    private final boolean hasAttentionMask;
    private final boolean hasPositionIds;
    private final boolean hasUseCacheBranch;
    private final KvLayout layout;
    /** The caches of a slots-layout or shared-buffer graph; null for Optimum graphs (caches in KvBuffers). */
    private final SlotPool slots;
    /** Read-only constants shared by every cache: 0..maxContext-1 and maxContext ones. */
    private final Arena constantsArena = Arena.ofShared();
    private final LongBuffer positions;
    private final LongBuffer ones;
    private final OnnxTensor useCacheBranch;
    /** Time spent inside session.run and in forward() as a whole, for measuring the per-step overhead. */
    private final java.util.concurrent.atomic.LongAdder runNanos = new java.util.concurrent.atomic.LongAdder();
    private final java.util.concurrent.atomic.LongAdder forwardNanos = new java.util.concurrent.atomic.LongAdder();
    private final java.util.concurrent.atomic.LongAdder steps = new java.util.concurrent.atomic.LongAdder();

    private OrtCausalLm(OrtEnvironment env, OrtSession session, ModelShape shape, String[] pastNames,
                        String[] presentNames, OnnxJavaType kvType, boolean halfLogits, Set<String> inputs,
                        KvLayout layout) throws OrtException {
        this.env = env;
        this.session = session;
        this.shape = shape;
        this.pastNames = pastNames;
        this.presentNames = presentNames;
        this.kvType = kvType;
        this.halfLogits = halfLogits;
        this.hasAttentionMask = inputs.contains("attention_mask");
        this.hasPositionIds = inputs.contains("position_ids");
        this.hasUseCacheBranch = inputs.contains("use_cache_branch");
        int max = shape.maxContext();
        this.positions = longs(constantsArena, max);
        this.ones = longs(constantsArena, max);
        for (int i = 0; i < max; i++) {
            positions.put(i, i);
            ones.put(i, 1L);
        }
        // Optimum's merged decoder: the with-past branch also serves the first step (zero-length past).
        this.useCacheBranch = hasUseCacheBranch ? OnnxTensor.createTensor(env, new boolean[] {true}) : null;
        this.layout = layout;
        this.slots = switch (layout) {
            case SLOTS -> new SlotPool(env, session, shape, pastNames, presentNames, kvType, SlotPool.DEFAULT_ROWS);
            case SHARED_BUFFER -> new SlotPool(env, session, shape, pastNames, presentNames, kvType, SlotPool.DEFAULT_ROWS,
                    true, hasPositionIds, halfLogits);
            case OPTIMUM -> null;
        };
    }

    /**
     * Opens {@code graph} and checks it against {@code expected} (read from the model's
     * config.json): layers, key/value heads and head size come from the graph's past inputs where
     * the graph fixes them, otherwise from {@code expected}.
     *
     * @throws IllegalArgumentException naming the file and what is wrong, for graphs this engine
     *     cannot serve
     */
    public static OrtCausalLm open(Path graph, ModelShape expected, OnnxRuntimeOptions options) {
        if (graph.getFileName().toString().endsWith(".xml")) {
            throw new IllegalArgumentException(graph + ": is an OpenVINO IR, which ONNX Runtime cannot read: serve it with"
                    + " engine=openvino, or point the model directory at an ONNX export");
        }
        ModelFiles.requireGraph(graph, "ONNX Runtime");
        OrtEnvironment env = OrtRuntime.environment(options);
        OrtSession session = null;
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.setOptimizationLevel(optLevel(options.optimizationLevel()));
            boolean pooled = options.globalThreadPool() && OrtRuntime.hasGlobalThreadPool();
            if (pooled) {
                so.disablePerSessionThreads();
            } else {
                so.setIntraOpNumThreads(options.intraOpThreads());
                so.addConfigEntry("session.intra_op.allow_spinning", options.spinning() ? "1" : "0");
                // spin inside a run (between its operators), not after it: the pool's threads block as soon as the
                // last concurrent run returns, so they take no core from the draft, sampling or HTTP in between
                so.addConfigEntry("session.force_spinning_stop", "1");
            }
            so.setInterOpNumThreads(1);
            so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
            addExecutionProvider(so, options, graph);
            session = env.createSession(graph.toString(), so);
            OrtCausalLm lm = inspect(env, session, graph, expected);
            LOG.infof("ONNX Runtime %s loaded %s: %s, KV %s%s%s, position_ids %s, %s", env.getVersion(), graph, lm.shape,
                    lm.kvType, lm.halfLogits ? ", float16 logits" : "",
                    lm.slots == null ? "" : " in a slot pool of width up to " + lm.slots.maxWidth()
                            + (lm.layout == KvLayout.SHARED_BUFFER ? " (GroupQueryAttention, past and present one buffer)" : ""),
                    lm.hasPositionIds ? "fed" : "absent (computed by the graph)",
                    pooled ? "shared intra-op pool" : options.intraOpThreads() + " intra-op thread(s) of its own");
            return lm;
        } catch (OrtException e) {
            closeQuietly(session);
            throw new IllegalArgumentException(graph + ": ONNX Runtime cannot load this graph: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(session);
            throw e;
        }
    }

    /**
     * Adds the configured execution provider. The ONNX Runtime build on Maven Central has only the
     * CPU provider; others need a provider-enabled native build, and asking for one without it
     * fails here with ONNX Runtime's message and what to do.
     */
    static void addExecutionProvider(OrtSession.SessionOptions so, OnnxRuntimeOptions options, Path graph) {
        String ep = options.executionProvider().toLowerCase(java.util.Locale.ROOT);
        try {
            switch (ep) {
                case "cpu" -> { }
                case "openvino" -> so.addOpenVINO(options.openvinoDevice());
                case "dnnl" -> so.addDnnl(true);
                default -> throw new IllegalArgumentException("unknown ONNX Runtime execution provider '" + ep
                        + "' (cpu, openvino, dnnl)");
            }
        } catch (OrtException | RuntimeException e) {
            if (e instanceof IllegalArgumentException iae) {
                throw iae;
            }
            throw new IllegalArgumentException(graph + ": ONNX Runtime cannot use the '" + ep + "' execution provider: "
                    + e.getMessage() + ". Available in this ONNX Runtime build: " + OrtEnvironment.getAvailableProviders()
                    + ". The build on Maven Central has only the CPU provider; for '" + ep + "' supply a provider-enabled"
                    + " native build and point -Donnxruntime.native.path at its directory (libonnxruntime.so,"
                    + " libonnxruntime4j_jni.so and libonnxruntime_providers_" + (ep.equals("dnnl") ? "dnnl" : "openvino")
                    + ".so), e.g. from org.bytedeco:onnxruntime:1.28.0-1.5.14, whose OpenVINO provider needs"
                    + " OpenVINO 2026.2.1 (libopenvino.so.2621) on the library path.", e);
        }
    }

    private static OrtCausalLm inspect(OrtEnvironment env, OrtSession session, Path graph, ModelShape expected)
            throws OrtException {
        Map<String, NodeInfo> inputs = session.getInputInfo();
        Map<String, NodeInfo> outputs = session.getOutputInfo();
        require(inputs.containsKey("input_ids"), graph, "has no input 'input_ids'");
        require(outputs.containsKey("logits"), graph, "has no output 'logits'");
        TensorInfo ids = (TensorInfo) inputs.get("input_ids").getInfo();
        require(ids.type == OnnxJavaType.INT64, graph, "input_ids must be int64, is " + ids.type);
        TensorInfo logits = (TensorInfo) outputs.get("logits").getInfo();
        require(logits.type == OnnxJavaType.FLOAT || logits.type == OnnxJavaType.FLOAT16, graph,
                "logits must be float32 or float16, are " + logits.type);
        boolean halfLogits = logits.type == OnnxJavaType.FLOAT16;

        int layers = 0;
        while (inputs.containsKey("past_key_values." + layers + ".key")) {
            layers++;
        }
        require(layers > 0, graph, "has no 'past_key_values.0.key' input: export it with past (text-generation-with-past)");
        boolean slotLayout = SLOTS.equals(session.getMetadata().getCustomMetadata().get(KV_LAYOUT));
        boolean sharedBuffer = !slotLayout && sharesPastAndPresent(graph, inputs, outputs);
        Set<String> known = new LinkedHashSet<>(slotLayout ? List.of("input_ids", "position_ids")
                : sharedBuffer ? List.of("input_ids", "attention_mask", "position_ids")
                : List.of("input_ids", "attention_mask", "position_ids", "use_cache_branch"));
        require(!slotLayout || inputs.containsKey("position_ids"), graph,
                "is marked " + KV_LAYOUT + "=" + SLOTS + " but has no input 'position_ids'");
        require(!slotLayout || !halfLogits, graph, "is marked " + KV_LAYOUT + "=" + SLOTS
                + " but has float16 logits: the slots layout needs float32 logits");
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

        TensorInfo pastInfo = (TensorInfo) inputs.get(past[0]).getInfo();
        long[] dims = pastInfo.getShape();
        require(dims.length == 4, graph, past[0] + " must be [batch, kv_heads, past, head_dim], has rank " + dims.length);
        int kvHeads = dim(dims[1], expected.kvHeads(), graph, "key/value heads (num_key_value_heads)");
        int headDim = dim(dims[3], expected.headDim(), graph, "head size (head_dim)");
        OnnxJavaType kvType = pastInfo.type;
        require(kvType == OnnxJavaType.FLOAT || kvType == OnnxJavaType.FLOAT16, graph,
                "past_key_values must be float32 or float16, are " + kvType);
        long[] logitDims = logits.getShape();
        int vocab = dim(logitDims[logitDims.length - 1], expected.vocabSize(), graph, "vocabulary size (vocab_size)");
        ModelShape shape = new ModelShape(vocab, expected.maxContext(), layers, kvHeads, headDim,
                kvType == OnnxJavaType.FLOAT ? 4 : 2);
        return new OrtCausalLm(env, session, shape, past, present, kvType, halfLogits, inputs.keySet(),
                slotLayout ? KvLayout.SLOTS : sharedBuffer ? KvLayout.SHARED_BUFFER : KvLayout.OPTIMUM);
    }

    /** How a graph's caches are kept. */
    enum KvLayout {
        /** Optimum's: the past fed at its exact length, the present written into a second buffer (KvBuffers). */
        OPTIMUM,
        /** {@code tandem.kv_layout=slots}: rows of a SlotPool, keys scattered at the fed position ids. */
        SLOTS,
        /**
         * GroupQueryAttention's shared past/present buffer (the ONNX Runtime GenAI layout): rows of a SlotPool of
         * the same memory for past and present, each row's keys written at its length from the attention mask.
         */
        SHARED_BUFFER
    }

    /**
     * Whether a graph keeps its caches in com.microsoft.GroupQueryAttention and can be fed one buffer as past and
     * present ({@code past_present_share_buffer}, as ONNX Runtime GenAI feeds the graphs its model builder writes):
     * an int64 {@code attention_mask} from which the graph computes each row's length, and no {@code use_cache_branch}.
     * The operator is found by reading the graph's nodes (ONNX Runtime's Java API does not list them). Caches and
     * logits float32 (the builder's int4 / int8 CPU graphs) or float16 (its {@code -p fp16}, on the CPU too).
     */
    private static boolean sharesPastAndPresent(Path graph, Map<String, NodeInfo> inputs, Map<String, NodeInfo> outputs) {
        if (!inputs.containsKey("attention_mask") || inputs.containsKey("use_cache_branch")
                || !(inputs.get("attention_mask").getInfo() instanceof TensorInfo mask) || mask.type != OnnxJavaType.INT64
                || !(inputs.get("past_key_values.0.key").getInfo() instanceof TensorInfo past)
                || (past.type != OnnxJavaType.FLOAT && past.type != OnnxJavaType.FLOAT16)) {
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            for (OnnxFile.Node n : OnnxFile.map(graph, arena).nodes()) {
                if (n.opType().equals("GroupQueryAttention")) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Model metadata key that names the KV layout of a graph, and its value for the slots layout. */
    static final String KV_LAYOUT = "tandem.kv_layout";
    static final String SLOTS = "slots";

    /**
     * Whether the caches are rows of a slot pool (a {@code tandem.kv_layout=slots} graph): a batched step is one
     * {@code session.run}, and a cache takes one row of {@link #slotRowBytes()} however long it is.
     */
    public boolean slotLayout() {
        return slots != null;
    }

    @Override
    public CacheStorage cacheStorage() {
        return slots != null ? CacheStorage.SLOT_POOL : CacheStorage.KV_BUFFERS;
    }

    /** Bytes reserved for one slot-pool row (every layer's keys and values at the pool's full width); 0 for Optimum graphs. */
    public long slotRowBytes() {
        return slots == null ? 0 : slots.rowBytes();
    }

    /** The slot pool's current width in positions (it follows the longest sequence, see SlotRows); 0 for Optimum graphs. */
    public int slotWidth() {
        return slots == null ? 0 : slots.width();
    }

    /** The most positions a slot-pool row can hold (the context rounded up to 64; reserved per row); 0 for Optimum graphs. */
    public int slotMaxWidth() {
        return slots == null ? 0 : slots.maxWidth();
    }

    /** {@code session.run} calls of the slot pool so far; 0 for Optimum graphs. */
    long slotCalls() {
        return slots == null ? 0 : slots.runtimeCalls();
    }

    /** Slot-pool rows in use (sequences open on a slots graph); 0 for Optimum graphs. */
    public int slotRowsInUse() {
        return slots == null ? 0 : slots.used();
    }



    @Override
    public ModelShape shape() {
        return shape;
    }

    @Override
    public KvCache newCache() {
        if (slots != null) {
            lifetime.enter();
            try {
                return slots.newRow();
            } finally {
                lifetime.exit();
            }
        }
        return new Cache();
    }

    /**
     * The batched step. On a slots graph: one {@code session.run} for every feed, each feed's logits bit for bit
     * those of its single forward (see {@link SlotPool}); otherwise single forwards, up to {@link #CONCURRENT_RUNS}
     * at a time (each on its own cache, so exactly what it gives alone).
     */
    @Override
    public List<Logits> forward(List<Feed> feeds) {
        if (slots == null) {
            return feeds.size() <= 1 ? CausalLm.super.forward(feeds) : forwardConcurrently(feeds);
        }
        for (Feed f : feeds) {
            if (!slots.owns(f.cache())) {
                throw new IllegalArgumentException("cache belongs to another model");
            }
        }
        lifetime.enter();
        try {
            long started = System.nanoTime();
            List<Logits> out = slots.forward(feeds);
            long took = System.nanoTime() - started;
            runNanos.add(took);
            forwardNanos.add(took);
            steps.increment();
            return out;
        } finally {
            lifetime.exit();
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

    private Logits forwardInside(KvCache kvCache, int[] tokens, int offset, int length) {
        if (slots != null) {
            if (!slots.owns(kvCache)) {
                throw new IllegalArgumentException("cache belongs to another model");
            }
            long started = System.nanoTime();
            Logits out = slots.forward((SlotRows.Row) kvCache, tokens, offset, length);
            long took = System.nanoTime() - started;
            runNanos.add(took);
            forwardNanos.add(took);
            steps.increment();
            return out;
        }
        if (!(kvCache instanceof Cache cache) || cache.owner() != this) {
            throw new IllegalArgumentException("cache belongs to another model");
        }
        KvBuffers kv = cache.buffers;
        int past = kv.length();
        int total = GraphChecks.checkStep(shape, past, tokens, offset, length);
        long started = System.nanoTime();
        kv.ensureOpen();
        kv.ensureCapacity(total);
        MemorySegment ids = kv.ids();
        for (int i = 0; i < length; i++) {
            ids.setAtIndex(ValueLayout.JAVA_LONG, i, tokens[offset + i]);
        }
        MemorySegment logitsSegment = kv.logits(length);
        FloatBuffer logits = buffer(logitsSegment).asFloatBuffer();
        List<OnnxTensor> created = new ArrayList<>(4 + 4 * pastNames.length);
        try {
            Map<String, OnnxTensor> in = new HashMap<>(8 + pastNames.length * 2);
            Map<String, OnnxTensor> out = new HashMap<>(4 + presentNames.length * 2);
            long[] tokShape = {1, length};
            in.put("input_ids", track(created, OnnxTensor.createTensor(env,
                    buffer(ids.asSlice(0, 8L * length)).asLongBuffer(), tokShape)));
            if (hasAttentionMask) {
                in.put("attention_mask", track(created, OnnxTensor.createTensor(env, ones.slice(0, total), new long[] {1, total})));
            }
            if (hasPositionIds) {
                in.put("position_ids", track(created, OnnxTensor.createTensor(env, positions.slice(past, length), tokShape)));
            }
            if (hasUseCacheBranch) {
                in.put("use_cache_branch", useCacheBranch);
            }
            long[] pastShape = {1, shape.kvHeads(), past, shape.headDim()};
            long[] presentShape = {1, shape.kvHeads(), total, shape.headDim()};
            for (int s = 0; s < pastNames.length; s++) {
                in.put(pastNames[s], track(created, OnnxTensor.createTensor(env, buffer(kv.past(s)), pastShape, kvType)));
                out.put(presentNames[s], track(created, OnnxTensor.createTensor(env, buffer(kv.present(s, total)),
                        presentShape, kvType)));
            }
            long[] logitsShape = {1, length, shape.vocabSize()};
            out.put("logits", track(created, halfLogits
                    // the first half of the float32 buffer receives the float16 logits, widened in place below
                    ? OnnxTensor.createTensor(env, buffer(logitsSegment.asSlice(0, logitsSegment.byteSize() / 2)),
                            logitsShape, OnnxJavaType.FLOAT16)
                    : OnnxTensor.createTensor(env, logits, logitsShape)));
            long runStart = System.nanoTime();
            try (OrtSession.Result ignored = session.run(in, out)) {
                // outputs were written into the cache's buffers
            }
            runNanos.add(System.nanoTime() - runStart);
            if (halfLogits) {
                HalfFloats.widenInPlace(logitsSegment, (long) length * shape.vocabSize());
            }
        } catch (OrtException e) {
            throw new EngineException("ONNX Runtime failed on a step of " + length + " tokens after " + past + ": " + e.getMessage(), e);
        } finally {
            for (OnnxTensor t : created) {
                t.close();
            }
        }
        kv.advance(length);
        forwardNanos.add(System.nanoTime() - started);
        steps.increment();
        return new Logits(logits.asReadOnlyBuffer(), length, shape.vocabSize());
    }

    /**
     * Concurrent {@code session.run} calls for an Optimum graph's batch: the runs share the intra-op pool, and
     * overlapping them fills what one run leaves idle (its serial operators, the Java side of a step); this is the
     * concurrency the server had when every request ran its own steps on its own thread (docs/benchmarks.md).
     */
    static final int CONCURRENT_RUNS = 4;
    private static final java.util.concurrent.ExecutorService RUNS = java.util.concurrent.Executors.newFixedThreadPool(
            CONCURRENT_RUNS - 1, r -> Thread.ofPlatform().name("tandem-ort-run").daemon().unstarted(r));

    private List<Logits> forwardConcurrently(List<Feed> feeds) {
        java.util.Set<KvCache> distinct = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Feed f : feeds) {  // validate all before running any, so a bad batch changes nothing
            if (!distinct.add(f.cache())) {
                throw new IllegalArgumentException("a cache is fed twice in one batch");
            }
            if (!(f.cache() instanceof Cache c) || c.owner() != this) {
                throw new IllegalArgumentException("cache belongs to another model");
            }
            c.buffers.ensureOpen();
            GraphChecks.checkStep(shape, f.cache().length(), f.tokens(), f.offset(), f.length());
        }
        Logits[] out = new Logits[feeds.size()];
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        Runnable worker = () -> {
            for (int i; (i = next.getAndIncrement()) < feeds.size(); ) {
                Feed f = feeds.get(i);
                out[i] = forward(f.cache(), f.tokens(), f.offset(), f.length());
            }
        };
        int helpers = Math.min(CONCURRENT_RUNS, feeds.size()) - 1;
        List<java.util.concurrent.Future<?>> running = new ArrayList<>(helpers);
        for (int h = 0; h < helpers; h++) {
            running.add(RUNS.submit(worker));
        }
        RuntimeException failure = null;
        try {
            worker.run();  // the calling thread takes its share
        } catch (RuntimeException e) {
            failure = e;
        }
        for (java.util.concurrent.Future<?> f : running) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (failure == null) {
                    failure = e.getCause() instanceof RuntimeException re ? re : new EngineException(e.getCause().getMessage(), e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure = new EngineException("interrupted while a batched step ran", e);
            }
        }
        if (failure != null) {
            throw failure;
        }
        return java.util.Arrays.asList(out);
    }

    private static ByteBuffer buffer(MemorySegment segment) {
        return segment.asByteBuffer().order(ByteOrder.nativeOrder());
    }

    private static OnnxTensor track(List<OnnxTensor> created, OnnxTensor t) {
        created.add(t);
        return t;
    }

    /** Nanoseconds spent in {@code session.run} and in {@code forward} in total since start (or the last reset). */
    public long[] timings() {
        return new long[] {runNanos.sum(), forwardNanos.sum()};
    }

    /** Forward passes run since start (every prefill, decode step and verification counts one). */
    public long steps() {
        return steps.sum();
    }

    public void resetTimings() {
        runNanos.reset();
        forwardNanos.reset();
    }

    /** Waits for forward passes in progress, then frees the session; later forward passes fail. Idempotent. */
    @Override
    public void close() {
        lifetime.close(() -> {
            if (useCacheBranch != null) {
                useCacheBranch.close();
            }
            if (slots != null) {
                slots.close();
            }
            closeQuietly(session);
            constantsArena.close();
        });
    }

    private static void closeQuietly(OrtSession s) {
        if (s != null) {
            try {
                s.close();
            } catch (OrtException e) {
                LOG.warn("closing an ONNX Runtime session failed", e);
            }
        }
    }

    private static LongBuffer longs(Arena arena, int n) {
        return arena.allocate(8L * n, 8).asByteBuffer().order(ByteOrder.nativeOrder()).asLongBuffer();
    }

    private static OrtSession.SessionOptions.OptLevel optLevel(String name) {
        return switch (name.toLowerCase()) {
            case "none", "disable" -> OrtSession.SessionOptions.OptLevel.NO_OPT;
            case "basic" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
            case "extended" -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
            case "all" -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
            default -> throw new IllegalArgumentException("unknown ONNX Runtime optimization level '" + name
                    + "' (none, basic, extended, all)");
        };
    }

    /** One sequence's KV cache: native buffers the runtime reads the past from and writes the present into. */
    private final class Cache implements KvCache {
        private final KvBuffers buffers = new KvBuffers(shape, pastNames.length);

        CausalLm owner() {
            return OrtCausalLm.this;
        }

        @Override
        public int length() {
            return buffers.length();
        }

        @Override
        public void truncate(int newLength) {
            buffers.truncate(newLength);
        }

        @Override
        public void close() {
            buffers.close();
        }
    }
}
