package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.generation.BatchStep;
import org.junit.jupiter.api.Test;

/** The prompt-token allowance beside decoding sequences, from the times of recent decode and prompt calls. */
class PrefillPaceTest {

    /** A step: a decode call of {@code decodeMs} over {@code rows} rows and a prompt call of {@code tokens} in {@code promptMs}. */
    static BatchStep.Timing step(int rows, double decodeMs, int tokens, double promptMs) {
        return new BatchStep.Timing(rows, rows, 1, (long) (decodeMs * 1e6), 0, 0, 0, 0, 0, tokens > 0 ? 1 : 0, tokens,
                (long) (promptMs * 1e6));
    }

    @Test
    void noLimitUntilBothCallsWereTimedNorWithoutDecodingSequencesNorWhenOff() {
        PrefillPace pace = new PrefillPace(1);
        assertEquals(Integer.MAX_VALUE, pace.promptTokens(8), "nothing timed yet");
        pace.observe(step(8, 4, 0, 0));
        assertEquals(Integer.MAX_VALUE, pace.promptTokens(8), "no prompt call timed yet");
        pace.observe(step(0, 0, 56, 12.6));
        assertEquals(Integer.MAX_VALUE, pace.promptTokens(0), "nothing decodes: a prompt alone goes at the token budget");
        assertTrue(pace.promptTokens(8) < 56, "now limited: " + pace.promptTokens(8));

        PrefillPace off = new PrefillPace(0);
        off.observe(step(8, 4, 56, 12.6));
        assertEquals(Integer.MAX_VALUE, off.promptTokens(8));
    }

    @Test
    void theAllowanceIsTheDecodeCallsTimeTimesTheRatioAtThePromptsCostPerToken() {
        PrefillPace pace = new PrefillPace(1);
        pace.observe(step(8, 4, 56, 12.6));  // 0.225 ms a prompt token: 4 ms buy 17
        assertEquals(17, pace.promptTokens(8));
        PrefillPace twice = new PrefillPace(2);
        twice.observe(step(8, 4, 56, 12.6));
        assertEquals(35, twice.promptTokens(8));
    }

    /**
     * Against an engine whose prompt call costs a fixed part plus a part per token (the bundled target on 2 threads: about
     * 0.9 ms + 0.21 ms a token), the chunks settle where they cost about the decode call, though the per-token estimate
     * includes the fixed part.
     */
    @Test
    void chunksSettleWhereTheyCostAboutTheDecodeCall() {
        PrefillPace pace = new PrefillPace(1);
        double decodeMs = 4;
        int chunk = 56;  // the token budget's, before any prompt call was timed
        for (int i = 0; i < 40; i++) {
            double promptMs = 0.9 + 0.21 * chunk;
            pace.observe(step(8, decodeMs, chunk, promptMs));
            chunk = Math.min(56, pace.promptTokens(8));
        }
        double settled = 0.9 + 0.21 * chunk;
        assertTrue(settled > 0.7 * decodeMs && settled < 1.2 * decodeMs, "a chunk of " + chunk + " costs " + settled + " ms");
    }

    @Test
    void aBadRatioIsRefusedNamingTheKey() {
        for (double bad : new double[] {-1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new PrefillPace(bad));
            assertTrue(e.getMessage().contains("tandem.scheduler.prefill-ratio"), e.getMessage());
        }
    }
}
