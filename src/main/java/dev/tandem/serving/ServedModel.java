package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;

/** A model loaded once and shared by every request: its files, tokenizer, engine and decoder. */
public record ServedModel(String id, String engine, ModelDirectory directory, TextTokenizer tokenizer, CausalLm lm,
                          PlainDecoder decoder, long createdEpochSeconds) {

    public int maxContext() {
        return lm.shape().maxContext();
    }

    void close() {
        lm.close();
        tokenizer.close();
    }
}
