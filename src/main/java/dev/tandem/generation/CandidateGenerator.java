package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.Logits;

/**
 * Proposes tokens for the target to verify (Hugging Face's {@code CandidateGenerator}, vLLM's
 * proposer). One instance serves one sequence.
 *
 * <p>A proposal is driven from outside, so that the draft model's steps of every sequence in a batch
 * run as one batched call ({@link BatchStep}): {@link #start} begins it and returns the first feed
 * for the draft model; each {@link #next} takes the draft's logits for the previous feed, adds a
 * candidate, and returns the next feed; {@code null} means the proposal is complete. A generator
 * without a model (prompt lookup) completes in {@code start} and never costs an engine call.
 */
interface CandidateGenerator extends AutoCloseable {

    /**
     * Begins proposing up to {@code max} tokens to follow {@code sequence[0..length)} (the prompt and
     * every token emitted so far) into {@code out} (cleared first). A generator that samples writes the
     * distribution each candidate was drawn from into {@code out}; one that proposes deterministically
     * leaves them null (one-hot).
     *
     * @return the draft model's next feed, or null when the proposal is complete ({@code out.count} holds it)
     */
    Feed start(int[] sequence, int length, int max, Candidates out);

    /** The draft model's logits for the last feed: adds a candidate; returns the next feed or null when complete. */
    default Feed next(Logits logits, Candidates out) {
        throw new IllegalStateException("this generator has no model to feed");
    }

    /** The model {@link #start}'s and {@link #next}'s feeds are for; null for a generator without one. */
    default CausalLm model() {
        return null;
    }

    /**
     * Tokens the draft model would be fed before its first candidate if a proposal started now at {@code length}: the
     * target's tokens it has not seen (rejected drafts rolled back), at least the last one; 0 for a generator without
     * a model. A sequence that went without candidates for a while has a long catch-up, which the speculation policy
     * must price.
     */
    default int catchUp(int length) {
        return 0;
    }

    /**
     * The draft model's feed that takes in the prompt up to {@code end} while the target is fed the same chunk, so
     * that the first proposal starts caught up (vLLM prefills its draft model with the prompt too); null for a
     * generator without a model, or when there is nothing to feed. Without it the first proposal would feed the
     * whole prompt inside a decode step, a cost the speculation policy rightly refused at one stream.
     */
    default Feed prefill(int end) {
        return null;
    }

    /** How many of the last {@code proposed} candidates the target accepted (the strategy update). */
    void update(int proposed, int accepted);

    @Override
    void close();
}
