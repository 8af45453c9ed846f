package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.model.TextTokenizer;
import java.util.List;

/**
 * Plain autoregressive decoding: one forward pass over the prompt, then one token per step, each
 * step feeding only the newest token (the KV cache holds everything before it).
 */
public final class PlainDecoder {
    private final CausalLm lm;
    private final TextTokenizer tokenizer;
    private final int[] eosIds;
    private static final int[] NO_EOS = {};

    public PlainDecoder(CausalLm lm, TextTokenizer tokenizer, List<Integer> eosIds) {
        this.lm = lm;
        this.tokenizer = tokenizer;
        this.eosIds = eosIds.stream().mapToInt(Integer::intValue).toArray();
    }

    public GenerationResult generate(GenerationRequest req) {
        return generate(req, GenerationListener.NONE);
    }

    /** Generates, telling {@code listener} the text as it becomes final; stops early when it asks. */
    public GenerationResult generate(GenerationRequest req, GenerationListener listener) {
        int vocab = lm.shape().vocabSize();
        int maxContext = lm.shape().maxContext();
        int[] prompt = req.prompt();
        try (KvCache cache = lm.newCache()) {
            long start = System.nanoTime();
            Logits logits = lm.forward(cache, prompt);
            long prefillNanos = System.nanoTime() - start;
            List<TokenLogprob> promptLogprobs = PromptLogprobs.of(req, logits, tokenizer);

            Sampler sampler = new Sampler(req.sampling(), vocab, prompt);
            CompletionBuilder out = new CompletionBuilder(tokenizer, req, req.ignoreEos() ? NO_EOS : eosIds, listener);
            float[] row = new float[vocab];
            float[] raw = req.wantsLogprobs() ? new float[vocab] : null;
            int[] one = new int[1];
            while (true) {
                if (listener.isCancelled()) {
                    out.cancel();
                    break;
                }
                logits.copyRow(logits.rows() - 1, row);
                if (raw != null) {
                    System.arraycopy(row, 0, raw, 0, vocab);
                }
                int token = sampler.next(row);
                sampler.accept(token);
                if (out.add(token, raw)) {
                    break;
                }
                if (cache.length() + 1 >= maxContext) {  // the sequence fills the context
                    out.endByLength();
                    break;
                }
                one[0] = token;
                logits = lm.forward(cache, one);
            }
            long decodeNanos = System.nanoTime() - start - prefillNanos;
            return out.result(promptLogprobs, prefillNanos, decodeNanos, DecodingStats.plain());
        }
    }
}
