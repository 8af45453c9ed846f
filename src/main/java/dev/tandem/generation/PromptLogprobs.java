package dev.tandem.generation;

import dev.tandem.engine.Logits;
import dev.tandem.model.IncrementalDetokenizer;
import dev.tandem.model.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Log-probabilities of the prompt's tokens for {@code echo}, from the prefill's logits. */
final class PromptLogprobs {
    private PromptLogprobs() {
    }

    /** Empty unless the request asks for echo with logprobs. BOS is not echoed; each token is predicted by the row before it. */
    static List<TokenLogprob> of(GenerationRequest req, Logits prefill, TextTokenizer tokenizer) {
        if (!req.echo() || !req.wantsLogprobs()) {
            return List.of();
        }
        int[] prompt = req.prompt();
        List<TokenLogprob> out = new ArrayList<>(prompt.length);
        int first = prompt[0] == tokenizer.bosId() ? 1 : 0;
        IncrementalDetokenizer detok = new IncrementalDetokenizer(tokenizer, Arrays.copyOf(prompt, first));
        float[] row = new float[prefill.vocabSize()];
        int offset = 0;
        for (int i = first; i < prompt.length; i++) {
            Float lp = null;
            List<TokenLogprob.Alternative> top = List.of();
            if (i > 0) {
                prefill.copyRow(i - 1, row);
                double lse = Logprobs.logSumExp(row);
                lp = (float) (row[prompt[i]] - lse);
                top = Logprobs.top(row, lse, req.logprobs(), detok);
            }
            String piece = detok.next(prompt[i]);
            out.add(new TokenLogprob(prompt[i], piece, lp, top, offset));
            offset += piece.length();
        }
        return out;
    }
}
