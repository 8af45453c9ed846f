package dev.tandem.generation;

import dev.tandem.engine.Logits;
import dev.tandem.model.IncrementalDetokenizer;
import dev.tandem.model.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Log-probabilities of the prompt's tokens for {@code echo}, collected from the prefill's logits as
 * the prompt is fed (in one piece or in chunks). BOS is not echoed; each token is predicted by the
 * row before it, which may be the last row of the previous chunk.
 */
final class PromptLogprobs {
    private final GenerationRequest req;
    private final int[] prompt;
    private final List<TokenLogprob> out;
    private final IncrementalDetokenizer detok;
    private final int first;           // 1 when the prompt starts with BOS (not echoed)
    private final float[] row;
    private float[] previous;          // the row before the current chunk's first token
    private int offset;                // characters of echoed text so far

    private PromptLogprobs(GenerationRequest req, TextTokenizer tokenizer, int vocab) {
        this.req = req;
        this.prompt = req.prompt();
        this.out = new ArrayList<>(prompt.length);
        this.first = prompt[0] == tokenizer.bosId() ? 1 : 0;
        this.detok = new IncrementalDetokenizer(tokenizer, Arrays.copyOf(prompt, first));
        this.row = new float[vocab];
    }

    /** A collector, or null unless the request asks for echo with logprobs. */
    static PromptLogprobs of(GenerationRequest req, TextTokenizer tokenizer, int vocab) {
        return req.echo() && req.wantsLogprobs() ? new PromptLogprobs(req, tokenizer, vocab) : null;
    }

    /** The logits of prompt positions {@code [from, from + chunk.rows())}. */
    void add(Logits chunk, int from) {
        for (int i = Math.max(from, first); i < from + chunk.rows(); i++) {
            Float lp = null;
            List<TokenLogprob.Alternative> top = List.of();
            if (i > 0) {
                float[] predicting = i - 1 >= from ? chunk.copyRow(i - 1 - from, row) : previous;
                double lse = Logprobs.logSumExp(predicting);
                lp = (float) (predicting[prompt[i]] - lse);
                top = Logprobs.top(predicting, lse, req.logprobs(), detok);
            }
            String piece = detok.next(prompt[i]);
            out.add(new TokenLogprob(prompt[i], piece, lp, top, offset));
            offset += piece.length();
        }
        previous = chunk.copyRow(chunk.rows() - 1, previous == null ? new float[row.length] : previous);
    }

    List<TokenLogprob> result() {
        return out;
    }
}
