package dev.tandem.generation;

import dev.tandem.model.IncrementalDetokenizer;
import java.util.ArrayList;
import java.util.List;

/** Log-softmax of raw logits and the most likely tokens at a position. */
final class Logprobs {
    private Logprobs() {
    }

    /** log(sum(exp(row))), computed stably. */
    static double logSumExp(float[] row) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        return max + Math.log(sum);
    }

    /** The {@code n} most likely tokens of {@code row}, best first, with their texts as the detokenizer would emit them. */
    static List<TokenLogprob.Alternative> top(float[] row, double logSumExp, int n, IncrementalDetokenizer detok) {
        if (n <= 0) {
            return List.of();
        }
        int[] best = new int[Math.min(n, row.length)];
        int size = 0;
        for (int t = 0; t < row.length; t++) {
            if (size < best.length) {
                best[size++] = t;
            } else if (row[t] > row[best[size - 1]]) {
                best[size - 1] = t;
            } else {
                continue;
            }
            for (int i = size - 1; i > 0 && row[best[i]] > row[best[i - 1]]; i--) {
                int x = best[i];
                best[i] = best[i - 1];
                best[i - 1] = x;
            }
        }
        List<TokenLogprob.Alternative> out = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            out.add(new TokenLogprob.Alternative(best[i], detok.peek(best[i]), (float) (row[best[i]] - logSumExp)));
        }
        return out;
    }
}
