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
 * about a second on the bundled pair.
 */
final class StepProfile {
    private static final int PAST = 16;
    private static final int[] ROWS = {1, 2, 4, 8};
    private static final int[] FEEDS = {1, 3, 6};
    private static final int[] DRAFT_FEEDS = {1, 8};
    /**
     * Timed calls per shape after one that warms it up; the fastest counts. At start-up the JIT's compiler threads
     * share the cores with the profile, and on a busy machine so does everything else: with the fastest of 2, the
     * profile run twice in one start-up (busy machine) measured one row's 1-, 3- and 6-token steps at 1.71x, 1.55x and
     * 1.41x in one pass against the other, different shapes. The shape lasts the life of the service (live steps
     * set only its level), so it gets a few more calls.
     */
    private static final int REPEATS = 4;
    private static final Logger LOG = Logger.getLogger(StepProfile.class);

    private StepProfile() {
    }

    static void run(CausalLm target, CausalLm draft, StepCostModel cost) {
        if (!target.supportsRollback()) {
            return;  // served plain only (a stateful model): nothing to choose
        }
        for (int rows : ROWS) {
            for (int feed : FEEDS) {
                long nanos = time(target, rows, feed, feed);
                LOG.debugf("profile: target, %s rows x %s tokens: %s ms", rows, feed, String.format(java.util.Locale.ROOT, "%.3f", nanos / 1e6));
                if (nanos > 0) {
                    cost.observeProfile(new BatchStep.Timing(rows, rows * feed, feed, nanos, 0, 0, 0, 0, 0));
                }
                // one row verifying beside single-token rows: tells what a padded batch costs (rows x longest feed)
                // apart from the tokens fed, which uniform feeds cannot
                if (rows > 1 && feed > 1) {
                    long mixed = time(target, rows, 1, feed);
                    if (mixed > 0) {
                        cost.observeProfile(new BatchStep.Timing(rows, rows - 1 + feed, feed, mixed, 0, 0, 0, 0, 0));
                    }
                }
            }
            if (draft != null) {
                for (int feed : DRAFT_FEEDS) {
                    long nanos = time(draft, rows, feed, feed);
                    if (nanos > 0) {
                        cost.observeProfile(new BatchStep.Timing(0, 0, 0, 0, 1, rows, rows * feed, nanos, 0));
                    }
                }
            }
        }
        cost.refit();
    }

    /**
     * The fastest of a few batched calls of {@code rows} sequences (each holding PAST tokens), the first feeding
     * {@code firstFeed} tokens and the others {@code feed}.
     */
    private static long time(CausalLm lm, int rows, int feed, int firstFeed) {
        if (PAST + Math.max(feed, firstFeed) > lm.shape().maxContext()) {
            return 0;
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
            for (int i = 0; i < REPEATS + 1; i++) {  // the first call warms up
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
