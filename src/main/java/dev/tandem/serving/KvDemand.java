package dev.tandem.serving;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.GenerationRequest;
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
 * @param bytes       bytes reserved
 * @param description what they are for, in refusals ("205 tokens (prompt 5 + max_tokens 200) on kjv-target ...")
 */
public record KvDemand(long bytes, String description) {
    public static final KvDemand NONE = new KvDemand(0, "nothing");

    /** Worst-case rows an assisted step feeds: a verification of the most candidates decoding proposes, plus one. */
    static final int MAX_STEP_FEED = MemoryPlan.maxStepFeed(AssistOptions.MAX_ASSISTANT_TOKENS);

    /** The demand of {@code request} on {@code target}, with {@code draft} (may be null) when {@code decoding} uses it. */
    public static KvDemand of(ServedModel target, ServedModel draft, GenerationRequest request, DecodingMode decoding) {
        int prompt = request.prompt().length;
        long tokens = Math.min((long) prompt + request.maxTokens(), target.maxContext());
        int maxFeed = decoding.isAssisted() ? MAX_STEP_FEED : 1;
        long bytes = footprint(target, prompt, (int) tokens, maxFeed);
        StringBuilder d = new StringBuilder().append(tokens).append(" tokens (prompt ").append(prompt)
                .append(" + max_tokens ").append(request.maxTokens()).append(") on ").append(target.id());
        if (decoding.usesDraft() && draft != null) {
            bytes += footprint(draft, prompt + 1, (int) Math.min(tokens, draft.maxContext()), maxFeed);
            d.append(" and its draft ").append(draft.id());
        }
        return new KvDemand(bytes, d.toString());
    }

    private static long footprint(ServedModel m, int firstFeed, int tokens, int maxFeed) {
        return layout(m).footprint(m.lm().shape(), firstFeed, tokens, maxFeed).total();
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
