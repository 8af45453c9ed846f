package dev.tandem.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.engine.Llama2cHeader;
import dev.tandem.engine.ModelShape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The parts of a Hugging Face {@code config.json} and {@code generation_config.json} that serving needs (or of
 * ONNX Runtime GenAI's {@code genai_config.json}: {@link #readGenAi}).
 *
 * @param modelType    e.g. "llama"
 * @param shape        sizes as the config states them (0 where it does not); the engine checks them
 *                     against the graph
 * @param bosTokenId   beginning-of-sequence id, or -1
 * @param eosTokenIds  ids that end generation (generation_config.json wins over config.json)
 * @param torchDtype   the dtype the weights were trained in, informative
 * @param samplingDefaults the sampling defaults the model's creators recommend (generation_config.json's, or
 *                     genai_config.json's {@code search}); whether requests get them is the server's choice
 *                     ({@code tandem.target.generation-config})
 */
public record ModelConfig(String modelType, ModelShape shape, int bosTokenId, List<Integer> eosTokenIds, String torchDtype,
                          SamplingDefaults samplingDefaults) {

    /**
     * @param generationJson where {@code generation} was read from (named in errors); {@code generation} is a missing
     *                       node when the directory has no generation_config.json
     */
    static ModelConfig read(Path configJson, JsonNode config, Path generationJson, JsonNode generation) {
        int hidden = config.path("hidden_size").asInt(0);
        int heads = config.path("num_attention_heads").asInt(0);
        int layers = config.path("num_hidden_layers").asInt(0);
        int kvHeads = config.path("num_key_value_heads").asInt(heads);
        int headDim = config.path("head_dim").asInt(heads > 0 ? hidden / heads : 0);
        int vocab = config.path("vocab_size").asInt(0);
        int maxContext = config.path("max_position_embeddings").asInt(0);
        if (layers <= 0) {
            throw new IllegalArgumentException(configJson + ": num_hidden_layers is missing or not positive");
        }
        if (maxContext <= 0) {
            throw new IllegalArgumentException(configJson + ": max_position_embeddings is missing or not positive");
        }
        int bos = firstInt(generation.path("bos_token_id"), firstInt(config.path("bos_token_id"), -1));
        List<Integer> eos = ints(generation.path("eos_token_id"));
        if (eos.isEmpty()) {
            eos = ints(config.path("eos_token_id"));
        }
        ModelShape shape = new ModelShape(vocab, maxContext, layers, kvHeads, headDim, 4);
        return new ModelConfig(config.path("model_type").asText("unknown"), shape, bos, List.copyOf(eos),
                config.path("torch_dtype").asText("unknown"), SamplingDefaults.fromGenerationConfig(generationJson, generation));
    }

    /**
     * The config of a llama2.c checkpoint, read from its header ({@link Llama2cHeader}): model type "llama2.c", BOS 1
     * and EOS 2 (the ids run.c and llama2.c's tokenizer use), float32 weights, and no sampling defaults (the format
     * has none).
     */
    static ModelConfig llama2c(Path checkpoint, Llama2cHeader header) {
        return new ModelConfig("llama2.c", header.shape(), Llama2cTokenizer.BOS, List.of(Llama2cTokenizer.EOS), "float32",
                new SamplingDefaults(null, null, null, null, null, null, checkpoint.getFileName().toString()));
    }

    /** The graph input and output names ONNX Runtime GenAI's builder writes, which the engines feed and read. */
    private static final Map<String, String> GENAI_NAMES = Map.of(
            "inputs.input_ids", "input_ids", "inputs.attention_mask", "attention_mask",
            "inputs.position_ids", "position_ids", "inputs.past_key_names", "past_key_values.%d.key",
            "inputs.past_value_names", "past_key_values.%d.value", "outputs.logits", "logits",
            "outputs.present_key_names", "present.%d.key", "outputs.present_value_names", "present.%d.value");

    /**
     * The config of an ONNX Runtime GenAI model directory ({@code genai_config.json}, written by
     * {@code onnxruntime_genai.models.builder} beside the graph): sizes from {@code model.decoder}, the context from
     * {@code model.context_length} (the length the graph was built for), BOS and EOS (one id or several, as Llama 3
     * lists) from {@code model}. The graph's input and output names must be the builder's defaults, which the engines
     * feed; a file that renames them is refused here, naming the entry, rather than failing later inside the runtime.
     * The sampling defaults come from {@code search} ({@link SamplingDefaults#fromGenAiSearch}).
     */
    static ModelConfig readGenAi(Path file, JsonNode genai) {
        JsonNode model = genai.path("model");
        JsonNode decoder = model.path("decoder");
        for (Map.Entry<String, String> e : GENAI_NAMES.entrySet()) {
            String[] at = e.getKey().split("\\.");
            JsonNode name = decoder.path(at[0]).path(at[1]);
            if (!name.isMissingNode() && !e.getValue().equals(name.asText())) {
                throw new IllegalArgumentException(file + ": model.decoder." + e.getKey() + " renames a graph "
                        + (at[0].equals("inputs") ? "input" : "output") + " to '" + name.asText()
                        + "'; only the default name '" + e.getValue() + "' is supported");
            }
        }
        int heads = decoder.path("num_attention_heads").asInt(0);
        int layers = decoder.path("num_hidden_layers").asInt(0);
        int kvHeads = decoder.path("num_key_value_heads").asInt(heads);
        int hidden = decoder.path("hidden_size").asInt(0);
        int headDim = decoder.path("head_size").asInt(heads > 0 ? hidden / heads : 0);
        int context = model.path("context_length").asInt(0);
        if (layers <= 0) {
            throw new IllegalArgumentException(file + ": model.decoder.num_hidden_layers is missing or not positive");
        }
        if (context <= 0) {
            throw new IllegalArgumentException(file + ": model.context_length is missing or not positive");
        }
        ModelShape shape = new ModelShape(model.path("vocab_size").asInt(0), context, layers, kvHeads, headDim, 4);
        return new ModelConfig(model.path("type").asText("unknown"), shape, firstInt(model.path("bos_token_id"), -1),
                List.copyOf(ints(model.path("eos_token_id"))), "unknown", SamplingDefaults.fromGenAiSearch(file, genai));
    }

    /**
     * The graph file {@code genai_config.json} names ({@code model.decoder.filename}, default {@code model.onnx}): a
     * plain file name in the model's directory. Anything that could lead elsewhere (a separator, "..", an absolute
     * path) is refused: a model directory is data, not a place to follow paths from.
     */
    static String genAiGraphName(Path file, JsonNode genai) {
        String name = genai.path("model").path("decoder").path("filename").asText("model.onnx");
        if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.equals("..") || name.equals(".")
                || name.indexOf('\0') >= 0 || name.contains(":")) {
            throw new IllegalArgumentException(file + ": model.decoder.filename must be a file name in the model's"
                    + " directory, is '" + name + "'");
        }
        return name;
    }

    private static int firstInt(JsonNode n, int fallback) {
        if (n.isInt()) {
            return n.asInt();
        }
        if (n.isArray() && !n.isEmpty() && n.get(0).isInt()) {
            return n.get(0).asInt();
        }
        return fallback;
    }

    private static List<Integer> ints(JsonNode n) {
        List<Integer> out = new ArrayList<>();
        if (n.isInt()) {
            out.add(n.asInt());
        } else if (n.isArray()) {
            n.forEach(e -> {
                if (e.isInt()) {
                    out.add(e.asInt());
                }
            });
        }
        return out;
    }
}
