package dev.tandem.generation;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.model.TextTokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * Assisted (speculative) decoding over the same target that serves plain requests.
 *
 * <p>Each round:
 * <ol>
 *   <li>a {@link CandidateGenerator} (the draft model, or prompt lookup) proposes k tokens;</li>
 *   <li>the target scores the last emitted token plus the k candidates in ONE forward pass, which
 *       gives its distribution p at every candidate position and one beyond;</li>
 *   <li>candidates are accepted left to right: greedy keeps a candidate equal to the target's own
 *       choice; sampling keeps candidate x with probability min(1, p(x)/q(x)) and on rejection
 *       draws from normalise(max(0, p - q)) ({@link SpeculativeSampling});</li>
 *   <li>the target always adds one token of its own: the correction at the first rejection, or a
 *       bonus token after k acceptances; so a round emits between 1 and k+1 tokens;</li>
 *   <li>the target's KV cache is truncated to the accepted tokens (no re-prefill); the draft rolls
 *       itself back at its next proposal.</li>
 * </ol>
 * The emitted tokens are distributed exactly as plain decoding from the target would emit them
 * (identical tokens when greedy); only the cost changes.
 */
public final class AssistedDecoder {
    private final CausalLm target;
    private final CausalLm draft;  // null when no draft model is configured
    private final TextTokenizer tokenizer;
    private final int[] eosIds;
    private static final int[] NO_EOS = {};

    public AssistedDecoder(CausalLm target, CausalLm draft, TextTokenizer tokenizer, List<Integer> eosIds) {
        this.target = target;
        this.draft = draft;
        this.tokenizer = tokenizer;
        this.eosIds = eosIds.stream().mapToInt(Integer::intValue).toArray();
    }

    public boolean hasDraft() {
        return draft != null;
    }

    /** Sees the target's cache and the sequence after each round (tests use it to check rollbacks). */
    interface RoundListener {
        void afterRound(KvCache targetCache, int[] sequence, int length, int proposed, int accepted);
    }

    public GenerationResult generate(GenerationRequest req, AssistOptions options) {
        return generate(req, options, GenerationListener.NONE, null);
    }

    /** Generates, telling {@code listener} the text as it becomes final; stops early when it asks. */
    public GenerationResult generate(GenerationRequest req, AssistOptions options, GenerationListener listener) {
        return generate(req, options, listener, null);
    }

    GenerationResult generate(GenerationRequest req, AssistOptions options, RoundListener rounds) {
        return generate(req, options, GenerationListener.NONE, rounds);
    }

    private GenerationResult generate(GenerationRequest req, AssistOptions options, GenerationListener listener,
                                      RoundListener rounds) {
        int vocab = target.shape().vocabSize();
        int maxContext = target.shape().maxContext();
        int[] prompt = req.prompt();
        try (KvCache cache = target.newCache(); CandidateGenerator proposer = proposer(req, options)) {
            long start = System.nanoTime();
            Logits logits = target.forward(cache, prompt);
            long prefillNanos = System.nanoTime() - start;
            List<TokenLogprob> promptLogprobs = PromptLogprobs.of(req, logits, tokenizer);

            Sampler sampler = new Sampler(req.sampling(), vocab, prompt);
            CompletionBuilder out = new CompletionBuilder(tokenizer, req, eos(req), listener);
            Candidates candidates = new Candidates(AssistOptions.MAX_ASSISTANT_TOKENS, vocab);
            DraftLength draftLength = new DraftLength(options);
            float[] row = new float[vocab];
            float[] raw = req.wantsLogprobs() ? new float[vocab] : null;
            int[] feed = new int[AssistOptions.MAX_ASSISTANT_TOKENS + 1];
            int[] acceptedAt = new int[AssistOptions.MAX_ASSISTANT_TOKENS];
            int steps = 0;
            int drafted = 0;
            int acceptedTotal = 0;
            int longestRound = 0;

            // The sequence: prompt and emitted tokens. The target's cache holds all of it but the last token.
            int[] seq = Arrays.copyOf(prompt, prompt.length + req.maxTokens());
            int length = prompt.length;

            // The first token comes from the prefill, exactly as in plain decoding.
            logits.copyRow(logits.rows() - 1, row);
            copyRaw(row, raw);
            int first = sampler.next(row);
            sampler.accept(first);
            seq[length++] = first;
            boolean ended = out.add(first, raw);

            while (!ended) {
                if (listener.isCancelled()) {
                    out.cancel();
                    break;
                }
                if (length >= maxContext) {
                    out.endByLength();
                    break;
                }
                // 1. propose: at most what can still be emitted (a round adds one token of the target's own) and held
                int room = Math.min(out.remaining() - 1, maxContext - length - 1);
                int k = Math.min(draftLength.current(), room);
                int proposed = k > 0 ? proposer.propose(seq, length, k, candidates) : 0;

                // 2. verify: the last emitted token and the candidates in one forward pass
                feed[0] = seq[length - 1];
                System.arraycopy(candidates.tokens, 0, feed, 1, proposed);
                logits = target.forward(cache, feed, 0, proposed + 1);

                // 3. accept left to right; 4. the target's own token at the first rejection or after all
                int accepted = 0;
                int examined = proposed;  // fewer when generation ends inside the block
                int own = -1;
                for (int i = 0; i <= proposed; i++) {
                    logits.copyRow(i, row);
                    copyRaw(row, raw);
                    if (i == proposed) {  // every candidate accepted: the bonus token
                        own = sampler.next(row);
                        break;
                    }
                    int x = candidates.tokens[i];
                    if (req.sampling().isGreedy()) {
                        int choice = sampler.next(row);
                        if (choice != x) {
                            own = choice;
                            break;
                        }
                    } else {
                        float[] p = sampler.distribution(row);
                        float[] q = candidates.q(i);
                        if (sampler.uniform() >= SpeculativeSampling.acceptanceProbability(p, q, x)) {
                            SpeculativeSampling.residual(p, q, x);
                            own = sampler.draw(p);
                            break;
                        }
                    }
                    sampler.accept(x);
                    seq[length++] = x;
                    accepted++;
                    acceptedAt[i]++;
                    if (out.add(x, raw)) {  // EOS, a stop string or max_tokens inside the block
                        ended = true;
                        examined = i + 1;
                        break;
                    }
                }
                if (!ended) {
                    sampler.accept(own);
                    seq[length++] = own;
                    ended = out.add(own, raw);
                }

                // 5. roll back: keep the keys and values of accepted tokens only
                cache.truncate(Math.min(cache.length(), length - 1));
                if (proposed > 0) {
                    longestRound = Math.max(longestRound, proposed);
                    steps++;
                    drafted += examined;
                    acceptedTotal += accepted;
                }
                proposer.update(proposed, accepted);
                draftLength.update(proposed, accepted);
                if (rounds != null && !ended) {
                    rounds.afterRound(cache, seq, length, proposed, accepted);
                }
            }
            long decodeNanos = System.nanoTime() - start - prefillNanos;
            DecodingStats stats = new DecodingStats("assisted", options.assistant().apiName(), steps, drafted, acceptedTotal,
                    Arrays.copyOf(acceptedAt, longestRound));
            return out.result(promptLogprobs, prefillNanos, decodeNanos, stats);
        }
    }

    private CandidateGenerator proposer(GenerationRequest req, AssistOptions options) {
        return switch (options.assistant()) {
            case PROMPT_LOOKUP -> new PromptLookupCandidates(options.ngramSize());
            case DRAFT -> {
                if (draft == null) {
                    throw new IllegalStateException("no draft model is configured");
                }
                yield new DraftModelCandidates(draft, req.sampling(), req.prompt(), options.confidenceThreshold(), eos(req));
            }
        };
    }

    /** The tokens that end this request's generation: none when it ignores EOS. */
    private int[] eos(GenerationRequest req) {
        return req.ignoreEos() ? NO_EOS : eosIds;
    }

    private static void copyRaw(float[] row, float[] raw) {
        if (raw != null) {
            System.arraycopy(row, 0, raw, 0, row.length);
        }
    }
}
