package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The pieces of transformers' Jinja2 environment ChatTemplate reproduces, one by one: each expected
 * text is what Python's Jinja2 renders, set up as ../shared/chat-templates/render.py sets it up
 * (transformers' environment, strftime_now at 2025-03-07 09:05:00), over one user message
 * {@code " Hi\u00a0there \n"} (a no-break space: Python's whitespace, not Java's).
 */
class ChatTemplateJinja2Test {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<ChatTemplate.Message> MESSAGES = List.of(new ChatTemplate.Message("user", " Hi\u00a0there \n"));

    static Stream<Arguments> rendersOfPythonsJinja2() {
        return Stream.of(
                Arguments.of("{{ messages[0].content.strip() }}|{{ messages[0].content.lstrip() }}|{{ messages[0].content.rstrip() }}|",
                        "Hi\u00a0there|Hi\u00a0there \n| Hi\u00a0there|"),
                Arguments.of("{{ 'xxhixx'.strip('x') }}|{{ '\n\nhi\n'.lstrip('\n') }}|{{ 'ab.cab'.rstrip('abc') }}",
                        "hi|hi\n|ab."),
                Arguments.of("{{ 'a.b.c'.split('.') | tojson }}{{ 'a.b.c'.split('.', 1) | tojson }}{{ 'a.b.c'.split(sep='.', maxsplit=1) | tojson }}{{ '  a  b '.split() | tojson }}{{ '  a  b '.split(none, 1) | tojson }}{{ 'a,,b'.split(',') | tojson }}{{ 'a|b'.split('|')[-1] }}",
                        "[\"a\", \"b\", \"c\"][\"a\", \"b.c\"][\"a\", \"b.c\"][\"a\", \"b\"][\"a\", \"b \"][\"a\", \"\", \"b\"]b"),
                Arguments.of("{{ ['Hello'.startswith('He'), 'Hello'.startswith(('x', 'H')), 'Hello'.endswith('lo'), 'Hello'.startswith('l', 2), 'Hello'.endswith('l', 0, -1), 'Hello'.startswith('e')] | tojson }}",
                        "[true, true, true, true, true, false]"),
                Arguments.of("{{ 'hello wORLD'.upper() }}|{{ 'HeLLo'.lower() }}|{{ 'hello wORLD 3rd'.title() }}|{{ 'hELLO world'.capitalize() }}|{{ 'aaa'.replace('a', 'b') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'ab'.replace('', '-') }}|{{ ', '.join(['a', 'b']) }}",
                        "HELLO WORLD|hello|Hello World 3Rd|Hello world|bbb|bba|-a-b-|a, b"),
                Arguments.of("{{ 'h\u00e9llo'[1] }}{{ 'abc'[-1] }}[{{ 'abc'[5] }}]{{ 'a\ud83d\ude00b'[1] }}",
                        "\u00e9c[]\ud83d\ude00"),
                Arguments.of("{{ '  x  ' | trim }}|{{ messages[0].content | trim }}|{{ 'xxaxx' | trim('x') }}",
                        "x|Hi\u00a0there|a"),
                Arguments.of("{{ {'b': 1, 'a': [1, 2.5, none, true], 'c': {}, 'e': 0} | tojson }}",
                        "{\"b\": 1, \"a\": [1, 2.5, null, true], \"c\": {}, \"e\": 0}"),
                Arguments.of("{{ messages | tojson }}",
                        "[{\"role\": \"user\", \"content\": \" Hi\u00a0there \\n\"}]"),
                Arguments.of("{{ {'b': 1, 'a': [1, 2.5, none, true], 'c': {}, 'd': []} | tojson(indent=2) }}",
                        "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"c\": {},\n  \"d\": []\n}"),
                Arguments.of("{{ {'b': 1, 'a': 'x'} | tojson(sort_keys=true, separators=(',', ':')) }}",
                        "{\"a\":\"x\",\"b\":1}"),
                Arguments.of("{{ 'x' | tojson(false, 2) }}{{ [1, 2] | tojson(false, 0) }}",
                        "\"x\"[\n1,\n2\n]"),
                Arguments.of("{{ '\u00e9\ud83d\ude00 \"q\" \\\\ </tag>\t\u0001\u007f' | tojson }}|{{ '\u00e9\ud83d\ude00\u007f' | tojson(ensure_ascii=true) }}",
                        "\"\u00e9\ud83d\ude00 \\\"q\\\" \\\\ </tag>\\t\\u0001\u007f\"|\"\\u00e9\\ud83d\\ude00\\u007f\""),
                Arguments.of("{{ [1e16, 1e15, 0.0001, 0.00001, 1.5e-7, -2.0, 0.1, 123.456, 7] | tojson }}",
                        "[1e+16, 1000000000000000.0, 0.0001, 1e-05, 1.5e-07, -2.0, 0.1, 123.456, 7]"),
                Arguments.of("{{ [1, [2, {'a': 3}]] | tojson(indent='\t') }}",
                        "[\n\t1,\n\t[\n\t\t2,\n\t\t{\n\t\t\t\"a\": 3\n\t\t}\n\t]\n]"),
                Arguments.of("{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %j %p %I %y %w %u %U %W %e %-d %-m %%') }}|{{ strftime_now('%c|%x|%X|%Z|%z|%D|%F|%T|%R|%r|%G %g %V %C %k %l %h %P') }}",
                        "March 07, 2025|07 Mar 2025|2025-03-07 09:05:00 Fri Friday 066 AM 09 25 5 5 09 09  7 7 3 %|Fri Mar  7 09:05:00 2025|03/07/25|09:05:00|||03/07/25|2025-03-07|09:05:00|09:05|09:05:00 AM|2025 25 10 20  9  9 Mar am"),
                Arguments.of("{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                        "13"),
                Arguments.of("{% generation %}{{ messages[0].role }}{% endgeneration %}",
                        "user"),
                Arguments.of("{% for m in messages %}\n  {% if m.role == 'user' %}\n    [{{ m.role }}]\n  {% endif %}\n{% endfor %}\n{{- 'end' -}}\n  {#- comment -#}  \n!",
                        "    [user]\nend!"),
                Arguments.of("{{ bos_token }}{% if tools is none and documents is none %}none{% endif %}{% if add_generation_prompt %}+{% endif %}{{ eos_token }}",
                        "<s>none+</s>"),
                Arguments.of("a {% if true %}x{% endif %} {% if true %}y{% endif %}|\n   {% if true %}x{% endif %}|\n  b {% if true %}x{% endif %}|  {{ 'e' }}  {% if true %}x{% endif %}\n\t{% if true %}t{% endif %}",
                        "a x y|\nx|\n  b x|  e  xt"),
                Arguments.of("x {# c #} y\n  {# c #}\nz\n  {%+ if true %}p{% endif +%}\n{% if true %}\r\nq{% endif %}\r\n",
                        "x  y\nz\n  p\nq"),
                Arguments.of("{% for m in messages %}\n    {%- if m.role == 'user' -%}\n   [{{- m.role -}}]  \n  {%- endif %}\n{% endfor %}\n  {#- c #}{{ '}}' }}{{ \"%}\" }}\n",
                        "[user]}}%}"),
                Arguments.of("  {% raw %}\n  {{ x }} {% if %}\n  {% endraw %}\n{%- raw -%}  y  {%- endraw %}  \n{{ -1 }}{{-1}}{{+2}}\n\n",
                        "\n  {{ x }} {% if %}\ny  \n-112\n"));
    }

    @ParameterizedTest
    @MethodSource("rendersOfPythonsJinja2")
    void rendersAsPythonsJinja2(String source, String python, @TempDir Path dir) throws IOException {
        assertEquals(python, template(dir, source).render(MESSAGES, true));
    }

    @Test
    void strftimeNowReadsTheClockAtEachRender(@TempDir Path dir) throws IOException {
        ChatTemplate t = ChatTemplateTest.template(dir, "{{ strftime_now('%d %b %Y %H:%M') }}", JSON.createObjectNode(),
                ChatTemplate.Limits.DEFAULT);
        assertEquals("07 Mar 2025 09:05", t.render(MESSAGES, true));
        Clock newYear = Clock.fixed(LocalDateTime.of(2026, 1, 1, 0, 0).toInstant(ZoneOffset.UTC), ZoneOffset.UTC);
        ChatTemplate later = ChatTemplate.of(ModelDirectory.open(dir), ChatTemplate.Limits.DEFAULT, newYear).orElseThrow();
        assertEquals("01 Jan 2026 00:00", later.render(MESSAGES, true));
    }

    /**
     * Strings have Python's methods and no others: a Java method of String (regex split, repeat, ...)
     * or a misused Python one fails the render as in Jinja2, reported without internals.
     */
    @ParameterizedTest
    @ValueSource(strings = {"{{ 'a'.nope() }}", "{{ 'a'.getBytes() }}", "{{ 'a'.repeat(1000000000) }}",
            "{{ 'a'.matches('a') }}", "{{ 'a'.length() }}", "{{ 'a'.split('') }}", "{{ 'a'.strip(1) }}",
            "{{ 'a'.startswith(1) }}", "{{ ','.join([1]) }}", "{{ 'a'.replace('a') }}", "{{ 'a'.upper(1) }}",
            "{{ 'a'.split(foo=1) }}", "{{ {'a': 1}|tojson(nope=1) }}", "{{ 'a'|tojson(indent=[]) }}"})
    void aMisusedStringOrFilterFailsTheRender(String source, @TempDir Path dir) throws IOException {
        var e = assertThrows(IllegalArgumentException.class, () -> template(dir, source).render(MESSAGES, true));
        assertEquals("the model's chat template could not render these messages", e.getMessage());
    }

    /** Python's json.dumps refuses a cycle and (by recursion depth) very deep nesting; here neither overflows the stack. */
    @ParameterizedTest
    @ValueSource(strings = {"{% set d = {} %}{% do d.update({'x': d}) %}{{ d|tojson }}",
            "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson }}"})
    void tojsonStopsAtACycleOrDeepNesting(String source, @TempDir Path dir) throws IOException {
        var e = assertThrows(IllegalArgumentException.class, () -> template(dir, source).render(MESSAGES, true));
        assertEquals("the model's chat template could not render these messages", e.getMessage());
    }

    /** Special tokens: those the tokenizer config sets, as strings (AddedToken objects by their content); unset ones undefined. */
    @Test
    void specialTokensAreThoseTheConfigSets(@TempDir Path dir) throws IOException {
        var tokens = JSON.createObjectNode().put("bos_token", "<s>").putNull("pad_token").put("unk_token", "");
        tokens.putObject("eos_token").put("content", "</s>").put("special", true);
        tokens.putArray("additional_special_tokens").add("<a>").addObject().put("content", "<b>");
        ChatTemplate t = ChatTemplateTest.template(dir, "{{ bos_token }}{{ eos_token }}{{ additional_special_tokens|join(',') }}"
                + "{% if pad_token is defined or unk_token is defined or sep_token is defined %}!{% endif %}", tokens,
                ChatTemplate.Limits.DEFAULT);
        assertEquals("<s></s><a>,<b>", t.render(MESSAGES, true));
    }

    /**
     * Where Jinjava still renders otherwise than Jinja2, so none of the shared templates may rely on it
     * (none of those of ../shared/chat-templates does): Python prints True/False/None, Jinjava
     * true/false/nothing (and null/true inside a printed list); transformers passes tools=None,
     * which Jinja2 calls defined, Jinjava not (a null variable is undefined to it).
     * If Jinjava changes, this test says so, and ChatTemplate's notes need updating.
     */
    @Test
    void jinjavaStillDiffersHere(@TempDir Path dir) throws IOException {
        assertEquals("true|false|", template(dir, "{{ true }}|{{ false }}|{{ none }}").render(MESSAGES, true));  // Python: True|False|None
        assertEquals("[null, true, 'a']", template(dir, "{{ [none, true, 'a'] }}").render(MESSAGES, true));  // Python: [None, True, 'a']
        assertEquals("undefined", template(dir, "{% if tools is defined %}defined{% else %}undefined{% endif %}")
                .render(MESSAGES, true));  // Python: defined
    }

    @Test
    void messageContentCallingMethodsStaysText(@TempDir Path dir) throws IOException {
        String content = "{{ 'x'.upper() }}{{ strftime_now('%Y') }}{{ [1]|tojson }}{% generation %}g{% endgeneration %}";
        String out = template(dir, "{% for m in messages %}{{ m.content.strip() }}{% endfor %}")
                .render(List.of(new ChatTemplate.Message("user", "  " + content + "\n")), true);
        assertEquals(content, out);
        assertFalse(out.contains("2025"));
    }

    private static ChatTemplate template(Path dir, String source) throws IOException {
        return ChatTemplateTest.template(dir, source);
    }
}
