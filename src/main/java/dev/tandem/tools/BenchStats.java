package dev.tandem.tools;

import java.util.Arrays;
import java.util.Locale;

/** The small statistics the benchmark CLIs share: medians, a step-time summary, greedy argmax. */
final class BenchStats {
    private BenchStats() {
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    /** "step ms median … p10 … p90 … (… tokens/s)" over per-step milliseconds. */
    static String summary(double[] stepMs) {
        double[] s = stepMs.clone();
        Arrays.sort(s);
        int n = s.length;
        return String.format(Locale.ROOT, "step ms median %.3f p10 %.3f p90 %.3f (%.0f tokens/s)", s[n / 2], s[n / 10],
                s[n * 9 / 10], 1000 / s[n / 2]);
    }

    static int argmax(float[] row) {
        int b = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[b]) {
                b = i;
            }
        }
        return b;
    }
}
