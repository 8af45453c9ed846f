package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.testing.SharedModels;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

public class ChatTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * The local time ../shared/chat-templates/render.py gives strftime_now for the expected renders
     * (its FIXED_NOW, a naive 2025-03-07 09:05:00), so tests do not depend on today's date.
     */
    static final Clock RENDER_PY_CLOCK = Clock.fixed(LocalDateTime.of(2025, 3, 7, 9, 5, 0).toInstant(ZoneOffset.UTC),
            ZoneOffset.UTC);

    static ChatTemplate template(Path dir, String source) throws IOException {
        return template(dir, source, JSON.createObjectNode().put("bos_token", "<s>").put("eos_token", "</s>"),
                ChatTemplate.Limits.DEFAULT);
    }

    /** A model directory holding only what ChatTemplate reads: the template and its special tokens. */
    static ChatTemplate template(Path dir, String source, JsonNode specialTokens, ChatTemplate.Limits limits) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"num_hidden_layers\":1,\"max_position_embeddings\":8}");
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        Files.writeString(dir.resolve("model.onnx"), "x");
        ObjectNode cfg = JSON.createObjectNode().put("chat_template", source);
        specialTokens.properties().forEach(e -> cfg.set(e.getKey(), e.getValue()));
        Files.writeString(dir.resolve("tokenizer_config.json"), cfg.toString());
        return ChatTemplate.of(ModelDirectory.open(dir), limits, RENDER_PY_CLOCK).orElseThrow();
    }

    static ChatTemplate.Message msg(String role, String content) {
        return new ChatTemplate.Message(role, content);
    }

    @Test
    void rendersALlamaStyleTemplate(@TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}"
                + "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
                + "{% if add_generation_prompt %}[assistant]{% endif %}");
        String out = t.render(List.of(msg("user", "hi"), msg("assistant", "hello")), true);
        // trim_blocks (as transformers sets it) drops the newline right after {% endif %}: Jinja2 renders the same
        assertEquals("<s>[user] hi[assistant] hello</s>[assistant]", out);
    }

    @Test
    void theBundledTemplateMakesAPassage() throws IOException {
        // the messages are the verses of a passage (trimmed, one per line), and the answer starts a verse of its own
        ChatTemplate t = ChatTemplate.of(ModelDirectory.open(Path.of("models/kjv-draft"))).orElseThrow();
        assertEquals("<s>In the beginning\nGod created\n", t.render(List.of(msg("system", "In the beginning"),
                msg("user", " God created ")), true));
        assertEquals("<s>a\nb\nc\n", t.render(List.of(msg("user", "a"), msg("assistant", "b"), msg("user", "c")), true));
        assertEquals("<s>a", t.render(List.of(msg("user", "a")), false));
    }

    @Test
    void raiseExceptionRejectsTheConversation(@TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{% if messages[0]['role'] != 'system' %}{{ raise_exception('system first, please') }}{% endif %}ok");
        var e = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(msg("user", "x")), true));
        assertEquals("system first, please", e.getMessage());
        assertEquals("ok", t.render(List.of(msg("system", "x")), true));
    }

    // ---- request content is data: it comes out literally, whatever Jinja syntax it holds ----

    /** Jinja in every form a client could send; the last is the loop (10^9 iterations, a 10M-token prompt). */
    public static final List<String> PAYLOADS = List.of(
            "{{ raise_exception('X ' ~ (7*7)) }}",
            "{{ 7*7 }}",
            "{{ bos_token }}{{ eos_token }}{{ messages|length }}{{ add_generation_prompt }}",
            "{% set x %}{% include 'application.properties' %}{% endset %}{{ raise_exception(x) }}",
            "{% include 'application.properties' %}",
            "{% import 'application.properties' as p %}{{ p }}",
            "{% from 'application.properties' import q %}{{ q }}",
            "{% macro m(a) %}[{{ a * 7 }}]{% endmacro %}{{ m(7) }}",
            "{% set y = 7*7 %}{{ y }}",
            "{{ 'abc'|upper }}{{ [3, 1, 2]|sort|join(',') }}{{ '%d'|format(49) }}",
            "{# a comment #}visible",
            "{%- raw %}{{ 7*7 }}{% endraw -%}",
            "{{ 'abc'.upper() }}{{ strftime_now('%Y') }}{{ {'a': 1}|tojson }}{% generation %}g{% endgeneration %}",
            "{% if true %}yes{% else %}no{% endif %}",
            "{{ unbalanced {% and %} #} }} %}",
            "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}");

    /** The slot a payload goes into: rendering with the payload must equal rendering with this, then replacing it. */
    private static final String SLOT = "Slot0Here";

    /** The bundled model's template, and the real Hugging Face templates of ../shared/chat-templates. */
    static Stream<String> templateNames() {
        List<String> names = new ArrayList<>(List.of("bundled kjv-target"));
        names.addAll(sharedTemplateNames());
        return names.stream();
    }

    static Stream<Arguments> templatesAndPayloads() {
        return templateNames().flatMap(t -> PAYLOADS.stream().map(p -> Arguments.of(t, p)));
    }

    /**
     * In every role and position, a payload renders exactly like a plain word in its place: the
     * template sees it as a string and nothing of it is evaluated (no include, no raise, no loop).
     */
    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("templatesAndPayloads")
    void messageContentIsLiteralText(String templateName, String payload, @TempDir Path dir) throws IOException {
        ChatTemplate t = named(templateName, dir, ChatTemplate.Limits.DEFAULT);
        List<List<ChatTemplate.Message>> conversations = List.of(
                List.of(msg("user", SLOT)),
                List.of(msg("system", SLOT), msg("user", "Hello")),
                List.of(msg("user", "Hello"), msg("assistant", SLOT), msg("user", "More")),
                List.of(msg("user", "Hi"), msg("assistant", "Hello"), msg("user", SLOT)),
                List.of(msg("system", SLOT), msg("user", SLOT), msg("assistant", SLOT), msg("user", SLOT)));
        for (List<ChatTemplate.Message> conversation : conversations) {
            List<ChatTemplate.Message> injected = conversation.stream()
                    .map(m -> msg(m.role(), m.content().replace(SLOT, payload))).toList();
            String expected;
            try {
                expected = t.render(conversation, true).replace(SLOT, payload);
            } catch (IllegalArgumentException refused) {
                // the template refuses this conversation (gemma: no system role): the same with the payload
                var e = assertThrows(IllegalArgumentException.class, () -> t.render(injected, true));
                assertEquals(refused.getMessage(), e.getMessage());
                continue;
            }
            String rendered = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> t.render(injected, true),
                    "the payload ran as a template");
            assertEquals(expected, rendered, conversation.toString());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("templateNames")
    void everyTemplateRendersAUserMessage(String templateName, @TempDir Path dir) throws IOException {
        // so that messageContentIsLiteralText compares real renders for each template, not two refusals
        String out = named(templateName, dir, ChatTemplate.Limits.DEFAULT).render(List.of(msg("user", SLOT)), true);
        assertTrue(out.contains(SLOT), out);
    }

    // ---- the template's failures and bounds ----

    @Test
    void includeImportAndFromFindNothing(@TempDir Path dir) throws IOException {
        for (String source : List.of("{% include 'application.properties' %}", "{% import 'application.properties' as p %}x",
                "{% from 'application.properties' import q %}x", "{% include 'META-INF/MANIFEST.MF' %}")) {
            var e = assertThrows(IllegalArgumentException.class, () -> template(dir, source).render(List.of(msg("user", "x")), true),
                    source);
            assertEquals("the model's chat template could not render these messages", e.getMessage());
        }
    }

    @Test
    void aBrokenTemplateIsReportedWithoutItsInternals(@TempDir Path dir) throws IOException {
        // (a template that does not parse at all is refused where it is loaded: ChatTemplateSourceTest)
        for (String source : List.of("{% if %}x{% endif %}", "{{ messages[0]['content'].nope() }}",
                "{{ messages[0]['content'].nope('secret_token') }}", "{{ messages[0]['content'].split('secret_token', '') }}",
                "{{ {'secret_token': messages}|tojson(secret_token=1) }}")) {
            var e = assertThrows(IllegalArgumentException.class, () -> template(dir, source).render(List.of(msg("user", "x")), true),
                    source);
            assertFalse(e.getMessage().contains("secret_token") || e.getMessage().contains("{%")
                    || e.getMessage().contains("Exception") || e.getMessage().contains("jinjava") || e.getMessage().contains("java."),
                    e.getMessage());
        }
    }

    private static final ChatTemplate.Limits SMALL = new ChatTemplate.Limits(8, 10_000, 1_000, Duration.ofMillis(300));

    /**
     * Loops of an operator's template that output nothing, so only the time limit stops them: around
     * a tag, an expression, and an expression that fails (Jinjava records that and goes on looping).
     */
    @ParameterizedTest
    @ValueSource(strings = {"{% if a %}{% endif %}", "{{ '' }}", "{{ m['content'].nope('x') }}"})
    void aRenderStopsAtItsTimeLimit(String body, @TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{% for m in messages %}{% for a in range(1000) %}{% for b in range(1000) %}"
                + "{% for c in range(1000) %}" + body + "{% endfor %}{% endfor %}{% endfor %}{% endfor %}", JSON.createObjectNode(), SMALL);
        long start = System.nanoTime();
        var e = assertThrows(IllegalArgumentException.class, () -> assertTimeoutPreemptively(Duration.ofSeconds(20),
                () -> t.render(List.of(msg("user", "x")), true)));
        assertEquals("the chat template took longer than 300 ms to render these messages", e.getMessage());
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "stopped at the limit");
    }

    @Test
    void aRenderStopsAtItsOutputLimit(@TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{% for a in range(1000) %}{% for b in range(1000) %}{% for m in messages %}"
                + "{{ m['content'] }}{% endfor %}{% endfor %}{% endfor %}", JSON.createObjectNode(), SMALL);
        var e = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(msg("user", "0123456789")), true));
        assertEquals("the chat template's rendering of these messages is too large (over 10000 characters, or a list over"
                + " 1000 items)", e.getMessage());
    }

    @Test
    void theStringsAndListsTheTemplateBuildsAreBounded(@TempDir Path dir) throws IOException {
        var slow = new ChatTemplate.Limits(8, 10_000, 1_000, Duration.ofSeconds(60));  // not stopped by the clock
        for (String source : List.of("{% set s = 'xxxxxxxx' %}{% for a in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s|length }}",
                "{% set l = [] %}{% for a in range(1000) %}{% for b in range(1000) %}{% do l.append(a) %}{% endfor %}{% endfor %}"
                        + "{{ l|length }}")) {
            ChatTemplate t = template(dir, source, JSON.createObjectNode(), slow);
            var e = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(msg("user", "x")), true), source);
            assertTrue(e.getMessage().startsWith("the chat template's rendering of these messages is too large"), e.getMessage());
        }
    }

    @Test
    void theNumberOfMessagesIsBounded(@TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{% for m in messages %}{{ m['content'] }}{% endfor %}", JSON.createObjectNode(), SMALL);
        assertEquals("x".repeat(8), t.render(Collections.nCopies(8, msg("user", "x")), true));
        var e = assertThrows(IllegalArgumentException.class, () -> t.render(Collections.nCopies(9, msg("user", "x")), true));
        assertEquals("at most 8 messages per chat, got 9", e.getMessage());
    }

    // ---- exact renders of Python's Jinja2 (../shared/chat-templates) ----

    /**
     * Every case of ../shared/chat-templates: each of its 11 templates over each of its 8
     * conversations, with and without the generation prompt, renders byte for byte as transformers
     * renders it, or fails with the template's own raise_exception message where transformers fails
     * (d_special_chars holds literal Jinja that must come out verbatim; granite prints the date of
     * {@link #RENDER_PY_CLOCK}). No case is left out.
     */
    static Stream<Arguments> goldenCases() throws IOException {
        requireSharedTemplates();
        List<Arguments> cases = new ArrayList<>();
        for (JsonNode c : JSON.readTree(sharedTemplates().resolve("expected/manifest.json").toFile())) {
            cases.add(Arguments.of(c.path("file").asText(), c));
        }
        assertEquals(sharedTemplateNames().size() * JSON.readTree(sharedTemplates().resolve("conversations.json").toFile()).size() * 2,
                cases.size(), "one case per template, conversation and add_generation_prompt");
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("goldenCases")
    void rendersLikeTransformers(String file, JsonNode c, @TempDir Path dir) throws IOException {
        ChatTemplate t = named(c.path("template").asText(), dir, ChatTemplate.Limits.DEFAULT);
        List<ChatTemplate.Message> messages = new ArrayList<>();
        for (JsonNode conv : JSON.readTree(sharedTemplates().resolve("conversations.json").toFile())) {
            if (conv.path("id").asText().equals(c.path("conversation").asText())) {
                conv.path("messages").forEach(m -> messages.add(msg(m.path("role").asText(), m.path("content").asText())));
            }
        }
        String expected = Files.readString(sharedTemplates().resolve("expected").resolve(file));
        boolean gen = c.path("add_generation_prompt").asBoolean();
        if ("error".equals(c.path("status").asText())) {
            assertEquals(expected, assertThrows(IllegalArgumentException.class, () -> t.render(messages, gen)).getMessage());
        } else {
            assertEquals(expected, t.render(messages, gen));
        }
    }

    // ---- templates ----

    static Path sharedTemplates() {
        return SharedModels.sharedDir().resolve("chat-templates");
    }

    /** Skipped without ../shared/chat-templates, except in CI (CI=true), where it must be there. */
    static void requireSharedTemplates() {
        Assumptions.assumeTrue(Files.isDirectory(sharedTemplates()) || "true".equals(System.getenv("CI")),
                "needs " + sharedTemplates());
    }

    static List<String> sharedTemplateNames() {
        if (!Files.isDirectory(sharedTemplates().resolve("templates")) && !"true".equals(System.getenv("CI"))) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(sharedTemplates().resolve("templates"))) {
            return files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".jinja"))
                    .map(n -> n.substring(0, n.length() - ".jinja".length())).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static ChatTemplate named(String name, Path dir, ChatTemplate.Limits limits) throws IOException {
        if (name.equals("bundled kjv-target")) {
            return ChatTemplate.of(ModelDirectory.open(Path.of("models/kjv-target")), limits, RENDER_PY_CLOCK).orElseThrow();
        }
        Path templates = sharedTemplates().resolve("templates");
        return template(dir, Files.readString(templates.resolve(name + ".jinja")),
                JSON.readTree(templates.resolve(name + ".json").toFile()).path("special_tokens"), limits);
    }
}
