package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.generation.BatchStep;
import java.util.ArrayList;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * Times batched steps of the loaded models at start-up (before the first request is stepped), so the
 * speculation policy's cost model starts from this machine's and these models' numbers: the target
 * with 1..8 sequences feeding 1..6 tokens each (and one feeding 3 or 6 beside single tokens), the draft with 1..8
 * sequences feeding one token or 8 (a catch-up after steps without candidates). The
 * caches live only for the profile (a few hundred kilobytes, outside admission control); it takes
 * 2.5-4 seconds on the bundled pair (start-up waits for it) and logs the target's and the draft's times at INFO.
 */
final class StepProfile {
    private static final int PAST = 16;
    private static final int[] ROWS = {1, 2, 4, 8};
    private static final int[] FEEDS = {1, 3, 6};
    private static final int[] DRAFT_FEEDS = {1, 8};
    /**
     * The grid is timed in {@link #PASSES} passes, each shape {@link #REPEATS} times per pass (in the first pass after
     * one call that warms it up), and the fastest of all counts. At start-up the JIT's compiler threads share the cores
     * with the profile, and on a busy machine so does everything else. With the fastest of 2 consecutive calls, the
     * profile run twice in one start-up measured one row's 1-, 3- and 6-token steps at 1.71x, 1.55x and 1.41x in one
     * pass against the other; with 4 consecutive calls, one start-up with spinning pool threads measured one row's
     * 6-token step at 6.0 ms where a quiet start-up measures 2.8, which prices a candidate at twice its cost (auto at
     * one stream then proposes few). A disturbance (a JIT compilation, another process) covers a stretch of time;
     * passes spread each shape's calls over the whole profile, so one stretch cannot inflate all of them. The shape
     * lasts the life of the service (live steps set only its level).
     */
    private static final int PASSES = 3;
    private static final int REPEATS = 2;
    private static final Logger LOG = Logger.getLogger(StepProfile.class);

    private StepProfile() {
    }

    static void run(CausalLm target, CausalLm draft, StepCostModel cost) {
        if (!target.supportsRollback()) {
            return;  // served plain only (a stateful model): nothing to choose
        }
        long started = System.nanoTime();
        // per rows: the target's uniform feeds, then one row feeding more beside single-token rows (what a padded
        // batch costs, rows x longest feed, apart from the tokens fed, which uniform feeds cannot tell), then the draft
        long[][] uniform = new long[ROWS.length][FEEDS.length];
        long[][] mixed = new long[ROWS.length][FEEDS.length];
        long[][] drafted = new long[ROWS.length][DRAFT_FEEDS.length];
        for (long[][] a : new long[][][] {uniform, mixed, drafted}) {
            for (long[] row : a) {
                java.util.Arrays.fill(row, Long.MAX_VALUE);
            }
        }
        for (int pass = 0; pass < PASSES; pass++) {
            for (int r = 0; r < ROWS.length; r++) {
                int rows = ROWS[r];
                for (int f = 0; f < FEEDS.length; f++) {
                    int feed = FEEDS[f];
                    uniform[r][f] = Math.min(uniform[r][f], time(target, rows, feed, feed, pass == 0));
                    if (rows > 1 && feed > 1) {
                        mixed[r][f] = Math.min(mixed[r][f], time(target, rows, 1, feed, pass == 0));
                    }
                }
                for (int f = 0; draft != null && f < DRAFT_FEEDS.length; f++) {
                    drafted[r][f] = Math.min(drafted[r][f], time(draft, rows, DRAFT_FEEDS[f], DRAFT_FEEDS[f], pass == 0));
                }
            }
        }
        for (int r = 0; r < ROWS.length; r++) {
            int rows = ROWS[r];
            for (int f = 0; f < FEEDS.length; f++) {
                int feed = FEEDS[f];
                if (uniform[r][f] != Long.MAX_VALUE) {
                    cost.observeProfile(new BatchStep.Timing(rows, rows * feed, feed, uniform[r][f], 0, 0, 0, 0, 0));
                }
                if (mixed[r][f] != Long.MAX_VALUE) {
                    cost.observeProfile(new BatchStep.Timing(rows, rows - 1 + feed, feed, mixed[r][f], 0, 0, 0, 0, 0));
                }
            }
            for (int f = 0; f < DRAFT_FEEDS.length; f++) {
                if (drafted[r][f] != Long.MAX_VALUE) {
                    cost.observeProfile(new BatchStep.Timing(0, 0, 0, 0, 1, rows, rows * DRAFT_FEEDS[f], drafted[r][f], 0));
                }
            }
        }
        cost.refit();
        LOG.infof("step profile in %d ms (fastest of %d passes x %d calls), ms by rows x tokens fed: target %s;"
                        + " draft %s", (System.nanoTime() - started) / 1_000_000, PASSES, REPEATS, table(uniform),
                draft == null ? "none" : table(drafted));
    }

    /** "1x[1.27 1.92 2.78] 2x[...] ..." in milliseconds, "-" where a shape was not timed. */
    private static String table(long[][] byRowsAndFeed) {
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < ROWS.length; r++) {
            b.append(r == 0 ? "" : " ").append(ROWS[r]).append("x[");
            for (int f = 0; f < byRowsAndFeed[r].length; f++) {
                long n = byRowsAndFeed[r][f];
                b.append(f == 0 ? "" : " ").append(n == Long.MAX_VALUE ? "-" : String.format(java.util.Locale.ROOT, "%.2f", n / 1e6));
            }
            b.append(']');
        }
        return b.toString();
    }

    /**
     * The fastest of {@link #REPEATS} batched calls (after one that warms the shape up if {@code warmUp}) of
     * {@code rows} sequences, each holding PAST tokens, the first feeding {@code firstFeed} tokens and the others
     * {@code feed}; Long.MAX_VALUE when the model's context is too short for it.
     */
    private static long time(CausalLm lm, int rows, int feed, int firstFeed, boolean warmUp) {
        if (PAST + Math.max(feed, firstFeed) > lm.shape().maxContext()) {
            return Long.MAX_VALUE;
        }
        int vocab = lm.shape().vocabSize();
        int[] tokens = new int[PAST + Math.max(feed, firstFeed)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = (3 + 7 * i) % vocab;
        }
        List<KvCache> caches = new ArrayList<>(rows);
        try {
            List<Feed> prefill = new ArrayList<>(rows);
            for (int r = 0; r < rows; r++) {
                caches.add(lm.newCache());
                prefill.add(new Feed(caches.get(r), tokens, 0, PAST));
            }
            lm.forward(prefill);
            List<Feed> step = new ArrayList<>(rows);
            for (int r = 0; r < rows; r++) {
                step.add(new Feed(caches.get(r), tokens, PAST, r == 0 ? firstFeed : feed));
            }
            long best = Long.MAX_VALUE;
            int first = warmUp ? 0 : 1;
            for (int i = first; i < REPEATS + 1; i++) {
                long started = System.nanoTime();
                lm.forward(step);
                long took = System.nanoTime() - started;
                if (i > 0) {
                    best = Math.min(best, took);
                }
                for (KvCache c : caches) {
                    c.truncate(PAST);
                }
            }
            return best;
        } finally {
            for (KvCache c : caches) {
                c.close();
            }
        }
    }
}
