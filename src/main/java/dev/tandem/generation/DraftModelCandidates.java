package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import java.util.Arrays;

/**
 * Candidates from a small draft model with its own KV cache. Each round it first catches up with
 * the sequence (rolling back what the target rejected, feeding the target's own tokens in one
 * feed), then drafts token by token with the request's sampling rules, so that q (the draft's
 * distribution) and p (the target's) come from the same transforms. The feeds are run by the
 * caller ({@link BatchStep}), batched with those of the other sequences.
 */
final class DraftModelCandidates implements CandidateGenerator {
    private final CausalLm draft;
    private final KvCache cache;
    private final Sampler sampler;           // same params as the target's; its own random stream
    private final boolean greedy;
    private final double confidenceThreshold;
    private final int promptLength;
    private final int[] eosIds;
    private final float[] row;
    private int[] mine;                      // what the draft believes the sequence is
    private int mineLength;                  // the cache holds mine[0..cache.length()), the sampler counts mine[prompt..mineLength)
    private int max;                         // candidates asked for in this round
    private boolean shadowInFeed;            // the first feed holds the last round's final candidate: judge its shadow

    DraftModelCandidates(CausalLm draft, SamplingParams params, int[] prompt, double confidenceThreshold, int[] eosIds) {
        this.draft = draft;
        this.cache = draft.newCache();
        Long seed = params.seed() == null ? null : params.seed() * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L;
        this.sampler = new Sampler(new SamplingParams(params.temperature(), params.topK(), params.topP(), params.minP(),
                params.repetitionPenalty(), params.presencePenalty(), params.frequencyPenalty(), seed),
                draft.shape().vocabSize(), prompt);
        this.greedy = params.isGreedy();
        this.confidenceThreshold = confidenceThreshold;
        this.promptLength = prompt.length;
        this.eosIds = eosIds;
        this.row = new float[draft.shape().vocabSize()];
        this.mine = Arrays.copyOf(prompt, prompt.length + 64);
        this.mineLength = prompt.length;
    }

    @Override
    public CausalLm model() {
        return draft;
    }

    @Override
    public Feed start(int[] seq, int length, int max, Candidates out) {
        out.clear();
        this.max = Math.min(max, draft.shape().maxContext() - length);  // the draft's context may be shorter
        if (this.max <= 0) {
            return null;
        }
        syncWith(seq, length);
        if (cache.length() == length) {  // everything fed already: refeed the last token for its logits
            cache.truncate(length - 1);
        }
        // after a round that kept all its candidates, the draft never saw the last one (nothing was drafted after it):
        // this feed holds it, then the target's bonus, so its logits row is the candidate k+1 the draft would have made
        shadowInFeed = out.shadowBonus >= 0 && cache.length() <= length - 2;
        return new Feed(cache, mine, cache.length(), length - cache.length());
    }

    @Override
    public int catchUp(int length) {
        // the cache may still hold drafted tokens the target rejected (they count as seen here, so this can fall short
        // by those; after a rejection the feed is the one correction token, which the max covers)
        return Math.max(1, length - cache.length());
    }

    @Override
    public Feed prefill(int end) {
        int from = cache.length();
        if (end <= from || end > promptLength || end > draft.shape().maxContext()) {
            return null;
        }
        return new Feed(cache, mine, from, end - from);  // mine starts as the prompt
    }

    @Override
    public Feed next(Logits logits, Candidates out) {
        if (shadowInFeed) {
            shadowInFeed = false;
            out.shadowKept = judgeShadow(logits.copyRow(logits.rows() - 2, row), out.shadowBonus, out.shadowP);
        }
        logits.copyRow(logits.rows() - 1, row);
        int token;
        double confidence;
        if (greedy) {
            token = sampler.next(row);  // the penalised argmax; row now holds the penalised logits
            confidence = confidenceThreshold > 0 ? softmaxAt(row, token) : 1;
        } else {
            float[] q = out.distribution(out.count);
            System.arraycopy(row, 0, q, 0, row.length);
            sampler.distribution(q);
            token = sampler.draw(q);
            confidence = q[token];
        }
        out.add(token);
        sampler.accept(token);
        append(token);
        if (out.count == max || confidence < confidenceThreshold || isEos(token)) {  // nothing follows an EOS
            return null;
        }
        return new Feed(cache, mine, mineLength - 1, 1);
    }

    /**
     * The probability that the candidate this draft would have made from {@code logits} (overwritten) is kept where the
     * target chose {@code bonus}: greedy, 1 if its choice is the bonus and 0 if not; sampling, sum over x of
     * min(p(x), q(x)) (the speculative acceptance of a draw x from q against the target's p, in expectation: no random
     * number is drawn, so a seeded request's stream is untouched). The sampler's penalties already count the bonus,
     * which only a repetition penalty notices; it is an estimate for the speculation policy, not an emitted token.
     */
    private double judgeShadow(float[] logits, int bonus, float[] p) {
        if (greedy) {
            return sampler.next(logits) == bonus ? 1 : 0;
        }
        float[] q = sampler.distribution(logits);
        double kept = 0;
        for (int x = 0; x < q.length; x++) {
            kept += Math.min(p[x], q[x]);
        }
        return Math.min(1, kept);
    }

    /** Rolls back drafted tokens the target did not keep and takes on the target's own tokens. */
    private void syncWith(int[] seq, int length) {
        int common = 0;
        int limit = Math.min(mineLength, length);
        while (common < limit && mine[common] == seq[common]) {
            common++;
        }
        for (int i = Math.max(common, promptLength); i < mineLength; i++) {
            sampler.unaccept(mine[i]);
        }
        if (cache.length() > common) {
            cache.truncate(common);
        }
        if (mine.length < length + AssistOptions.MAX_ASSISTANT_TOKENS) {
            mine = Arrays.copyOf(mine, (length + AssistOptions.MAX_ASSISTANT_TOKENS) * 2);
        }
        System.arraycopy(seq, common, mine, common, length - common);
        for (int i = Math.max(common, promptLength); i < length; i++) {
            sampler.accept(seq[i]);
        }
        mineLength = length;
    }

    private boolean isEos(int token) {
        for (int e : eosIds) {
            if (e == token) {
                return true;
            }
        }
        return false;
    }

    private void append(int token) {
        if (mineLength == mine.length) {
            mine = Arrays.copyOf(mine, mine.length * 2);
        }
        mine[mineLength++] = token;
    }

    /** Softmax probability of {@code token} (temperature 1): the draft's confidence when greedy. */
    private static double softmaxAt(float[] logits, int token) {
        return Math.exp(logits[token] - Logprobs.logSumExp(logits));
    }

    @Override
    public void update(int proposed, int accepted) {
        // the next start() rolls back to the accepted sequence itself
    }

    @Override
    public void close() {
        cache.close();
    }
}
