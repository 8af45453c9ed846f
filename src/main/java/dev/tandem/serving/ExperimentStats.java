package dev.tandem.serving;

import jakarta.enterprise.context.ApplicationScoped;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Per-arm samples of recent requests and the experiment's report: throughput, latency
 * percentiles, acceptance, and the estimated speed-up of assisted over plain decoding with a
 * bootstrap confidence interval. Assisted decoding is lossless, so the experiment measures cost
 * and latency only: both arms produce text from the same distribution.
 */
@ApplicationScoped
public class ExperimentStats {
    /** One request: tokens generated, decode seconds (after the first token), latencies, draft counters. */
    record Sample(int tokens, double e2e, double ttft, double itl, int drafted, int accepted) {
    }

    private final int capacity;
    private final Map<String, List<Sample>> arms = new LinkedHashMap<>();

    ExperimentStats(TandemConfig config) {
        this.capacity = config.experiment().samples();
    }

    public synchronized void record(String arm, int tokens, double e2eSeconds, double ttftSeconds, int drafted, int accepted) {
        List<Sample> s = arms.computeIfAbsent(arm, a -> new ArrayList<>());
        if (s.size() == capacity) {
            s.remove(0);
        }
        double itl = tokens > 1 ? Math.max(0, e2eSeconds - ttftSeconds) / (tokens - 1) : 0;
        s.add(new Sample(tokens, e2eSeconds, ttftSeconds, itl, drafted, accepted));
    }

    /** The report for {@code GET /v1/experiments/assisted}. */
    public synchronized Map<String, Object> report(boolean enabled, double share) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("enabled", enabled);
        out.put("assisted_share", share);
        out.put("note", "Assisted decoding is lossless (the output distribution is the target's), so the arms differ"
                + " only in cost and latency.");
        Map<String, Object> perArm = new LinkedHashMap<>();
        for (Map.Entry<String, List<Sample>> e : arms.entrySet()) {
            perArm.put(e.getKey(), arm(e.getValue()));
        }
        out.put("arms", perArm);
        List<Sample> a = arms.getOrDefault(Experiment.ASSISTED, List.of());
        List<Sample> p = arms.getOrDefault(Experiment.PLAIN, List.of());
        if (a.size() >= 2 && p.size() >= 2) {
            out.put("speedup", speedup(a, p));
        }
        return out;
    }

    private static Map<String, Object> arm(List<Sample> s) {
        Map<String, Object> m = new LinkedHashMap<>();
        long tokens = s.stream().mapToLong(Sample::tokens).sum();
        double seconds = s.stream().mapToDouble(Sample::e2e).sum();
        long drafted = s.stream().mapToLong(Sample::drafted).sum();
        long accepted = s.stream().mapToLong(Sample::accepted).sum();
        m.put("requests", s.size());
        m.put("tokens", tokens);
        m.put("tokens_per_second", seconds == 0 ? 0 : tokens / seconds);
        m.put("time_to_first_token_seconds", percentiles(s.stream().mapToDouble(Sample::ttft).toArray()));
        m.put("inter_token_latency_seconds", percentiles(s.stream().filter(x -> x.tokens() > 1).mapToDouble(Sample::itl).toArray()));
        m.put("draft_tokens", drafted);
        m.put("accepted_tokens", accepted);
        m.put("acceptance_rate", drafted == 0 ? null : (double) accepted / drafted);
        return m;
    }

    private static Map<String, Double> percentiles(double[] v) {
        Map<String, Double> m = new LinkedHashMap<>();
        if (v.length == 0) {
            return m;
        }
        double[] s = v.clone();
        Arrays.sort(s);
        m.put("p50", s[(int) Math.min(s.length - 1, Math.floor(0.50 * s.length))]);
        m.put("p90", s[(int) Math.min(s.length - 1, Math.floor(0.90 * s.length))]);
        m.put("p99", s[(int) Math.min(s.length - 1, Math.floor(0.99 * s.length))]);
        return m;
    }

    /**
     * Speed-up = mean inter-token latency of plain / that of assisted (per-token decode cost; the
     * prefill is the same in both arms), with a 95% bootstrap interval (2,000 resamples of each arm's
     * requests, fixed seed).
     */
    static Map<String, Object> speedup(List<Sample> assisted, List<Sample> plain) {
        double[] a = assisted.stream().filter(x -> x.tokens() > 1).mapToDouble(Sample::itl).toArray();
        double[] p = plain.stream().filter(x -> x.tokens() > 1).mapToDouble(Sample::itl).toArray();
        Map<String, Object> m = new LinkedHashMap<>();
        if (a.length < 2 || p.length < 2) {
            return m;
        }
        double estimate = mean(p) / mean(a);
        SplittableRandom rnd = new SplittableRandom(12345);
        double[] boot = new double[2000];
        for (int b = 0; b < boot.length; b++) {
            boot[b] = resampledMean(p, rnd) / resampledMean(a, rnd);
        }
        Arrays.sort(boot);
        m.put("estimate", estimate);
        m.put("ci95_low", boot[(int) (0.025 * boot.length)]);
        m.put("ci95_high", boot[(int) (0.975 * boot.length) - 1]);
        m.put("definition", "mean inter-token latency (plain) / mean inter-token latency (assisted)");
        return m;
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).average().orElse(0);
    }

    private static double resampledMean(double[] v, SplittableRandom rnd) {
        double sum = 0;
        for (int i = 0; i < v.length; i++) {
            sum += v[rnd.nextInt(v.length)];
        }
        return sum / v.length;
    }
}
