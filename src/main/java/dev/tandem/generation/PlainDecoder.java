package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.model.TextTokenizer;
import java.util.List;

/**
 * Plain autoregressive decoding of one request on the calling thread: one forward pass over the
 * prompt, then one token per step, each step feeding only the newest token (the KV cache holds
 * everything before it). A batch of one through the same {@link Sequence} and {@link BatchStep} the
 * server's scheduler runs, for tools and tests; the server batches requests instead.
 */
public final class PlainDecoder {
    private final CausalLm lm;
    private final TextTokenizer tokenizer;
    private final int[] eosIds;
    private final BatchStep step;

    public PlainDecoder(CausalLm lm, TextTokenizer tokenizer, List<Integer> eosIds) {
        this.lm = lm;
        this.tokenizer = tokenizer;
        this.eosIds = eosIds.stream().mapToInt(Integer::intValue).toArray();
        this.step = new BatchStep(lm);
    }

    /** A sequence for the scheduler: plain decoding of {@code req}, telling {@code listener} the text as it becomes final. */
    public Sequence newSequence(GenerationRequest req, GenerationListener listener) {
        return new Sequence(lm, null, tokenizer, eosIds, req, DecodingMode.PLAIN, listener);
    }

    public GenerationResult generate(GenerationRequest req) {
        return generate(req, GenerationListener.NONE);
    }

    /** Generates, telling {@code listener} the text as it becomes final; stops early when it asks. */
    public GenerationResult generate(GenerationRequest req, GenerationListener listener) {
        return AssistedDecoder.runAlone(newSequence(req, listener), step);
    }
}
