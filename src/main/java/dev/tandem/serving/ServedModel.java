package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.model.ChatTemplate;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.SamplingDefaults;
import dev.tandem.model.TextTokenizer;
import java.util.Optional;

/**
 * A model loaded once and shared by every request: its files, tokenizer, engine, and the two ways
 * of decoding from it (plain, and assisted by the draft or by prompt lookup).
 *
 * @param samplingDefaults what an OpenAI request that leaves a sampling field out gets: the model's own defaults under
 *                         {@code tandem.target.generation-config=auto}, else (and for a draft) none
 */
public record ServedModel(String id, String engine, ModelDirectory directory, TextTokenizer tokenizer, CausalLm lm,
                          PlainDecoder decoder, AssistedDecoder assisted, long createdEpochSeconds,
                          Optional<ChatTemplate> chatTemplate, String quantization, SamplingDefaults samplingDefaults) {

    /** A model whose requests get no model sampling defaults (tests, tools). */
    public ServedModel(String id, String engine, ModelDirectory directory, TextTokenizer tokenizer, CausalLm lm,
                       PlainDecoder decoder, AssistedDecoder assisted, long createdEpochSeconds,
                       Optional<ChatTemplate> chatTemplate, String quantization) {
        this(id, engine, directory, tokenizer, lm, decoder, assisted, createdEpochSeconds, chatTemplate, quantization,
                SamplingDefaults.NONE);
    }

    public int maxContext() {
        return lm.shape().maxContext();
    }

    /**
     * Empty when assisted decoding can run on this model; otherwise why it cannot, for the client
     * and the operator. Assisted decoding truncates the KV cache after rejected candidates, which
     * needs {@link CausalLm#supportsRollback()}; the one engine without it today is OpenVINO on a
     * stateful IR, so the message says how to export a model that has it.
     */
    public Optional<String> assistedUnavailableReason() {
        if (lm.supportsRollback()) {
            return Optional.empty();
        }
        return Optional.of("model '" + id + "' (" + engine + ") is a stateful model: its KV cache lives inside the"
                + " runtime, which cannot roll it back, and assisted decoding truncates the cache after every rejected"
                + " candidate, so this model is served with plain decoding only. To serve it with assisted decoding,"
                + " export it without state (optimum-cli export openvino --disable-stateful) or as ONNX (optimum-cli"
                + " export onnx --task text-generation-with-past).");
    }

    ServedModel withAssistedDecoder(AssistedDecoder a) {
        return new ServedModel(id, engine, directory, tokenizer, lm, decoder, a, createdEpochSeconds, chatTemplate,
                quantization, samplingDefaults);
    }

    void close() {
        lm.close();
        tokenizer.close();
    }

    /** Only the engine (it refuses later forward passes): for a shutdown that could not wait for every generation. */
    void closeEngine() {
        lm.close();
    }
}
