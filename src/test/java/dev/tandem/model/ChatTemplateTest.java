package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChatTemplateTest {

    static ChatTemplate template(Path dir, String source) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"num_hidden_layers\":1,\"max_position_embeddings\":8}");
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        Files.writeString(dir.resolve("model.onnx"), "x");
        Files.writeString(dir.resolve("tokenizer_config.json"), new com.fasterxml.jackson.databind.ObjectMapper()
                .createObjectNode().put("chat_template", source).put("bos_token", "<s>").put("eos_token", "</s>").toString());
        return ChatTemplate.of(ModelDirectory.open(dir)).orElseThrow();
    }

    @Test
    void rendersALlamaStyleTemplate(@TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}"
                + "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
                + "{% if add_generation_prompt %}[assistant]{% endif %}");
        String out = t.render(List.of(new ChatTemplate.Message("user", "hi"), new ChatTemplate.Message("assistant", "hello")), true);
        assertEquals("<s>[user] hi\n[assistant] hello</s>\n[assistant]", out);
    }

    @Test
    void theBundledTemplateJoinsVerses() throws IOException {
        ChatTemplate t = ChatTemplate.of(ModelDirectory.open(Path.of("models/kjv-draft"))).orElseThrow();
        assertEquals("<s>In the beginning God created", t.render(List.of(new ChatTemplate.Message("system", "In the beginning"),
                new ChatTemplate.Message("user", "God created")), true));
        assertEquals("<s>a b</s><s>c", t.render(List.of(new ChatTemplate.Message("user", "a"),
                new ChatTemplate.Message("assistant", "b"), new ChatTemplate.Message("user", "c")), true));
    }

    @Test
    void raiseExceptionRejectsTheConversation(@TempDir Path dir) throws IOException {
        ChatTemplate t = template(dir, "{% if messages[0]['role'] != 'system' %}{{ raise_exception('system first, please') }}{% endif %}ok");
        var e = assertThrows(IllegalArgumentException.class, () -> t.render(List.of(new ChatTemplate.Message("user", "x")), true));
        assertTrue(e.getMessage().contains("system first, please"), e.getMessage());
        assertEquals("ok", t.render(List.of(new ChatTemplate.Message("system", "x")), true));
    }
}
