package dev.tandem.memory;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Memory sizes as configured and as printed. Parsing accepts a number of bytes ({@code 1048576}),
 * a number with a binary unit as Quarkus and the JVM write them ({@code 512M}, {@code 2G},
 * {@code 64k}; K = 1024, as in -Xmx) or as Kubernetes writes them ({@code 512Mi}, {@code 2Gi}).
 * {@code 500MB} is refused as ambiguous (decimal or binary?).
 */
public final class ByteSize {
    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([kKmMgGtT]i?)?[bB]?");

    private ByteSize() {
    }

    /** Bytes in {@code text}; IllegalArgumentException (naming the accepted forms) otherwise. */
    public static long parse(String text) {
        String t = text == null ? "" : text.trim();
        Matcher m = SIZE.matcher(t);
        if (!m.matches() || t.toUpperCase(Locale.ROOT).matches(".*[KMGT]B")) {
            throw new IllegalArgumentException("'" + text + "' is not a memory size: use bytes (1048576) or a number with"
                    + " K, M, G or T (binary: 512M = 512 MiB; Kubernetes' 512Mi is accepted too)");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "" : m.group(2).substring(0, 1).toUpperCase(Locale.ROOT);
        int shift = switch (unit) {
            case "K" -> 10;
            case "M" -> 20;
            case "G" -> 30;
            case "T" -> 40;
            default -> 0;
        };
        if (shift > 0 && n > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("'" + text + "' is too large");
        }
        return n << shift;
    }

    /** {@code 83492864} → "79.6 MiB" (bytes below 1 KiB as "812 B"). */
    public static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
