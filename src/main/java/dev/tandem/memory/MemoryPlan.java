package dev.tandem.memory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.Llama2cHeader;
import dev.tandem.engine.ModelShape;
import dev.tandem.model.ModelDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What a model needs in memory, computed from the model itself: parameters and weight bytes from the
 * graph's initializers ({@link WeightInventory}), the KV cache from the model's shape (the engine's,
 * read from the graph, when loaded; config.json's otherwise), and how many full-context sequences fit a
 * memory budget. Served as {@code memory} in {@code GET /v1/models/{id}} and printed by
 * {@code tools/plan.sh}.
 *
 * @param weights     parameters and weight bytes
 * @param kvCache     KV-cache bytes per token, per full context, and as the engine really allocates them
 * @param budget      the budget and the sequences that fit it
 * @param unavailable figures that could not be computed, and why
 * @param notes       what the figures rest on
 */
public record MemoryPlan(Weights weights, KvCache kvCache, Budget budget, List<String> unavailable, List<String> notes) {

    /** How parameters are counted (also in the README). */
    public static final String COUNTING_RULE = "graph initializers of weight dtypes (float, 8/4-bit integers) with more"
            + " than one element, each counted once in its stored precision; quantisation scales and zero points are"
            + " overhead, a tied copy of the token embedding (the output layer) is not counted, scalars and index"
            + " tensors are constants";

    /**
     * @param parameters               the model's parameters (see {@link #COUNTING_RULE}); null when the graph cannot be read
     * @param parametersFromConfig     the same count from config.json's architecture (Llama/Mistral), a cross-check; null for others
     * @param parametersByDtype        parameters per stored dtype
     * @param parameterBytes           the parameters' bytes as stored
     * @param quantizationOverheadBytes scales and zero points as stored
     * @param tiedCopyBytes            the output layer's copy of the tied embedding, as stored
     * @param constantBytes            scalars, shapes and other constants
     * @param initializerBytes         everything the graph's initializers hold (the sum of the above but Constant nodes)
     * @param graphFileBytes           size of the graph file (plus openvino_model.bin for an IR, or its external data files)
     * @param byPrecision              the parameters' bytes in each precision (parameters alone, no scales)
     */
    public record Weights(Long parameters, Long parametersFromConfig, String countingRule, Map<String, Long> parametersByDtype,
                          Long parameterBytes, Long quantizationOverheadBytes, Long tiedCopyBytes, Long constantBytes,
                          Long initializerBytes, long graphFileBytes, ByPrecision byPrecision) {
    }

    /** Bytes of {@code n} parameters at each precision: 4, 2, 1 and 1/2 byte each. */
    public record ByPrecision(long fp32, long fp16, long int8, long int4) {
        static ByPrecision of(long n) {
            return new ByPrecision(4 * n, 2 * n, n, (n + 1) / 2);
        }
    }

    /**
     * @param dtype                        element type of the cache (float32 or float16)
     * @param shapeSource                  "engine" (read from the loaded graph) or "config.json"
     * @param bytesPerToken                2 (K and V) x layers x kv heads x head dim x bytes per element
     * @param contextTokens                the sequence length planned for: the model's context unless asked otherwise
     * @param bytesPerFullContext          bytesPerToken x contextTokens: what the cache holds when full
     * @param allocatedBytesPerFullContext what one full-context sequence really reserves in the engine at worst
     *                                     (ping-pong regions, every capacity grown through, step buffers;
     *                                     see {@link KvFootprint}), at the prompt length in worstCasePromptTokens;
     *                                     null when the cache lives inside the runtime
     */
    public record KvCache(String dtype, String shapeSource, int layers, int kvHeads, int headDim, int contextTokens,
                          long bytesPerToken, long bytesPerFullContext, Long allocatedBytesPerFullContext,
                          Long allocatedKvBufferBytes, Long allocatedStepBufferBytes, Integer worstCasePromptTokens,
                          String allocation) {
    }

    /**
     * @param bytes                             the KV budget (null: unlimited)
     * @param source                            how it was set
     * @param maxFullContextSequences           full-context sequences of this model whose real allocation fits
     * @param maxFullContextSequencesTheoretical the same counting only bytesPerFullContext
     * @param maxFullContextSequencesWithDraft  for a target with a draft: full-context sequences decoded with the
     *                                          draft (target and draft allocations); null otherwise
     */
    public record Budget(Long bytes, String source, Long maxFullContextSequences, Long maxFullContextSequencesTheoretical,
                         Long maxFullContextSequencesWithDraft) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Worst-case rows a step feeds after the prefill when decoding proposes up to {@code maxCandidates}
     * tokens a round: a verification feeds the candidates plus the last accepted token. The caller
     * passes the decoding's limit (generation's AssistOptions.MAX_ASSISTANT_TOKENS): memory sits below
     * generation and learns it as a number.
     */
    public static int maxStepFeed(int maxCandidates) {
        return maxCandidates + 1;
    }

    /**
     * The plan for a model directory.
     *
     * @param shape         the cache geometry: the loaded engine's ({@code shapeSource} "engine") or config.json's
     * @param context       the sequence length planned for ("full context"): the model's context, or less
     * @param layout        where the engine keeps the cache: KvBuffers (ONNX Runtime, stateless OpenVINO), a slot-pool
     *                      row (slots graph on ONNX Runtime), slots buffers (slots graph on OpenVINO), Java arrays
     *                      (reference engine), or inside the runtime (stateful OpenVINO: only the theoretical figures exist)
     * @param maxStepFeed   the most rows a step feeds after the prefill ({@link #maxStepFeed(int)})
     * @param prefillChunk  the most prompt tokens one step feeds (the scheduler's chunk: max(max-batched-tokens, its
     *                      smallest chunk)); the step buffers grow only to the largest feed, so this, not the context,
     *                      bounds their rows ({@link KvFootprint.Layout#chunked}); {@link KvFootprint#UNCHUNKED}: one call
     * @param draft         for a target served with a draft: the draft's worst full-context footprint, else null
     */
    public static MemoryPlan of(ModelDirectory dir, ModelShape shape, String shapeSource, int context,
                                KvFootprint.Layout layout, int maxStepFeed, int prefillChunk, MemoryBudget budget,
                                KvFootprint draft) {
        if (context < 1 || context > shape.maxContext()) {
            throw new IllegalArgumentException("context " + context + " is outside 1.." + shape.maxContext()
                    + " (the model's context)");
        }
        List<String> unavailable = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        JsonNode config = readConfig(dir.dir().resolve("config.json"));
        Long fromConfig = parametersFromConfig(config);

        Path graph = dir.graph();
        boolean ir = graph.getFileName().toString().endsWith(".xml");
        long fileBytes = size(graph) + (ir ? size(dir.dir().resolve("openvino_model.bin")) : 0);
        WeightInventory inv = null;
        if (ir) {
            unavailable.add("parameters, parameter/overhead/tied-copy bytes: an OpenVINO IR's constants"
                    + " (openvino_model.bin) are not parsed; graph_file_bytes is the IR's size on disk"
                    + (fromConfig != null ? ", bytes per precision use the parameter count from config.json" : ""));
        } else if (dir.isLlama2c()) {  // the checkpoint's header says how many floats follow it; the file is checked against it
            inv = WeightInventory.llama2c(Llama2cHeader.read(graph));
            notes.addAll(inv.notes());
        } else {
            try {
                inv = WeightInventory.read(graph, config.path("tie_word_embeddings").asBoolean(false));
                notes.addAll(inv.notes());
                for (Path data : inv.dataFiles()) {  // external data: the weights' bytes are on disk there
                    fileBytes += size(data);
                }
            } catch (RuntimeException e) {
                unavailable.add("parameters and weight bytes: " + e.getMessage());
            }
        }
        Long parameters = inv == null ? null : inv.parameters();
        if (parameters != null && fromConfig != null && !parameters.equals(fromConfig)) {
            notes.add("the graph holds " + parameters + " parameters, config.json's architecture gives " + fromConfig
                    + " (an export may add or fold tensors, e.g. precomputed rotary tables)");
        }
        Long counted = parameters != null ? parameters : fromConfig;
        Weights weights = new Weights(parameters, fromConfig, COUNTING_RULE, inv == null ? null : inv.parametersByDtype(),
                inv == null ? null : inv.parameterBytes(), inv == null ? null : inv.overheadBytes(),
                inv == null ? null : inv.tiedCopyBytes(), inv == null ? null : inv.constantBytes(),
                inv == null ? null : inv.initializerBytes(), fileBytes, counted == null ? null : ByPrecision.of(counted));

        long perToken = shape.kvBytesPerToken();
        long full = perToken * context;
        KvFootprint worst = null;
        Integer worstPrompt = null;
        String allocation;
        if (layout == KvFootprint.Layout.KV_BUFFERS) {
            KvFootprint.Worst w = KvFootprint.worst(layout, shape, context, maxStepFeed, prefillChunk);
            worst = w.footprint();
            worstPrompt = w.promptTokens();
            allocation = "two ping-pong regions (past read, present written) of the cache's capacity; capacity steps through"
                    + " 64, 128, 256, ... tokens up to the context, an outgrown region freed once copied (the peak"
                    + " is the last growth's old and new regions together); plus logits and token-id step buffers (worst case over prompt lengths,"
                    + chunks(prefillChunk) + " and assisted steps of up to " + maxStepFeed + " tokens)";
        } else if (layout == KvFootprint.Layout.JAVA_HEAP) {
            KvFootprint.Worst w = KvFootprint.worst(layout, shape, context, maxStepFeed, prefillChunk);
            worst = w.footprint();
            worstPrompt = w.promptTokens();
            allocation = "Java arrays on the heap (reference engine): keys and values of the cache's capacity (64, 128, 256,"
                    + " ... tokens up to the context; outgrown arrays become garbage) and one logits array";
        } else if (layout == KvFootprint.Layout.SLOT_POOL) {
            KvFootprint.Worst w = KvFootprint.worst(layout, shape, context, maxStepFeed, prefillChunk);
            worst = w.footprint();
            worstPrompt = w.promptTokens();
            allocation = "one row of the model's slot pool (ONNX Runtime or OpenVINO, slots-layout graph; ONNX Runtime, GroupQueryAttention"
                    + " graph with past and present one buffer), written in place: the full"
                    + " width (the context rounded up to 64) whatever the sequence's length, nothing grows; plus logits,"
                    + " token-id and position step buffers (worst case over prompt lengths," + chunks(prefillChunk)
                    + " and assisted steps of up to " + maxStepFeed + " tokens)";
        } else {
            unavailable.add("allocated bytes per sequence: the runtime keeps this model's cache as internal state"
                    + " (stateful model); admission control counts the theoretical bytes");
            allocation = "inside the runtime (stateful model): not observable";
        }
        if (!"engine".equals(shapeSource)) {
            notes.add("cache geometry from config.json, float32 elements assumed (the engines keep float32 caches unless"
                    + " the graph's past_key_values are float16)");
        }
        KvCache kv = new KvCache(shape.kvBytesPerElement() == 2 ? "float16" : "float32", shapeSource, shape.layers(),
                shape.kvHeads(), shape.headDim(), context, perToken, full,
                worst == null ? null : worst.total(), worst == null ? null : worst.kvBufferBytes(),
                worst == null ? null : worst.stepBufferBytes(), worstPrompt, allocation);

        long reserved = worst == null ? full : worst.total();
        Budget b = new Budget(budget.limited() ? budget.bytes() : null, budget.source(), budget.fits(reserved),
                budget.fits(full), draft == null ? null : budget.fits(reserved + draft.total()));
        return new MemoryPlan(weights, kv, b, List.copyOf(unavailable), List.copyOf(notes));
    }

    /** How the prompt is fed, for the allocation's description. */
    private static String chunks(int prefillChunk) {
        return prefillChunk == KvFootprint.UNCHUNKED ? " the prompt fed in one call"
                : " the prompt fed in chunks of up to " + prefillChunk + " tokens";
    }

    /**
     * Parameters of a Llama-family decoder from config.json (llama, mistral): embedding, per layer two norms,
     * q/k/v/o projections and the three MLP matrices (with biases when attention_bias/mlp_bias), the final
     * norm, and an output layer unless tie_word_embeddings. Null for other model types or missing sizes.
     */
    static Long parametersFromConfig(JsonNode c) {
        String type = c.path("model_type").asText("");
        if (!type.equals("llama") && !type.equals("mistral")) {
            return null;
        }
        long h = c.path("hidden_size").asLong(0);
        long inter = c.path("intermediate_size").asLong(0);
        long layers = c.path("num_hidden_layers").asLong(0);
        long heads = c.path("num_attention_heads").asLong(0);
        long kvHeads = c.path("num_key_value_heads").asLong(heads);
        long vocab = c.path("vocab_size").asLong(0);
        if (h <= 0 || inter <= 0 || layers <= 0 || heads <= 0 || vocab <= 0) {
            return null;
        }
        long hd = c.path("head_dim").asLong(h / heads);
        long q = heads * hd;
        long kvDim = kvHeads * hd;
        long perLayer = 2 * h + h * q + 2 * h * kvDim + q * h + 3 * h * inter;
        if (c.path("attention_bias").asBoolean(false)) {
            perLayer += q + 2 * kvDim + h;
        }
        if (c.path("mlp_bias").asBoolean(false)) {
            perLayer += 2 * inter + h;
        }
        boolean tied = c.path("tie_word_embeddings").asBoolean(false);
        return vocab * h + layers * perLayer + h + (tied ? 0 : vocab * h);
    }

    private static JsonNode readConfig(Path p) {
        if (!Files.isRegularFile(p)) {  // an ONNX Runtime GenAI directory: genai_config.json has no parameter counts
            return com.fasterxml.jackson.databind.node.MissingNode.getInstance();
        }
        try {
            return JSON.readTree(p.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(p + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }
}
