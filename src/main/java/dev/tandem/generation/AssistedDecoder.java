package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.model.TextTokenizer;
import java.util.List;

/**
 * Assisted (speculative) decoding over the same target that serves plain requests: each step a
 * {@link CandidateGenerator} (the draft model, or prompt lookup) proposes k tokens, the target
 * scores the last emitted token and the candidates in ONE forward pass, the {@link Verifier} keeps
 * between 1 and k+1 tokens, and the target's KV cache is truncated to the kept tokens (no
 * re-prefill; the draft rolls itself back at its next proposal). The emitted tokens are distributed
 * exactly as plain decoding from the target would emit them (identical tokens when greedy); only the
 * cost changes.
 *
 * <p>{@link #generate} runs one request on the calling thread (a batch of one through the same
 * {@link Sequence} and {@link BatchStep} the server's scheduler runs), for tools and tests.
 */
public final class AssistedDecoder {
    private final CausalLm target;
    private final CausalLm draft;  // null when no draft model is configured
    private final TextTokenizer tokenizer;
    private final int[] eosIds;
    private final BatchStep step;

    public AssistedDecoder(CausalLm target, CausalLm draft, TextTokenizer tokenizer, List<Integer> eosIds) {
        this.target = target;
        this.draft = draft;
        this.tokenizer = tokenizer;
        this.eosIds = eosIds.stream().mapToInt(Integer::intValue).toArray();
        this.step = new BatchStep(target);
    }

    public boolean hasDraft() {
        return draft != null;
    }

    /** The step runner for this target (the scheduler runs every sequence of the target through one). */
    public BatchStep batchStep() {
        return step;
    }

    /** A sequence for the scheduler: {@code req} decoded as {@code mode} says (plain, or assisted with its options). */
    public Sequence newSequence(GenerationRequest req, DecodingMode mode, GenerationListener listener) {
        return new Sequence(target, draft, tokenizer, eosIds, req, mode, listener);
    }

    /** Generates {@code req} assisted as {@code options} say (for tools and tests; the server goes through a scheduler). */
    public GenerationResult generate(GenerationRequest req, AssistOptions options) {
        return generate(req, DecodingMode.assisted(options));
    }

    public GenerationResult generate(GenerationRequest req, DecodingMode mode) {
        return generate(req, mode, GenerationListener.NONE, null);
    }

    /** Generates, telling {@code listener} the text as it becomes final; stops early when it asks. */
    public GenerationResult generate(GenerationRequest req, AssistOptions options, GenerationListener listener) {
        return generate(req, DecodingMode.assisted(options), listener, null);
    }

    GenerationResult generate(GenerationRequest req, AssistOptions options, Sequence.RoundListener rounds) {
        return generate(req, DecodingMode.assisted(options), GenerationListener.NONE, rounds);
    }

    private GenerationResult generate(GenerationRequest req, DecodingMode mode, GenerationListener listener,
                                      Sequence.RoundListener rounds) {
        Sequence s = newSequence(req, mode, listener);
        s.onRound(rounds);
        return runAlone(s, step);
    }

    /** Runs {@code s} to its end as a batch of one: the whole prompt in one step, then the k it wants every step. */
    static GenerationResult runAlone(Sequence s, BatchStep step) {
        List<Sequence> batch = List.of(s);
        try {
            while (!s.endIfDone()) {
                if (s.prefilling()) {
                    s.planPrefill(s.promptRemaining());
                } else {
                    s.planDecode(s.wantedCandidates());
                }
                step.run(batch);
            }
            return s.result();
        } finally {
            s.close();
        }
    }
}
