package dev.tandem.model;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Applies Jinja2's whitespace rules to a template's source, as transformers' environment has them
 * ({@code trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False}), so that Jinjava,
 * rendering the result with no whitespace handling of its own, outputs the same text as Jinja2.
 *
 * <p>Jinjava's own {@code lstripBlocks} is not Jinja2's: it strips the spaces before any block tag,
 * also in mid-line ({@code "a {% if x %}"} loses its space), not tabs, and it knows no {@code +}
 * marker; and it keeps the template's final newline and its {@code \r\n}. The rules here follow
 * Jinja2's lexer ({@code jinja2/lexer.py}, {@code tokeniter}):
 * <ul>
 *   <li>line ends {@code \r\n} and {@code \r} become {@code \n}, and one final newline is dropped;</li>
 *   <li>{@code {%-}, {@code {#-}, {@code {{-} strip all whitespace before the tag; {@code -%}},
 *       {@code -#}}, {@code -}}} all whitespace after it;</li>
 *   <li>lstrip_blocks: before a block or comment tag without a marker, the spaces and tabs between
 *       the start of its line and the tag go (only when nothing else precedes it on that line);</li>
 *   <li>trim_blocks: one newline right after a block or comment tag without a marker goes (not
 *       after {@code {% raw %}}, as in Jinja2);</li>
 *   <li>{@code {%+} and {@code +%}} keep the whitespace.</li>
 * </ul>
 * The markers are removed, so the tags Jinjava sees are plain. Text inside {@code {% raw %}} is
 * kept as it is. Only the operator's template goes through here, once; messages never do.
 */
final class Jinja2Whitespace {
    private static final Pattern LINE_END = Pattern.compile("\r\n|\r");
    private static final Pattern RAW_BEGIN = Pattern.compile("\\{%([-+]?)\\s*raw\\s*(-?)%}");
    private static final Pattern RAW_END = Pattern.compile("\\{%([-+]?)\\s*endraw\\s*([-+]?)%}");

    private final String s;
    private final StringBuilder out;
    private int pos;
    /** Jinja2's line_starting: the text about to be read begins a line. */
    private boolean lineStarting = true;

    private Jinja2Whitespace(String source) {
        String normalized = LINE_END.matcher(source).replaceAll("\n");
        this.s = normalized.endsWith("\n") ? normalized.substring(0, normalized.length() - 1) : normalized;
        this.out = new StringBuilder(s.length());
    }

    /** The template source with Jinja2's whitespace rules applied and its whitespace markers removed. */
    static String apply(String source) {
        Jinja2Whitespace w = new Jinja2Whitespace(source);
        w.run();
        return w.out.toString();
    }

    private void run() {
        while (pos < s.length()) {
            int start = nextTagStart(pos);
            if (start < 0) {
                out.append(s, pos, s.length());
                return;
            }
            char kind = s.charAt(start + 1);  // '{', '%' or '#'
            char open = start + 2 < s.length() ? s.charAt(start + 2) : 0;
            boolean openMarker = open == '-' || open == '+';
            String text = s.substring(pos, start);
            if (open == '-') {
                text = PythonStrings.strip(text, null, false, true);
            } else if (open != '+' && kind != '{') {
                text = lstrip(text);
            }
            out.append(text);
            Matcher raw = RAW_BEGIN.matcher(s).region(start, s.length());
            if (kind == '%' && raw.lookingAt()) {
                if (!rawBlock(raw)) {
                    return;
                }
                continue;
            }
            int end = tagEnd(start, kind);
            if (end < 0) {  // unterminated: left as it is for Jinjava to report
                out.append(s, start, s.length());
                return;
            }
            char close = kind == '{' ? (s.charAt(end - 3) == '-' ? '-' : 0) : s.charAt(end - 3);
            boolean closeMarker = close == '-' || close == '+';
            out.append(s, start, start + 2)
                    .append(s, start + (openMarker ? 3 : 2), end - (closeMarker ? 3 : 2))
                    .append(s, end - 2, end);
            pos = end;
            afterTag(close, kind != '{');
        }
    }

    /** A raw block: its text is kept, but lstrip/trim apply around its tags. False if it does not end. */
    private boolean rawBlock(Matcher begin) {
        Matcher end = RAW_END.matcher(s);
        if (!end.find(begin.end())) {
            out.append(s, begin.start(), s.length());
            return false;
        }
        out.append("{% raw %}");
        pos = begin.end();
        afterTag("-".equals(begin.group(2)) ? '-' : 0, false);  // Jinja2 trims no newline after {% raw %}
        String text = s.substring(pos, end.start());
        if ("-".equals(end.group(1))) {
            text = PythonStrings.strip(text, null, false, true);
        } else if (!"+".equals(end.group(1))) {
            text = lstrip(text);
        }
        out.append(text).append("{% endraw %}");
        pos = end.end();
        afterTag(end.group(2).isEmpty() ? 0 : end.group(2).charAt(0), true);
        return true;
    }

    /** After a tag's end: {@code -} eats all whitespace, no marker a newline (trim_blocks, for blocks and comments). */
    private void afterTag(char close, boolean trims) {
        if (close == '-') {
            int ws = pos;
            while (ws < s.length() && PythonStrings.isSpace(s.charAt(ws))) {
                ws++;
            }
            lineStarting = ws > pos && s.charAt(ws - 1) == '\n';
            pos = ws;
        } else if (close != '+' && trims && pos < s.length() && s.charAt(pos) == '\n') {
            pos++;
            lineStarting = true;
        } else {
            lineStarting = false;
        }
    }

    /** lstrip_blocks: the text minus the whitespace between its last line start and the tag, if only whitespace is there. */
    private String lstrip(String text) {
        int lineStart = text.lastIndexOf('\n') + 1;
        if ((lineStart > 0 || lineStarting) && lineStart < text.length()
                && PythonStrings.strip(text.substring(lineStart), null, true, false).isEmpty()) {
            return text.substring(0, lineStart);
        }
        return text;
    }

    private int nextTagStart(int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    /** Just past the tag's closing delimiter, skipping string literals in expressions and blocks; -1 if none. */
    private int tagEnd(int start, char kind) {
        if (kind == '#') {
            int i = s.indexOf("#}", start + 2);
            return i < 0 ? -1 : i + 2;
        }
        String closing = kind == '%' ? "%}" : "}}";
        for (int i = start + 2; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                for (i++; i < s.length() && s.charAt(i) != c; i++) {
                    if (s.charAt(i) == '\\') {
                        i++;
                    }
                }
            } else if (s.startsWith(closing, i)) {
                return i + 2;
            }
        }
        return -1;
    }
}
