package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ExperimentStatsTest {
    @Test
    void bootstrapIntervalCoversTheTrueSpeedup() {
        SplittableRandom r = new SplittableRandom(1);
        List<ExperimentStats.Sample> plain = new ArrayList<>();
        List<ExperimentStats.Sample> assisted = new ArrayList<>();
        for (int i = 0; i < 400; i++) {  // per-token latency 10 ms vs 5 ms, with noise
            plain.add(new ExperimentStats.Sample(50, 0, 0, 0.010 * (0.8 + 0.4 * r.nextDouble()), 0, 0));
            assisted.add(new ExperimentStats.Sample(50, 0, 0, 0.005 * (0.8 + 0.4 * r.nextDouble()), 100, 80));
        }
        Map<String, Object> s = ExperimentStats.speedup(assisted, plain);
        double est = (double) s.get("estimate");
        assertEquals(2.0, est, 0.05);
        assertTrue((double) s.get("ci95_low") < est && est < (double) s.get("ci95_high"));
        assertTrue((double) s.get("ci95_low") > 1.9 && (double) s.get("ci95_high") < 2.1, s.toString());
    }

    @Test
    void stableArmsFromKeys() {
        assertEquals(Experiment.unit("alice"), Experiment.unit("alice"));
        assertTrue(Experiment.unit("alice") >= 0 && Experiment.unit("alice") < 1);
    }
}
