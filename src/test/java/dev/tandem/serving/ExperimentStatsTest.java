package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ExperimentStatsTest {
    @Test
    void bootstrapIntervalCoversTheTrueSpeedup() {
        SplittableRandom r = new SplittableRandom(1);
        List<ExperimentStats.Sample> plain = new ArrayList<>();
        List<ExperimentStats.Sample> assisted = new ArrayList<>();
        for (int i = 0; i < 400; i++) {  // per-token latency 10 ms vs 5 ms, with noise
            plain.add(new ExperimentStats.Sample(50, 0, 0, 0.010 * (0.8 + 0.4 * r.nextDouble()), 0, 0, 1));
            assisted.add(new ExperimentStats.Sample(50, 0, 0, 0.005 * (0.8 + 0.4 * r.nextDouble()), 100, 80, 1));
        }
        Map<String, Object> s = ExperimentStats.speedup(assisted, plain);
        double est = (double) s.get("estimate");
        assertEquals(2.0, est, 0.05);
        assertTrue((double) s.get("ci95_low") < est && est < (double) s.get("ci95_high"));
        assertTrue((double) s.get("ci95_low") > 1.9 && (double) s.get("ci95_high") < 2.1, s.toString());
    }

    @Test
    void loadBuckets() {
        assertEquals("1", ExperimentStats.loadBucket(0));    // no step at all
        assertEquals("1", ExperimentStats.loadBucket(1.49));
        assertEquals("2", ExperimentStats.loadBucket(1.5));
        assertEquals("2", ExperimentStats.loadBucket(2.49));
        assertEquals("3-4", ExperimentStats.loadBucket(2.5));
        assertEquals("3-4", ExperimentStats.loadBucket(4.49));
        assertEquals("5-8", ExperimentStats.loadBucket(4.5));
        assertEquals("5-8", ExperimentStats.loadBucket(8));
        assertEquals("9-16", ExperimentStats.loadBucket(9));
        assertEquals("9-16", ExperimentStats.loadBucket(16.4));
        assertEquals("17+", ExperimentStats.loadBucket(16.5));
        assertEquals("17+", ExperimentStats.loadBucket(300));
    }

    /**
     * Alone, assisted decoding halves the inter-token latency; in a batch of about 12 it doubles it. The report per load
     * says so: a speed-up of 2 at load 1 and of 0.5 at load 9-16, and the tokens/s ratios that follow from the times.
     */
    @Test
    void theReportSplitsEachArmByLoad() {
        ExperimentStats stats = new ExperimentStats(100);
        for (int i = 0; i < 3; i++) {
            // 21 tokens: the first after 0.1 s, then 20 more at the arm's inter-token latency
            stats.record(Experiment.ASSISTED, 21, 0.1 + 20 * 0.005, 0.1, 40, 30, 1.0);
            stats.record(Experiment.PLAIN, 21, 0.1 + 20 * 0.010, 0.1, 0, 0, 1.2);
            stats.record(Experiment.ASSISTED, 21, 0.2 + 20 * 0.030, 0.2, 40, 10, 11.6);
            stats.record(Experiment.PLAIN, 21, 0.1 + 20 * 0.015, 0.1, 0, 0, 12.0);
        }
        stats.record(Experiment.EXPLICIT, 5, 0.5, 0.1, 0, 0, 3.4);
        Map<String, Object> report = stats.report(true, 0.5);
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> byLoad = (List<Map<String, Object>>) report.get("by_load");
        assertEquals(List.of("1", "3-4", "9-16"), byLoad.stream().map(b -> b.get("load")).toList(), "buckets with requests, in order");

        Map<String, Object> alone = byLoad.get(0);
        assertEquals(3, arm(alone, Experiment.ASSISTED).get("requests"));
        assertEquals(3, arm(alone, Experiment.PLAIN).get("requests"));
        assertEquals(63 / 0.6, (double) arm(alone, Experiment.ASSISTED).get("tokens_per_second"), 1e-9);
        assertEquals(0.005, itlP50(arm(alone, Experiment.ASSISTED)), 1e-12);
        Map<String, Object> cmp = sub(alone, "assisted_vs_plain");
        assertEquals(0.9 / 0.6, (double) cmp.get("tokens_per_second_ratio"), 1e-9);
        assertEquals(1.0, (double) cmp.get("time_to_first_token_ratio"), 1e-9);
        assertEquals(2.0, (double) sub(cmp, "speedup").get("estimate"), 1e-9);

        Map<String, Object> explicitOnly = byLoad.get(1);
        assertEquals(Set.of(Experiment.EXPLICIT), sub(explicitOnly, "arms").keySet());
        assertFalse(explicitOnly.containsKey("assisted_vs_plain"), "no comparison without both experiment arms");

        Map<String, Object> busy = byLoad.get(2);
        assertEquals(0.030, itlP50(arm(busy, Experiment.ASSISTED)), 1e-12);
        assertEquals(0.015, itlP50(arm(busy, Experiment.PLAIN)), 1e-12);
        assertEquals(0.25, (double) arm(busy, Experiment.ASSISTED).get("acceptance_rate"), 1e-12);
        cmp = sub(busy, "assisted_vs_plain");
        assertEquals(1.2 / 2.4, (double) cmp.get("tokens_per_second_ratio"), 1e-9);
        assertEquals(2.0, (double) cmp.get("time_to_first_token_ratio"), 1e-9);
        assertEquals(0.5, (double) sub(cmp, "speedup").get("estimate"), 1e-9);

        // the overall figures still cover every request of an arm
        assertEquals(6, sub(report, "arms").get(Experiment.ASSISTED) instanceof Map<?, ?> m ? m.get("requests") : null);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> sub(Map<String, Object> m, String key) {
        return (Map<String, Object>) m.get(key);
    }

    private static Map<String, Object> arm(Map<String, Object> bucket, String arm) {
        return sub(sub(bucket, "arms"), arm);
    }

    private static double itlP50(Map<String, Object> arm) {
        return (double) sub(arm, "inter_token_latency_seconds").get("p50");
    }

    @Test
    void stableArmsFromKeys() {
        assertEquals(Experiment.unit("alice"), Experiment.unit("alice"));
        assertTrue(Experiment.unit("alice") >= 0 && Experiment.unit("alice") < 1);
    }
}
