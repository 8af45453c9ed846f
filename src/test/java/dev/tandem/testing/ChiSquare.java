package dev.tandem.testing;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The sampling-exactness tests' statistic. */
public final class ChiSquare {
    private ChiSquare() {
    }

    /**
     * Chi-square test of homogeneity for two samples (of any sizes); categories with fewer than 10
     * observations in both together are pooled. Returns {statistic, degrees of freedom, critical
     * value at p = 0.001} (Wilson-Hilferty approximation of the chi-square quantile).
     */
    public static double[] homogeneity(Map<String, Integer> x, Map<String, Integer> y) {
        Set<String> keys = new HashSet<>(x.keySet());
        keys.addAll(y.keySet());
        List<int[]> cells = new ArrayList<>();
        int[] pooled = {0, 0};
        for (String k : keys) {
            int a = x.getOrDefault(k, 0);
            int b = y.getOrDefault(k, 0);
            if (a + b < 10) {
                pooled[0] += a;
                pooled[1] += b;
            } else {
                cells.add(new int[] {a, b});
            }
        }
        if (pooled[0] + pooled[1] > 0) {
            cells.add(pooled);
        }
        double nx = x.values().stream().mapToInt(Integer::intValue).sum();
        double ny = y.values().stream().mapToInt(Integer::intValue).sum();
        double stat = 0;
        for (int[] c : cells) {
            double total = c[0] + c[1];
            double ex = total * nx / (nx + ny);
            double ey = total * ny / (nx + ny);
            stat += (c[0] - ex) * (c[0] - ex) / ex + (c[1] - ey) * (c[1] - ey) / ey;
        }
        double df = cells.size() - 1;
        double z = 3.090;  // standard normal quantile for p = 0.001
        double h = 2.0 / (9 * df);
        double critical = df * Math.pow(1 - h + z * Math.sqrt(h), 3);
        return new double[] {stat, df, critical};
    }
}
