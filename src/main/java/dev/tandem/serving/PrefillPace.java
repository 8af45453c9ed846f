package dev.tandem.serving;

import dev.tandem.generation.BatchStep;

/**
 * How many prompt tokens a step may feed beside its decoding sequences ({@code tandem.scheduler.prefill-ratio}): so many
 * that the step's prompt chunks take about {@code ratio} times its decode call, as measured on recent steps. With ratio 1
 * a stream's gap between two tokens at most about doubles while a prompt is fed, however long the prompt.
 *
 * <p>Why a time and not only a token budget: on a CPU a prompt chunk costs in proportion to its tokens, and the tokens
 * a decode step feeds cost far less each (one weight read serves every row). Measured on the bundled int4 target
 * (2 threads, StepBench): a 56-token chunk 12.6 ms, 120 tokens 27 ms, where 8 streams' decode call took 3-5 ms; so under
 * {@code max-batched-tokens} 64 the 8 streams' gaps went from 5-6 ms to 28-32 ms (p50) while a 248-token prompt was fed
 * ({@code docs/benchmarks.md}, "Long prompt amid streams, paced by time"). The token budget still caps a step (the
 * memory plan counts on it), and the oldest prompt still gets at least {@link Scheduler#MIN_CHUNK} tokens a step.
 *
 * <p>The estimates are the recent decode calls' seconds (the target's decode call and the draft's proposals) and the
 * recent prompt calls' seconds per token (their fixed cost included: a chunk made small by the cap costs more per token,
 * which shrinks the next one, so the chunks settle where they cost about ratio x the decode call). Until a prompt call
 * has been timed, only the token budget applies.
 */
final class PrefillPace {
    /** A new observation's weight in the running estimates (the last few calls count). */
    private static final double WEIGHT = 0.3;

    private final double ratio;
    private double decodeSeconds = -1;
    private double promptSecondsPerToken = -1;

    /** @param ratio the prompt chunks' time over the decode call's time a step aims at; 0 = no limit but the token budget */
    PrefillPace(double ratio) {
        if (!(ratio >= 0) || Double.isInfinite(ratio)) {
            throw new IllegalArgumentException("tandem.scheduler.prefill-ratio must be 0 (off) or a positive number, is " + ratio);
        }
        this.ratio = ratio;
    }

    /**
     * Prompt tokens this step may feed in all, given that {@code decodingRows} sequences decode in it
     * ({@link Integer#MAX_VALUE}: no limit beyond the token budget).
     */
    int promptTokens(int decodingRows) {
        if (ratio == 0 || decodingRows == 0 || decodeSeconds < 0 || promptSecondsPerToken <= 0) {
            return Integer.MAX_VALUE;
        }
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE / 2, ratio * decodeSeconds / promptSecondsPerToken));
    }

    /** What a step ran: its decode call's and its prompt calls' times feed the estimates. */
    void observe(BatchStep.Timing t) {
        if (t.targetRows() > 0) {
            decodeSeconds = mix(decodeSeconds, (t.targetNanos() + t.draftNanos()) / 1e9);
        }
        if (t.promptTokens() > 0 && t.promptNanos() > 0) {
            promptSecondsPerToken = mix(promptSecondsPerToken, t.promptNanos() / 1e9 / t.promptTokens());
        }
    }

    private static double mix(double estimate, double x) {
        return estimate < 0 ? x : (1 - WEIGHT) * estimate + WEIGHT * x;
    }
}
