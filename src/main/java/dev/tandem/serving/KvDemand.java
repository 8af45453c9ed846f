package dev.tandem.serving;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.Sequence;
import dev.tandem.memory.KvFootprint;
import dev.tandem.memory.MemoryPlan;

/**
 * The KV-cache bytes a request reserves for as long as it runs: the worst case for its prompt and
 * {@code max_tokens} (capped at the context), as the engine really allocates it ({@link KvFootprint}:
 * for KvBuffers, ping-pong regions at their peak during growth, step buffers; for a slots graph on ONNX
 * Runtime, one pool row of the full width and step buffers; for a slots graph on OpenVINO, the sequence's own
 * buffer at its peak during growth and step buffers), for the target and,
 * when it is decoded with the draft model, for the draft too. A model whose runtime keeps the cache
 * as internal state (stateful OpenVINO) counts the theoretical {@code tokens x bytes per token}.
 *
 * <p>The prompt is counted as the scheduler feeds it, in chunks ({@link Feeds}): the step buffers grow only to the
 * largest feed, so a 1000-token prompt reserves the rows of one chunk, not 1000.
 *
 * @param bytes       bytes reserved
 * @param description what they are for, in refusals ("205 tokens (prompt 5 + max_tokens 200) on kjv-target ...")
 */
public record KvDemand(long bytes, String description) {
    public static final KvDemand NONE = new KvDemand(0, "nothing");

    /** Worst-case rows an assisted step feeds: a verification of the most candidates decoding proposes, plus one. */
    static final int MAX_STEP_FEED = MemoryPlan.maxStepFeed(AssistOptions.MAX_ASSISTANT_TOKENS);

    /**
     * How the scheduler feeds a sequence's models, which bounds their step buffers.
     *
     * @param prefillChunk the most prompt tokens one step feeds ({@link Sequence#largestPrefillChunk}): the target's
     *                     prompt, and the draft's when it follows the prompt
     * @param draftMayLag  the speculation policy may leave the draft model behind (auto: it is not fed the prompt
     *                     while no decoding sequence speculates, nor the tokens of steps without candidates), so its
     *                     first proposal after that catches up in one feed, up to the whole sequence so far
     */
    public record Feeds(int prefillChunk, boolean draftMayLag) {
        /** As the service is configured ({@code tandem.scheduler.max-batched-tokens}, {@code tandem.assisted.policy}). */
        static Feeds of(TandemConfig config) {
            return new Feeds(Sequence.largestPrefillChunk(config.scheduler().maxBatchedTokens()),
                    "auto".equals(config.assisted().policy()));
        }

        /** The bound of the draft's feeds of its prompt: the chunk, or none when it may catch up in one feed. */
        int draftPrefillChunk() {
            return draftMayLag ? KvFootprint.UNCHUNKED : prefillChunk;
        }
    }

    /**
     * The demand of {@code request} on {@code target}, with {@code draft} (may be null) when {@code decoding} uses it,
     * fed as {@code feeds} says.
     */
    public static KvDemand of(ServedModel target, ServedModel draft, GenerationRequest request, DecodingMode decoding,
                              Feeds feeds) {
        int prompt = request.prompt().length;
        long tokens = Math.min((long) prompt + request.maxTokens(), target.maxContext());
        int maxFeed = decoding.isAssisted() ? MAX_STEP_FEED : 1;
        long bytes = footprint(target, prompt, feeds.prefillChunk(), (int) tokens, maxFeed);
        StringBuilder d = new StringBuilder().append(tokens).append(" tokens (prompt ").append(prompt)
                .append(" + max_tokens ").append(request.maxTokens()).append(") on ").append(target.id());
        if (decoding.usesDraft() && draft != null) {
            int draftTokens = (int) Math.min(tokens, draft.maxContext());
            // a lagging draft's catch-up may feed the whole sequence so far: counted as a "prompt" of all its tokens
            int draftPrompt = feeds.draftMayLag() ? draftTokens : prompt;
            bytes += footprint(draft, draftPrompt, feeds.draftPrefillChunk(), draftTokens, maxFeed);
            d.append(" and its draft ").append(draft.id());
        }
        return new KvDemand(bytes, d.toString());
    }

    private static long footprint(ServedModel m, int prompt, int prefillChunk, int tokens, int maxFeed) {
        return layout(m).chunked(m.lm().shape(), prompt, prefillChunk, tokens, maxFeed).total();
    }

    /**
     * Where {@code m}'s engine keeps a cache, as the engine says ({@link dev.tandem.engine.CausalLm#cacheStorage()}):
     * inside the runtime when it cannot roll back (stateful OpenVINO, see ServedModel), in Java arrays for the
     * reference engine, a slot-pool row for a slots graph on ONNX Runtime, else in KvBuffers (ONNX Runtime, OpenVINO).
     */
    static KvFootprint.Layout layout(ServedModel m) {
        return KvFootprint.Layout.forStorage(m.lm().cacheStorage());
    }
}
