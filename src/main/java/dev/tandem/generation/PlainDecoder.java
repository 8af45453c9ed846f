package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.model.IncrementalDetokenizer;
import dev.tandem.model.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Plain autoregressive decoding: one forward pass over the prompt, then one token per step, each
 * step feeding only the newest token (the KV cache holds everything before it).
 */
public final class PlainDecoder {
    private final CausalLm lm;
    private final TextTokenizer tokenizer;
    private final int[] eosIds;

    public PlainDecoder(CausalLm lm, TextTokenizer tokenizer, List<Integer> eosIds) {
        this.lm = lm;
        this.tokenizer = tokenizer;
        this.eosIds = eosIds.stream().mapToInt(Integer::intValue).toArray();
    }

    public GenerationResult generate(GenerationRequest req) {
        int vocab = lm.shape().vocabSize();
        int maxContext = lm.shape().maxContext();
        int[] prompt = req.prompt();
        try (KvCache cache = lm.newCache()) {
            long start = System.nanoTime();
            Logits logits = lm.forward(cache, prompt);
            long prefillNanos = System.nanoTime() - start;
            List<TokenLogprob> promptLogprobs = req.echo() && req.wantsLogprobs() ? promptLogprobs(prompt, logits, req.logprobs()) : List.of();

            Sampler sampler = new Sampler(req.sampling(), vocab, prompt);
            IncrementalDetokenizer detok = new IncrementalDetokenizer(tokenizer, prompt);
            StopStrings stops = new StopStrings(req.stop());
            float[] row = new float[vocab];
            float[] raw = req.wantsLogprobs() ? new float[vocab] : null;
            int[] one = new int[1];
            int[] out = new int[req.maxTokens()];
            int n = 0;
            List<TokenLogprob> logprobs = req.wantsLogprobs() ? new ArrayList<>() : List.of();
            StringBuilder text = new StringBuilder();
            int lastRow = logits.rows() - 1;
            FinishReason finish = FinishReason.LENGTH;
            while (true) {
                logits.copyRow(lastRow, row);
                if (raw != null) {
                    System.arraycopy(row, 0, raw, 0, vocab);
                }
                int token = sampler.next(row);
                sampler.accept(token);
                out[n++] = token;
                boolean eos = isEos(token);
                String piece = eos ? "" : detok.next(token);
                if (raw != null) {
                    double lse = Logprobs.logSumExp(raw);
                    logprobs.add(new TokenLogprob(token, piece, (float) (raw[token] - lse),
                            Logprobs.top(raw, lse, req.logprobs(), detok), text.length()));
                }
                int before = text.length();
                text.append(piece);
                if (eos) {
                    finish = FinishReason.STOP;
                    break;
                }
                int at = stops.find(text, before);
                if (at >= 0) {
                    text.setLength(at);
                    finish = FinishReason.STOP;
                    break;
                }
                if (n == req.maxTokens() || cache.length() + 1 > maxContext) {
                    break;
                }
                one[0] = token;
                logits = lm.forward(cache, one);
                lastRow = 0;
            }
            if (finish == FinishReason.LENGTH) {
                int before = text.length();
                text.append(detok.flush());
                int at = stops.find(text, before);
                if (at >= 0) {
                    text.setLength(at);
                    finish = FinishReason.STOP;
                }
            }
            long decodeNanos = System.nanoTime() - start - prefillNanos;
            return new GenerationResult(text.toString(), Arrays.copyOf(out, n), finish, prompt.length, promptLogprobs,
                    logprobs, prefillNanos, decodeNanos);
        }
    }

    private boolean isEos(int token) {
        for (int e : eosIds) {
            if (e == token) {
                return true;
            }
        }
        return false;
    }

    /** Log-probabilities of the prompt's tokens (after BOS), each predicted by the prefill row before it. */
    private List<TokenLogprob> promptLogprobs(int[] prompt, Logits logits, int topN) {
        List<TokenLogprob> out = new ArrayList<>(prompt.length);
        int first = prompt[0] == tokenizer.bosId() ? 1 : 0;
        IncrementalDetokenizer detok = new IncrementalDetokenizer(tokenizer, Arrays.copyOf(prompt, first));
        float[] row = new float[logits.vocabSize()];
        int offset = 0;
        for (int i = first; i < prompt.length; i++) {
            Float lp = null;
            List<TokenLogprob.Alternative> top = List.of();
            if (i > 0) {
                logits.copyRow(i - 1, row);
                double lse = Logprobs.logSumExp(row);
                lp = (float) (row[prompt[i]] - lse);
                top = Logprobs.top(row, lse, topN, detok);
            }
            String piece = detok.next(prompt[i]);
            out.add(new TokenLogprob(prompt[i], piece, lp, top, offset));
            offset += piece.length();
        }
        return out;
    }
}
