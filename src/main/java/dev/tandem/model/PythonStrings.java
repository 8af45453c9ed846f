package dev.tandem.model;

import com.hubspot.jinjava.el.ext.NamedParameter;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.objects.collections.SizeLimitingPyList;
import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.IntPredicate;
import java.util.regex.Pattern;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Strings in a chat template behave as Python's {@code str}, because Hugging Face templates are
 * written for Jinja2 and call its methods: {@code content.split('</think>')[-1].lstrip('\n')},
 * {@code content.strip()}, {@code role.startswith('tool')}. Jinjava hands such calls to the Java
 * {@link String}, which lacks most of them and gets the others subtly wrong ({@code split} takes a
 * regular expression, {@code strip} ignores no-break spaces).
 *
 * <p>This resolver sits before Jinjava's own and answers every method call on a string: the Python
 * methods templates use (those of {@link #METHODS}), with Python's semantics; any other name fails
 * the render, as an undefined attribute does in Jinja2 (so no Java method of {@code String} is
 * reachable from a template either). Indexing a string ({@code s[0]}, {@code s[-1]}) gives one
 * character as in Python. Nothing here evaluates a string: message content is only ever an argument
 * or the receiver, i.e. data.
 */
final class PythonStrings extends ELResolver {
    /** The {@code str} methods a template may call (those real Hugging Face templates use). */
    static final List<String> METHODS = List.of("strip", "lstrip", "rstrip", "split", "startswith", "endswith",
            "upper", "lower", "title", "capitalize", "replace", "join");

    private static final Pattern INDEX = Pattern.compile("-?[0-9]{1,9}");

    private final int maxListSize;

    /** @param maxListSize the size bound of the lists {@code split} returns, as for any list the template builds */
    PythonStrings(int maxListSize) {
        this.maxListSize = maxListSize;
    }

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof String s)) {
            return null;
        }
        context.setPropertyResolved(true);
        String name = String.valueOf(method);
        Args args = new Args(name, params == null ? new Object[0] : params);
        Object result = switch (name) {
            case "strip" -> strip(s, args.optionalString(0, "chars"), true, true);
            case "lstrip" -> strip(s, args.optionalString(0, "chars"), true, false);
            case "rstrip" -> strip(s, args.optionalString(0, "chars"), false, true);
            case "split" -> new SizeLimitingPyList(new ArrayList<>(split(s, args.optionalString(0, "sep"),
                    args.optionalInt(1, "maxsplit", -1))), maxListSize);
            case "startswith" -> affixes(args.get(0, "prefix"), name).stream()
                    .anyMatch(p -> slice(s, args.get(1, "start"), args.get(2, "end")).startsWith(p));
            case "endswith" -> affixes(args.get(0, "suffix"), name).stream()
                    .anyMatch(p -> slice(s, args.get(1, "start"), args.get(2, "end")).endsWith(p));
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> capitalize(s);
            case "replace" -> replace(s, args.string(0, "old"), args.string(1, "new"), args.optionalInt(2, "count", -1));
            case "join" -> join(s, args.get(0, "iterable"));
            default -> throw new TemplateTypeError("str has no method '" + name + "'");
        };
        args.checkAllUsed();
        return result;
    }

    /**
     * {@code s[i]}: the character at {@code i} (counted from the end when negative); none past the
     * end, as Jinja2 gives. (Jinjava passes the index as its text.)
     */
    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        if (!(base instanceof String s) || !(property instanceof Number || INDEX.matcher(String.valueOf(property)).matches())) {
            return null;
        }
        context.setPropertyResolved(true);
        long n = s.codePointCount(0, s.length());
        long i = property instanceof Number number ? number.longValue() : Long.parseLong(String.valueOf(property));
        if (i < 0) {
            i += n;
        }
        if (i < 0 || i >= n) {
            return null;
        }
        int at = s.offsetByCodePoints(0, (int) i);
        return s.substring(at, s.offsetByCodePoints(at, 1));
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return false;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }

    // ---- Python's str semantics ----

    /** Python's {@code str.isspace()} for one character (Unicode whitespace, no-break spaces and U+0085 included). */
    static boolean isSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85;
    }

    /** {@code strip}/{@code lstrip}/{@code rstrip}: whitespace, or any of {@code chars} when given. */
    static String strip(String s, String chars, boolean left, boolean right) {
        IntPredicate drop = chars == null ? PythonStrings::isSpace : cp -> chars.indexOf(Character.toString(cp)) >= 0;
        int start = 0;
        int end = s.length();
        while (left && start < end && drop.test(s.codePointAt(start))) {
            start += Character.charCount(s.codePointAt(start));
        }
        while (right && end > start && drop.test(s.codePointBefore(end))) {
            end -= Character.charCount(s.codePointBefore(end));
        }
        return s.substring(start, end);
    }

    /**
     * {@code split(sep=None, maxsplit=-1)}: at each literal {@code sep}; without one, at runs of
     * whitespace, ignoring it at both ends (after {@code maxsplit} splits the rest is one item).
     */
    static List<String> split(String s, String sep, long maxsplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            while (true) {
                while (i < s.length() && isSpace(s.codePointAt(i))) {
                    i += Character.charCount(s.codePointAt(i));
                }
                if (i >= s.length()) {
                    return out;
                }
                if (maxsplit >= 0 && out.size() == maxsplit) {
                    out.add(s.substring(i));
                    return out;
                }
                int j = i;
                while (j < s.length() && !isSpace(s.codePointAt(j))) {
                    j += Character.charCount(s.codePointAt(j));
                }
                out.add(s.substring(i, j));
                i = j;
            }
        }
        if (sep.isEmpty()) {
            throw new TemplateTypeError("split: empty separator");
        }
        int i = 0;
        for (int j; (maxsplit < 0 || out.size() < maxsplit) && (j = s.indexOf(sep, i)) >= 0; i = j + sep.length()) {
            out.add(s.substring(i, j));
        }
        out.add(s.substring(i));
        return out;
    }

    /** {@code replace(old, new, count=-1)}: the first {@code count} occurrences, all when negative. */
    static String replace(String s, String old, String replacement, long count) {
        if (count < 0) {
            return s.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int i = 0;
        for (long n = 0; n < count; n++) {
            int j = old.isEmpty() ? (i <= s.length() ? i : -1) : s.indexOf(old, i);
            if (j < 0) {
                break;
            }
            out.append(s, i, j).append(replacement);
            if (old.isEmpty()) {  // Python inserts before every character, then at the end
                if (j == s.length()) {
                    return out.toString();
                }
                int next = j + Character.charCount(s.codePointAt(j));
                out.append(s, j, next);
                i = next;
            } else {
                i = j + old.length();
            }
        }
        return out.append(s, i, s.length()).toString();
    }

    /** {@code title()}: each run of cased letters starts upper (title) case and goes on lower case. */
    static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            out.append(previousCased ? Character.toString(cp).toLowerCase(Locale.ROOT) : titleCase(cp));
            previousCased = Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    /** {@code capitalize()}: the first character title case, the rest lower case. */
    static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int first = Character.charCount(s.codePointAt(0));
        return titleCase(s.codePointAt(0)) + s.substring(first).toLowerCase(Locale.ROOT);
    }

    private static String titleCase(int cp) {
        return Character.toString(Character.toTitleCase(cp));
    }

    /** {@code sep.join(iterable)}: every item must be a string, as in Python. */
    static String join(String sep, Object iterable) {
        StringBuilder out = new StringBuilder();
        boolean first = true;
        for (Object item : items(iterable, "join")) {
            if (!(item instanceof String text)) {
                throw new TemplateTypeError("join: an item is not a string");
            }
            out.append(first ? "" : sep).append(text);
            first = false;
        }
        return out.toString();
    }

    /** {@code s[start:end]} by characters (code points), Python's rules for negative and out-of-range bounds. */
    static String slice(String s, Object start, Object end) {
        int n = s.codePointCount(0, s.length());
        int from = bound(start, 0, n);
        int to = bound(end, n, n);
        if (from >= to) {
            return "";
        }
        int a = s.offsetByCodePoints(0, from);
        return s.substring(a, s.offsetByCodePoints(a, to - from));
    }

    private static int bound(Object index, int none, int n) {
        if (index == null) {
            return none;
        }
        if (!(index instanceof Long || index instanceof Integer)) {
            throw new TemplateTypeError("slice indices must be integers");
        }
        long i = ((Number) index).longValue();
        return (int) Math.max(0, Math.min(n, i < 0 ? i + n : i));
    }

    /** A prefix or suffix argument: one string, or a tuple/list of them. */
    private static List<String> affixes(Object arg, String method) {
        if (arg instanceof String one) {
            return List.of(one);
        }
        List<String> all = new ArrayList<>();
        for (Object item : items(arg, method)) {
            if (!(item instanceof String text)) {
                throw new TemplateTypeError(method + ": the first argument must be a string or a tuple of strings");
            }
            all.add(text);
        }
        return all;
    }

    private static Iterable<?> items(Object iterable, String method) {
        if (iterable instanceof Collection<?> c) {
            return c;
        }
        if (iterable instanceof Object[] a) {
            return List.of(a);
        }
        if (iterable instanceof Map<?, ?> m) {
            return m.keySet();
        }
        throw new TemplateTypeError(method + ": the argument is not iterable");
    }

    /** A method's arguments, by position or by Python keyword, checked as Python would. */
    private static final class Args {
        private final String method;
        private final List<Object> positional = new ArrayList<>();
        private final List<NamedParameter> named = new ArrayList<>();
        private int used;

        Args(String method, Object[] params) {
            this.method = method;
            for (Object p : params) {
                if (p instanceof NamedParameter n) {
                    named.add(n);
                } else {
                    positional.add(p);
                }
            }
        }

        Object get(int position, String keyword) {
            used = Math.max(used, position + 1);
            if (position < positional.size()) {
                return positional.get(position);
            }
            for (NamedParameter n : named) {
                if (n.getName().equals(keyword)) {
                    return n.getValue();
                }
            }
            return null;
        }

        String string(int position, String keyword) {
            if (get(position, keyword) instanceof String s) {
                return s;
            }
            throw new TemplateTypeError(method + ": argument '" + keyword + "' must be a string");
        }

        String optionalString(int position, String keyword) {
            Object value = get(position, keyword);
            if (value == null || value instanceof String) {
                return (String) value;
            }
            throw new TemplateTypeError(method + ": argument '" + keyword + "' must be a string or none");
        }

        long optionalInt(int position, String keyword, long none) {
            Object value = get(position, keyword);
            if (value == null) {
                return none;
            }
            if (value instanceof Long || value instanceof Integer) {
                return ((Number) value).longValue();
            }
            throw new TemplateTypeError(method + ": argument '" + keyword + "' must be an integer");
        }

        /** More positional arguments than the method takes, or an unknown keyword, is an error, as in Python. */
        void checkAllUsed() {
            if (positional.size() > used) {
                throw new TemplateTypeError(method + " takes at most " + used + " arguments");
            }
            // keywords a method read were matched in get(); any other name is unknown to it
            for (NamedParameter n : named) {
                if (!KEYWORDS.getOrDefault(method, List.of()).contains(n.getName())) {
                    throw new TemplateTypeError(method + " has no argument '" + n.getName() + "'");
                }
            }
        }
    }

    /** The keyword arguments each method accepts (Python's names). */
    private static final Map<String, List<String>> KEYWORDS = Map.of("split", List.of("sep", "maxsplit"),
            "replace", List.of("count"), "trim", List.of("chars"));

    /** Jinja's {@code trim(value, chars=None)} filter: Python's {@code str(value).strip(chars)}. */
    static final class TrimFilter implements AdvancedFilter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object value, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Args a = new Args("trim", args);
            kwargs.forEach((k, v) -> a.named.add(new NamedParameter(k, v)));
            String chars = a.optionalString(0, "chars");
            a.checkAllUsed();
            String text = value instanceof String s ? s : value == null ? "None"
                    : value instanceof Boolean b ? (b ? "True" : "False") : String.valueOf(value);
            return strip(text, chars, true, true);
        }
    }

    /** A template called a string method wrongly (what Python raises as a TypeError or ValueError). */
    static final class TemplateTypeError extends RuntimeException {
        TemplateTypeError(String message) {
            super(message, null, false, false);
        }
    }
}
