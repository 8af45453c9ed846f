package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.model.ChatTemplate;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.util.Optional;

/**
 * A model loaded once and shared by every request: its files, tokenizer, engine, and the two ways
 * of decoding from it (plain, and assisted by the draft or by prompt lookup).
 */
public record ServedModel(String id, String engine, ModelDirectory directory, TextTokenizer tokenizer, CausalLm lm,
                          PlainDecoder decoder, AssistedDecoder assisted, long createdEpochSeconds,
                          Optional<ChatTemplate> chatTemplate, String quantization) {

    public int maxContext() {
        return lm.shape().maxContext();
    }

    ServedModel withAssistedDecoder(AssistedDecoder a) {
        return new ServedModel(id, engine, directory, tokenizer, lm, decoder, a, createdEpochSeconds, chatTemplate,
                quantization);
    }

    void close() {
        lm.close();
        tokenizer.close();
    }
}
