package dev.tandem.generation;

import dev.tandem.engine.Feed;

/**
 * Prompt lookup decoding (Saxena 2023; Hugging Face's {@code PromptLookupCandidateGenerator}):
 * find the latest earlier occurrence of the sequence's last n tokens (n from the configured size
 * down to 1) and propose the tokens that followed it. No model (no engine call); candidates are
 * one-hot. Pays off when the output copies from the input (summaries, edits, code, quoting).
 */
final class PromptLookupCandidates implements CandidateGenerator {
    private final int maxNgram;
    private int following = -1;  // the token after the last round's proposal in its match (its candidate k+1), or -1

    PromptLookupCandidates(int maxNgram) {
        this.maxNgram = maxNgram;
    }

    @Override
    public Feed start(int[] seq, int length, int max, Candidates out) {
        out.clear();
        if (out.shadowBonus >= 0 && following >= 0) {  // the last round kept all: was its next token right? (one-hot: kept with probability p(x))
            out.shadowKept = out.shadowP == null ? (following == out.shadowBonus ? 1 : 0) : out.shadowP[following];
        }
        following = -1;
        for (int n = Math.min(maxNgram, length - 1); n >= 1; n--) {
            int tail = length - n;
            for (int start = tail - 1; start >= 0; start--) {  // latest match first, excluding the tail itself
                if (matches(seq, start, tail, n)) {
                    int from = start + n;
                    int count = Math.min(max, length - from);
                    for (int i = 0; i < count; i++) {
                        out.add(seq[from + i]);
                    }
                    if (from + count < length) {
                        following = seq[from + count];
                    }
                    return null;
                }
            }
        }
        return null;
    }

    private static boolean matches(int[] seq, int a, int b, int n) {
        for (int i = 0; i < n; i++) {
            if (seq[a + i] != seq[b + i]) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void update(int proposed, int accepted) {
        // nothing to adapt: the draft length schedule lives in the sequence
    }

    @Override
    public void close() {
    }
}
