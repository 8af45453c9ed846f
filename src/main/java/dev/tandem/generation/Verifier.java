package dev.tandem.generation;

import dev.tandem.engine.Logits;

/**
 * Judges one verification block: the target has scored the sequence's last emitted token and k
 * candidates in one forward pass, which gives its distribution p at every candidate position and
 * one beyond (row i of {@code logits} predicts candidate i; row k follows the last candidate).
 *
 * <ol>
 *   <li>Candidates are accepted left to right. Greedy keeps a candidate equal to the target's own
 *       choice. Sampling keeps candidate x with probability min(1, p(x)/q(x)), q the distribution
 *       the draft drew it from (one-hot for deterministic proposals), and on rejection draws from
 *       normalise(max(0, p - q)) ({@link SpeculativeSampling}).</li>
 *   <li>The target always adds one token of its own: the correction at the first rejection, or a
 *       bonus token after all k were accepted; so a block emits between 1 and k+1 tokens.</li>
 *   <li>Generation may end inside the block (EOS, a stop string, max_tokens): the tokens after it
 *       are not judged.</li>
 * </ol>
 * The emitted tokens are distributed exactly as plain decoding from the target would emit them
 * (identical tokens when greedy). With k = 0 this is a plain decoding step: the one "bonus" token is
 * sampled from the target's last row, exactly as plain decoding samples.
 */
final class Verifier {

    /** Where the verifier puts the tokens it keeps. */
    interface Output {
        /** Appends {@code token}, chosen from raw logits {@code raw} (null unless logprobs are asked); true when generation ended. */
        boolean emit(int token, float[] raw);
    }

    /**
     * What a block gave.
     *
     * @param accepted candidates kept
     * @param examined candidates judged (fewer than proposed when generation ended inside the block)
     * @param ended    generation ended
     */
    record Outcome(int accepted, int examined, boolean ended) {
    }

    private final Sampler sampler;
    private final boolean greedy;
    private final float[] row;
    private final float[] raw;  // the row before any transform, for logprobs; null when not asked

    Verifier(Sampler sampler, boolean greedy, int vocab, boolean wantsLogprobs) {
        this.sampler = sampler;
        this.greedy = greedy;
        this.row = new float[vocab];
        this.raw = wantsLogprobs ? new float[vocab] : null;
    }

    /** Judges {@code candidates.tokens[0..proposed)} against the target's {@code logits} (proposed + 1 rows). */
    Outcome verify(Logits logits, Candidates candidates, int proposed, Output out) {
        int accepted = 0;
        for (int i = 0; i < proposed; i++) {
            int x = candidates.tokens[i];
            int own = -1;
            load(logits, i);
            if (greedy) {
                int choice = sampler.next(row);
                if (choice != x) {
                    own = choice;
                }
            } else {
                float[] p = sampler.distribution(row);
                float[] q = candidates.q(i);
                if (sampler.uniform() >= SpeculativeSampling.acceptanceProbability(p, q, x)) {
                    SpeculativeSampling.residual(p, q, x);
                    own = sampler.draw(p);
                }
            }
            if (own >= 0) {  // rejected: the target's correction ends the block
                sampler.accept(own);
                return new Outcome(accepted, proposed, out.emit(own, raw));
            }
            sampler.accept(x);
            accepted++;
            if (out.emit(x, raw)) {  // EOS, a stop string or max_tokens inside the block
                return new Outcome(accepted, i + 1, true);
            }
        }
        load(logits, proposed);  // every candidate accepted: the bonus token
        int bonus = sampler.next(row);
        sampler.accept(bonus);
        return new Outcome(accepted, proposed, out.emit(bonus, raw));
    }

    /**
     * The last row this verifier chose from, as it chose: after a block that kept every candidate, the distribution
     * the bonus token was drawn from (sampling; penalised logits when greedy). Valid until the next call.
     */
    float[] lastDistribution() {
        return row;
    }

    /** The first token after a prefill: sampled from the prompt's last row, as plain decoding does. */
    boolean first(Logits logits, Output out) {
        load(logits, logits.rows() - 1);
        int token = sampler.next(row);
        sampler.accept(token);
        return out.emit(token, raw);
    }

    private void load(Logits logits, int r) {
        logits.copyRow(r, row);
        if (raw != null) {
            System.arraycopy(row, 0, raw, 0, row.length);
        }
    }
}
