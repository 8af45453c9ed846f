package dev.tandem.generation;

import dev.tandem.model.IncrementalDetokenizer;
import dev.tandem.model.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Collects the tokens a decoder chooses and decides when generation ends: EOS, a stop string,
 * {@code max_tokens}. Detokenises incrementally and records log-probabilities when asked. Plain
 * and assisted decoding share it, so both end, cut and count text the same way.
 */
final class CompletionBuilder {
    private final GenerationRequest request;
    private final int[] eosIds;
    private final IncrementalDetokenizer detok;
    private final StopStrings stops;
    private final StringBuilder text = new StringBuilder();
    private final int[] tokens;
    private final List<TokenLogprob> logprobs;
    private int count;
    private FinishReason finish;
    private final GenerationListener listener;
    private int emitted;                  // text[0..emitted) has gone to the listener
    private int logprobsEmitted;          // so have logprobs[0..logprobsEmitted)

    CompletionBuilder(TextTokenizer tokenizer, GenerationRequest request, int[] eosIds, GenerationListener listener) {
        this.listener = listener;
        this.request = request;
        this.eosIds = eosIds;
        this.detok = new IncrementalDetokenizer(tokenizer, request.prompt());
        this.stops = new StopStrings(request.stop());
        this.tokens = new int[request.maxTokens()];
        this.logprobs = request.wantsLogprobs() ? new ArrayList<>() : List.of();
    }

    /**
     * Appends {@code token}, chosen from a position whose raw (untransformed) logits are
     * {@code rawLogits} (needed only when log-probabilities were asked). Returns true when
     * generation has ended.
     */
    boolean add(int token, float[] rawLogits) {
        if (finish != null) {
            throw new IllegalStateException("generation has ended");
        }
        tokens[count++] = token;
        boolean eos = isEos(token);
        String piece = eos ? "" : detok.next(token);
        if (request.wantsLogprobs()) {
            double lse = Logprobs.logSumExp(rawLogits);
            logprobs.add(new TokenLogprob(token, piece, (float) (rawLogits[token] - lse),
                    Logprobs.top(rawLogits, lse, request.logprobs(), detok), text.length()));
        }
        int before = text.length();
        text.append(piece);
        if (eos) {
            finish = FinishReason.STOP;
            return true;
        }
        int at = stops.find(text, before);
        if (at >= 0) {
            text.setLength(at);
            finish = FinishReason.STOP;
            return true;
        }
        if (count == request.maxTokens()) {
            endByLength();
            return true;
        }
        emit(text.length() - stops.heldBack(text));
        return false;
    }

    /** Ends early: the listener asked to stop. */
    void cancel() {
        finish = FinishReason.CANCELLED;
    }

    /** Hands text[emitted..end) and the pending logprobs to the listener. */
    private void emit(int end) {
        if (end > emitted || logprobs.size() > logprobsEmitted && end == text.length()) {
            List<TokenLogprob> lp = logprobs.isEmpty() ? List.of() : List.copyOf(logprobs.subList(logprobsEmitted, logprobs.size()));
            listener.onText(text.substring(emitted, Math.max(end, emitted)), lp);
            emitted = Math.max(end, emitted);
            logprobsEmitted = logprobs.size();
        }
    }

    /** Ends because a length limit was reached (max_tokens or the context); flushes held-back text. */
    void endByLength() {
        int before = text.length();
        text.append(detok.flush());
        int at = stops.find(text, before);
        if (at >= 0) {
            text.setLength(at);
            finish = FinishReason.STOP;
        } else {
            finish = FinishReason.LENGTH;
        }
    }

    boolean ended() {
        return finish != null;
    }

    /** Tokens that may still be added. */
    int remaining() {
        return request.maxTokens() - count;
    }

    private boolean isEos(int token) {
        for (int e : eosIds) {
            if (e == token) {
                return true;
            }
        }
        return false;
    }

    GenerationResult result(List<TokenLogprob> promptLogprobs, long prefillNanos, long decodeNanos, DecodingStats stats) {
        if (finish != FinishReason.CANCELLED) {
            emit(text.length());  // whatever was held back for a stop string that never came
        }
        return new GenerationResult(text.toString(), Arrays.copyOf(tokens, count), finish, request.prompt().length,
                promptLogprobs, logprobs, prefillNanos, decodeNanos, stats);
    }
}
