package dev.tandem.model;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code tojson} filter as transformers defines it for chat templates:
 * {@code tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)} is Python's
 * {@code json.dumps(x, ...)} with those arguments. It replaces Jinja's own (and Jinjava's) filter:
 * nothing is HTML-escaped, non-ASCII text stays as it is, keys keep their order, and the separators
 * are Python's ({@code ", "} and {@code ": "}, or {@code ","} between items once indented), so tool
 * schemas and arguments reach the model byte for byte as with transformers.
 */
final class PythonJson implements AdvancedFilter {
    /** Deeper nesting than any real value, shallow enough for the stack. */
    private static final int MAX_DEPTH = 256;
    private static final List<String> PARAMETERS = List.of("ensure_ascii", "indent", "separators", "sort_keys");

    @Override
    public String getName() {
        return "tojson";
    }

    @Override
    public Object filter(Object value, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object[] given = new Object[PARAMETERS.size()];
        if (args.length > given.length) {
            throw new PythonStrings.TemplateTypeError("tojson takes at most " + given.length + " arguments");
        }
        System.arraycopy(args, 0, given, 0, args.length);
        kwargs.forEach((name, v) -> {
            int i = PARAMETERS.indexOf(name);
            if (i < 0) {
                throw new PythonStrings.TemplateTypeError("tojson has no argument '" + name + "'");
            }
            given[i] = v;
        });
        String indent = indent(given[1]);
        String itemSeparator = indent == null ? ", " : ",";
        String keySeparator = ": ";
        if (given[2] != null) {
            List<?> pair = given[2] instanceof Collection<?> c ? List.copyOf(c) : List.of();
            if (pair.size() != 2 || !(pair.get(0) instanceof String) || !(pair.get(1) instanceof String)) {
                throw new PythonStrings.TemplateTypeError("tojson: separators must be two strings");
            }
            itemSeparator = (String) pair.get(0);
            keySeparator = (String) pair.get(1);
        }
        return dumps(value, truthy(given[0]), indent, itemSeparator, keySeparator, truthy(given[3]));
    }

    /**
     * Python's {@code json.dumps}.
     *
     * @param indent null for one line; else the text of one level of indentation
     */
    static String dumps(Object value, boolean ensureAscii, String indent, String itemSeparator, String keySeparator,
            boolean sortKeys) {
        StringBuilder out = new StringBuilder();
        new Encoder(ensureAscii, indent, itemSeparator, keySeparator, sortKeys).encode(value, out, 0);
        return out.toString();
    }

    /** Python's reading of {@code indent}: a number of spaces (none when negative), or the string itself. */
    private static String indent(Object indent) {
        if (indent == null) {
            return null;
        }
        if (indent instanceof String s) {
            return s;
        }
        if (indent instanceof Long || indent instanceof Integer) {
            return " ".repeat((int) Math.max(0, Math.min(64, ((Number) indent).longValue())));
        }
        throw new PythonStrings.TemplateTypeError("tojson: indent must be a number or a string");
    }

    private static boolean truthy(Object o) {
        return o != null && !Boolean.FALSE.equals(o) && !(o instanceof Number n && n.doubleValue() == 0)
                && !(o instanceof String s && s.isEmpty());
    }

    private record Encoder(boolean ensureAscii, String indent, String itemSeparator, String keySeparator,
            boolean sortKeys, Set<Object> open) {
        Encoder(boolean ensureAscii, String indent, String itemSeparator, String keySeparator, boolean sortKeys) {
            this(ensureAscii, indent, itemSeparator, keySeparator, sortKeys, Collections.newSetFromMap(new IdentityHashMap<>()));
        }

        void encode(Object v, StringBuilder out, int level) {
            if (v == null) {
                out.append("null");
            } else if (v instanceof Boolean b) {
                out.append(b ? "true" : "false");
            } else if (v instanceof String s) {
                string(s, out);
            } else if (v instanceof Number n) {
                out.append(number(n));
            } else if (v instanceof Map<?, ?> m) {
                container(m, level, out, () -> object(m, out, level + 1));
            } else if (v instanceof Collection<?> || v instanceof Object[]) {
                List<?> items = v instanceof Collection<?> c ? new ArrayList<>(c) : List.of((Object[]) v);
                container(v, level, out, () -> array(items, out, level + 1));
            } else {
                throw new PythonStrings.TemplateTypeError("tojson: a value is not JSON serializable");
            }
        }

        private void container(Object c, int level, StringBuilder out, Runnable body) {
            if (level >= MAX_DEPTH || !open.add(c)) {
                throw new PythonStrings.TemplateTypeError("tojson: circular reference or nesting too deep");
            }
            body.run();
            open.remove(c);
        }

        private void array(List<?> items, StringBuilder out, int level) {
            if (items.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            for (int i = 0; i < items.size(); i++) {
                separate(out, i == 0, level);
                encode(items.get(i), out, level);
            }
            close(out, level).append(']');
        }

        private void object(Map<?, ?> m, StringBuilder out, int level) {
            if (m.isEmpty()) {
                out.append("{}");
                return;
            }
            List<Map.Entry<String, Object>> entries = new ArrayList<>();
            m.forEach((k, v) -> entries.add(new AbstractMap.SimpleEntry<>(key(k), v)));
            if (sortKeys) {
                entries.sort((a, b) -> compareCodePoints(a.getKey(), b.getKey()));
            }
            out.append('{');
            boolean first = true;
            for (Map.Entry<String, Object> e : entries) {
                separate(out, first, level);
                first = false;
                string(e.getKey(), out);
                out.append(keySeparator);
                encode(e.getValue(), out, level);
            }
            close(out, level).append('}');
        }

        private void separate(StringBuilder out, boolean first, int level) {
            if (!first) {
                out.append(itemSeparator);
            }
            if (indent != null) {
                out.append('\n').append(indent.repeat(level));
            }
        }

        private StringBuilder close(StringBuilder out, int level) {
            return indent == null ? out : out.append('\n').append(indent.repeat(level - 1));
        }

        /** Python turns keys that are numbers, booleans or None into strings; others are an error. */
        private static String key(Object k) {
            if (k instanceof String s) {
                return s;
            }
            if (k == null) {
                return "null";
            }
            if (k instanceof Boolean b) {
                return b ? "true" : "false";
            }
            if (k instanceof Number n) {
                return number(n);
            }
            throw new PythonStrings.TemplateTypeError("tojson: keys must be str, int, float, bool or None");
        }

        private void string(String s, StringBuilder out) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> {
                        if (c < 0x20 || (ensureAscii && c > 0x7e)) {  // UTF-16 units: a surrogate pair, as Python writes it
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        }
    }

    /** Python's {@code repr} of a number: integers as they are, floats in their shortest round-trip form. */
    static String number(Number n) {
        if (n instanceof Long || n instanceof Integer || n instanceof Short || n instanceof Byte || n instanceof BigInteger) {
            return n.toString();
        }
        double d = n.doubleValue();
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal shortest = new BigDecimal(Double.toString(d)).stripTrailingZeros();  // Java's shortest digits
        String digits = shortest.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - shortest.scale();  // of the first digit
        String sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
        }
        String plain = shortest.abs().toPlainString();
        return sign + (plain.contains(".") ? plain : plain + ".0");
    }

    private static int compareCodePoints(String a, String b) {
        return Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray());
    }
}
