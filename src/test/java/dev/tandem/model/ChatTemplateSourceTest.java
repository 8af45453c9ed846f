package dev.tandem.model;

import static dev.tandem.model.ChatTemplateTest.msg;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where a model's chat template comes from (chat_template.jinja beside the tokenizer, tokenizer_config.json,
 * or a configured file), and transformers' continue_final_message.
 */
class ChatTemplateSourceTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CONFIG_TEMPLATE = "{{ bos_token }}config:{% for m in messages %}{{ m['content'] }}{% endfor %}";
    private static final List<ChatTemplate.Message> HI = List.of(msg("user", "hi"));

    /** A model directory holding only what ChatTemplate reads, its tokenizer_config.json with a template and BOS. */
    static ModelDirectory model(Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"num_hidden_layers\":1,\"max_position_embeddings\":8}");
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        Files.writeString(dir.resolve("model.onnx"), "x");
        Files.writeString(dir.resolve("tokenizer_config.json"),
                JSON.createObjectNode().put("chat_template", CONFIG_TEMPLATE).put("bos_token", "<s>").toString());
        return ModelDirectory.open(dir);
    }

    @Test
    void tokenizerConfigsTemplateWhenThereIsNoFile(@TempDir Path dir) throws IOException {
        ChatTemplate t = ChatTemplate.of(model(dir)).orElseThrow();
        assertEquals("<s>config:hi", t.render(HI, true));
        assertTrue(t.origin().endsWith("tokenizer_config.json (chat_template)"), t.origin());
    }

    @Test
    void chatTemplateJinjaBesideTheTokenizerWins(@TempDir Path dir) throws IOException {
        ModelDirectory model = model(dir);
        Files.writeString(dir.resolve("chat_template.jinja"), "{{ bos_token }}file:{% for m in messages %}{{ m['content'] }}{% endfor %}");
        ChatTemplate t = ChatTemplate.of(model).orElseThrow();
        assertEquals("<s>file:hi", t.render(HI, true), "the file wins, the special tokens still come from the config");
        assertEquals(dir.resolve("chat_template.jinja").toAbsolutePath().normalize().toString(), t.origin());
    }

    @Test
    void aConfiguredFileWinsOverBoth(@TempDir Path dir) throws IOException {
        ModelDirectory model = model(dir);
        Files.writeString(dir.resolve("chat_template.jinja"), "file");
        Path configured = Files.writeString(dir.resolve("mine.jinja"), "{{ bos_token }}mine:{{ messages[0]['content'] }}");
        ChatTemplate t = ChatTemplate.of(model, Optional.of(configured)).orElseThrow();
        assertEquals("<s>mine:hi", t.render(HI, true));
        assertEquals(configured.toString(), t.origin());
    }

    @Test
    void aConfiguredFileGivesATemplateToAModelWithout(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"num_hidden_layers\":1,\"max_position_embeddings\":8}");
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        Files.writeString(dir.resolve("model.onnx"), "x");
        ModelDirectory bare = ModelDirectory.open(dir);
        assertTrue(ChatTemplate.of(bare).isEmpty());
        Path configured = Files.writeString(dir.resolve("mine.jinja"), "{{ messages[0]['content'] }}!");
        assertEquals("hi!", ChatTemplate.of(bare, Optional.of(configured)).orElseThrow().render(HI, true));
    }

    /** A template that does not parse fails where it is loaded, naming its file, not on every chat request later. */
    @Test
    void aTemplateThatDoesNotParseIsRefusedWhereItIsLoaded(@TempDir Path dir) throws IOException {
        ModelDirectory model = model(dir);
        Path broken = Files.writeString(dir.resolve("broken.jinja"), "{% for m in messages %}{{ m['content'] }}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(model, Optional.of(broken)));
        assertTrue(e.getMessage().contains(broken.toString()) && e.getMessage().contains("does not parse"), e.getMessage());
        Files.writeString(dir.resolve("chat_template.jinja"), "{% if true %}x{% endfor %}");
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(model));
    }

    @Test
    void aConfiguredFileThatCannotBeUsedIsNamed(@TempDir Path dir) throws IOException {
        ModelDirectory model = model(dir);
        Path missing = dir.resolve("missing.jinja");
        Path empty = Files.writeString(dir.resolve("empty.jinja"), " \n");
        Path binary = Files.write(dir.resolve("binary.jinja"), new byte[] {(byte) 0xff, (byte) 0xfe, 'x'});
        Path huge = Files.write(dir.resolve("huge.jinja"), new byte[(int) ChatTemplate.MAX_TEMPLATE_FILE_BYTES + 1]);
        for (var c : List.of(List.of(missing, "does not exist"), List.of(empty, "is empty"), List.of(binary, "not UTF-8"),
                List.of(huge, "over 1 MiB"), List.of(dir, "not a file"))) {
            var e = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(model, Optional.of((Path) c.get(0))));
            assertTrue(e.getMessage().contains(c.get(0).toString()) && e.getMessage().contains((String) c.get(1)), e.getMessage());
        }
    }

    // ---- continue_final_message, as transformers' apply_chat_template cuts the prompt ----

    @Test
    void continuingTheFinalMessageEndsThePromptInsideIt(@TempDir Path dir) throws IOException {
        Path file = Files.writeString(dir.resolve("t.jinja"), "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                + "{% if add_generation_prompt %}<assistant>{% endif %}");
        ChatTemplate t = ChatTemplate.of(model(dir), Optional.of(file)).orElseThrow();
        List<ChatTemplate.Message> prefilled = List.of(msg("user", "Say it"), msg("assistant", "And God"));
        assertEquals("<user>Say it</s><assistant>And God", t.render(prefilled, false, true));
        assertEquals("<user>Say it</s><assistant>And God</s>", t.render(prefilled, false, false));
        // a trailing space the template keeps stays; one it trims cannot be continued after
        assertEquals("<user>Say it</s><assistant>And God ", t.render(List.of(msg("user", "Say it"), msg("assistant", "And God ")),
                false, true));
    }

    @Test
    void continuingAMessageTheTemplateTrimsCutsAfterItsText(@TempDir Path dir) throws IOException {
        Path file = Files.writeString(dir.resolve("t.jinja"), "{% for m in messages %}[{{ m['content'] | trim }}]{% endfor %}");
        ChatTemplate t = ChatTemplate.of(model(dir), Optional.of(file)).orElseThrow();
        assertEquals("[a][b", t.render(List.of(msg("user", "a"), msg("assistant", " b  ")), false, true));
    }

    @Test
    void continuingIsRefusedWhenItCannot(@TempDir Path dir) throws IOException {
        Path file = Files.writeString(dir.resolve("t.jinja"), "{% for m in messages %}{{ m['role'] }};{% endfor %}");
        ChatTemplate t = ChatTemplate.of(model(dir), Optional.of(file)).orElseThrow();
        var dropped = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(msg("user", "gone")), false, true));
        assertTrue(dropped.getMessage().contains("does not reproduce the final message"), dropped.getMessage());
        var both = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(msg("user", "user")), true, true));
        assertTrue(both.getMessage().contains("cannot both be true"), both.getMessage());
    }
}
