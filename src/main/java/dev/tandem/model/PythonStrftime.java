package dev.tandem.model;

import java.time.DayOfWeek;
import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.time.temporal.IsoFields;
import java.util.Locale;

/**
 * Python's {@code datetime.now().strftime(format)} as transformers' {@code strftime_now} computes it
 * on Linux: glibc's strftime in the C locale (English names), on a naive local time, so {@code %Z}
 * and {@code %z} are empty. glibc's flags {@code -} (no padding), {@code _} (spaces) and {@code 0}
 * apply to numbers ({@code %-d} is "7"); an unknown directive is copied as it is, as glibc does.
 */
final class PythonStrftime {
    private PythonStrftime() {
    }

    static String format(LocalDateTime t, String format) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            int start = i;
            char flag = 0;
            if ("-_0".indexOf(format.charAt(i + 1)) >= 0 && i + 2 < format.length()) {
                flag = format.charAt(++i);
            }
            String field = field(t, format.charAt(++i), flag);
            out.append(field != null ? field : format.substring(start, i + 1));
        }
        return out.toString();
    }

    /** One directive's text, or null when glibc does not know it. */
    private static String field(LocalDateTime t, char directive, char flag) {
        int weekday = t.getDayOfWeek().getValue() % 7;  // Sunday 0
        int yearDay = t.getDayOfYear() - 1;
        return switch (directive) {
            case 'a' -> t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.US);
            case 'A' -> t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.US);
            case 'b', 'h' -> t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US);
            case 'B' -> t.getMonth().getDisplayName(TextStyle.FULL, Locale.US);
            case 'c' -> format(t, "%a %b %e %H:%M:%S %Y");
            case 'C' -> number(t.getYear() / 100, 2, '0', flag);
            case 'd' -> number(t.getDayOfMonth(), 2, '0', flag);
            case 'D', 'x' -> format(t, "%m/%d/%y");
            case 'e' -> number(t.getDayOfMonth(), 2, ' ', flag);
            case 'F' -> format(t, "%Y-%m-%d");
            case 'G' -> number(t.get(IsoFields.WEEK_BASED_YEAR), 1, '0', flag);
            case 'g' -> number(t.get(IsoFields.WEEK_BASED_YEAR) % 100, 2, '0', flag);
            case 'H' -> number(t.getHour(), 2, '0', flag);
            case 'I' -> number((t.getHour() + 11) % 12 + 1, 2, '0', flag);
            case 'j' -> number(yearDay + 1, 3, '0', flag);
            case 'k' -> number(t.getHour(), 2, ' ', flag);
            case 'l' -> number((t.getHour() + 11) % 12 + 1, 2, ' ', flag);
            case 'm' -> number(t.getMonthValue(), 2, '0', flag);
            case 'M' -> number(t.getMinute(), 2, '0', flag);
            case 'n' -> "\n";
            case 'p' -> t.getHour() < 12 ? "AM" : "PM";
            case 'P' -> t.getHour() < 12 ? "am" : "pm";
            case 'r' -> format(t, "%I:%M:%S %p");
            case 'R' -> format(t, "%H:%M");
            case 'S' -> number(t.getSecond(), 2, '0', flag);
            case 't' -> "\t";
            case 'T', 'X' -> format(t, "%H:%M:%S");
            case 'u' -> number(t.getDayOfWeek().getValue(), 1, '0', flag);
            case 'U' -> number((yearDay + 7 - weekday) / 7, 2, '0', flag);
            case 'V' -> number(t.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR), 2, '0', flag);
            case 'w' -> number(weekday, 1, '0', flag);
            case 'W' -> number((yearDay + 7 - (t.getDayOfWeek().getValue() - DayOfWeek.MONDAY.getValue())) / 7, 2, '0', flag);
            case 'y' -> number(t.getYear() % 100, 2, '0', flag);
            case 'Y' -> number(t.getYear(), 1, '0', flag);
            case 'z', 'Z' -> "";  // a naive time has no zone
            case '%' -> "%";
            default -> null;
        };
    }

    private static String number(int n, int width, char pad, char flag) {
        String digits = Integer.toString(n);
        if (flag == '-') {
            return digits;
        }
        char p = flag == '_' ? ' ' : flag == '0' ? '0' : pad;
        return String.valueOf(p).repeat(Math.max(0, width - digits.length())) + digits;
    }
}
