package dev.tandem.generation;

import java.util.List;

/** Finds the first stop string in a growing text, looking only at what the last piece could complete. */
final class StopStrings {
    private final List<String> stops;
    private final int longest;

    StopStrings(List<String> stops) {
        this.stops = stops;
        this.longest = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    /** Length of the longest end of {@code text} that is the start of a stop string (text a stream must hold back). */
    int heldBack(CharSequence text) {
        int n = text.length();
        int best = 0;
        for (String s : stops) {
            for (int len = Math.min(s.length() - 1, n); len > best; len--) {
                if (s.regionMatches(0, text.subSequence(n - len, n).toString(), 0, len)) {
                    best = len;
                    break;
                }
            }
        }
        return best;
    }

    /** Index in {@code text} where a stop string starts, considering matches that end after {@code before}; -1 if none. */
    int find(CharSequence text, int before) {
        if (stops.isEmpty()) {
            return -1;
        }
        int from = Math.max(0, before - longest + 1);
        String tail = text.subSequence(from, text.length()).toString();
        int best = -1;
        for (String s : stops) {
            int i = tail.indexOf(s);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best < 0 ? -1 : from + best;
    }
}
