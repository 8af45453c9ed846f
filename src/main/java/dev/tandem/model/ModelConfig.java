package dev.tandem.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.engine.ModelShape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a Hugging Face {@code config.json} and {@code generation_config.json} that serving needs.
 *
 * @param modelType    e.g. "llama"
 * @param shape        sizes as the config states them (0 where it does not); the engine checks them
 *                     against the graph
 * @param bosTokenId   beginning-of-sequence id, or -1
 * @param eosTokenIds  ids that end generation (generation_config.json wins over config.json)
 * @param torchDtype   the dtype the weights were trained in, informative
 */
public record ModelConfig(String modelType, ModelShape shape, int bosTokenId, List<Integer> eosTokenIds, String torchDtype) {

    static ModelConfig read(Path configJson, JsonNode config, JsonNode generation) {
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
                config.path("torch_dtype").asText("unknown"));
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
