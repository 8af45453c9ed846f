package dev.tandem.serving;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
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
 *
 * <p>The report also splits each arm by load, the number of sequences decoding together when the
 * request ran ({@link #loadBucket}): assisted decoding buys latency with extra compute, which pays on
 * an idle server and stops paying as the batch fills, so an operator needs the comparison per load,
 * not only overall.
 */
@ApplicationScoped
public class ExperimentStats {
    /**
     * One request: tokens generated, latencies (end to end, first token, mean inter-token), draft counters, and the
     * load it ran under (mean sequences per step over the steps it took part in).
     */
    record Sample(int tokens, double e2e, double ttft, double itl, int drafted, int accepted, double load) {
    }

    /** The load buckets of the report, in order: a bucket holds mean loads that round to at most its upper bound. */
    static final List<String> LOAD_BUCKETS = List.of("1", "2", "3-4", "5-8", "9-16", "17+");

    /**
     * The bucket of a mean load (sequences per step, the request itself included): rounded to the nearest whole
     * number, then 1, 2, 3-4, 5-8, 9-16 or 17+. Below 1 (no step at all) counts as 1.
     */
    static String loadBucket(double meanLoad) {
        long n = Math.round(meanLoad);
        if (n <= 1) {
            return "1";
        }
        if (n == 2) {
            return "2";
        }
        if (n <= 4) {
            return "3-4";
        }
        if (n <= 8) {
            return "5-8";
        }
        return n <= 16 ? "9-16" : "17+";
    }

    private final int capacity;
    private final Map<String, List<Sample>> arms = new LinkedHashMap<>();

    @Inject
    ExperimentStats(TandemConfig config) {
        this(config.experiment().samples());
    }

    /** Keeps the latest {@code capacity} requests per arm. */
    ExperimentStats(int capacity) {
        this.capacity = capacity;
    }

    /** Records a finished request of {@code arm} that ran under a mean load of {@code meanLoad} sequences per step. */
    public synchronized void record(String arm, int tokens, double e2eSeconds, double ttftSeconds, int drafted, int accepted,
                                    double meanLoad) {
        List<Sample> s = arms.computeIfAbsent(arm, a -> new ArrayList<>());
        if (s.size() == capacity) {
            s.remove(0);
        }
        double itl = tokens > 1 ? Math.max(0, e2eSeconds - ttftSeconds) / (tokens - 1) : 0;
        s.add(new Sample(tokens, e2eSeconds, ttftSeconds, itl, drafted, accepted, meanLoad));
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
        out.put("by_load", byLoad());
        return out;
    }

    /**
     * Each load bucket that has requests, in order: {@code load}, per-arm figures as in {@code arms}, and, when both
     * experiment arms have requests there, {@code assisted_vs_plain}: the ratios of assisted to plain tokens/s and
     * mean TTFT, and the speed-up (plain / assisted mean inter-token latency, with its bootstrap interval once each arm
     * has two requests of more than one token there). Assisted pays in a bucket while the speed-up is above 1.
     */
    private List<Map<String, Object>> byLoad() {
        List<Map<String, Object>> out = new ArrayList<>();
        for (String bucket : LOAD_BUCKETS) {
            Map<String, List<Sample>> inBucket = new LinkedHashMap<>();
            for (Map.Entry<String, List<Sample>> e : arms.entrySet()) {
                List<Sample> s = e.getValue().stream().filter(x -> loadBucket(x.load()).equals(bucket)).toList();
                if (!s.isEmpty()) {
                    inBucket.put(e.getKey(), s);
                }
            }
            if (inBucket.isEmpty()) {
                continue;
            }
            Map<String, Object> b = new LinkedHashMap<>();
            b.put("load", bucket);
            Map<String, Object> perArm = new LinkedHashMap<>();
            inBucket.forEach((arm, s) -> perArm.put(arm, arm(s)));
            b.put("arms", perArm);
            List<Sample> a = inBucket.get(Experiment.ASSISTED);
            List<Sample> p = inBucket.get(Experiment.PLAIN);
            if (a != null && p != null) {
                b.put("assisted_vs_plain", compare(a, p));
            }
            out.add(b);
        }
        return out;
    }

    /** Assisted against plain within one load bucket; a ratio is null when the plain figure is 0. */
    static Map<String, Object> compare(List<Sample> assisted, List<Sample> plain) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokens_per_second_ratio", ratio(tokensPerSecond(assisted), tokensPerSecond(plain)));
        m.put("time_to_first_token_ratio", ratio(mean(assisted.stream().mapToDouble(Sample::ttft).toArray()),
                mean(plain.stream().mapToDouble(Sample::ttft).toArray())));
        Map<String, Object> speedup = speedup(assisted, plain);
        if (!speedup.isEmpty()) {
            m.put("speedup", speedup);
        }
        return m;
    }

    private static Double ratio(double a, double b) {
        return b == 0 ? null : a / b;
    }

    private static double tokensPerSecond(List<Sample> s) {
        double seconds = s.stream().mapToDouble(Sample::e2e).sum();
        return seconds == 0 ? 0 : s.stream().mapToLong(Sample::tokens).sum() / seconds;
    }

    private static Map<String, Object> arm(List<Sample> s) {
        Map<String, Object> m = new LinkedHashMap<>();
        long tokens = s.stream().mapToLong(Sample::tokens).sum();
        long drafted = s.stream().mapToLong(Sample::drafted).sum();
        long accepted = s.stream().mapToLong(Sample::accepted).sum();
        m.put("requests", s.size());
        m.put("tokens", tokens);
        m.put("tokens_per_second", tokensPerSecond(s));
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
