package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.ChatTemplate;
import dev.tandem.model.ModelDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tandem.target.chat-template}: the file replaces the model's template; a file that cannot be used fails start-up naming the key. */
class ChatTemplateConfigTest {
    private static final ModelDirectory BUNDLED = ModelDirectory.open(Path.of("models/kjv-draft"));

    /** The model settings with only a template file set. */
    static TandemConfig.Model withTemplate(Optional<Path> file) {
        return ModelSettings.of(BUNDLED.dir()).withChatTemplate(file);
    }

    @Test
    void theConfiguredFileReplacesTheModelsTemplate() {
        Path file = Path.of("src/test/resources/chat-templates/tagged.jinja");
        ChatTemplate t = ModelRegistry.chatTemplate(BUNDLED, withTemplate(Optional.of(file)), false).orElseThrow();
        assertEquals("<|user|>And God said<|end|>\n<|assistant|>",
                t.render(List.of(new ChatTemplate.Message("user", "And God said")), true));
        ChatTemplate own = ModelRegistry.chatTemplate(BUNDLED, withTemplate(Optional.empty()), false).orElseThrow();
        assertEquals("<s>And God said\n", own.render(List.of(new ChatTemplate.Message("user", "And God said")), true));
    }

    @Test
    void aFileThatCannotBeReadFailsStartUpNamingTheKey(@TempDir Path dir) throws IOException {
        Path missing = dir.resolve("nowhere.jinja");
        var target = assertThrows(IllegalArgumentException.class,
                () -> ModelRegistry.chatTemplate(BUNDLED, withTemplate(Optional.of(missing)), false));
        assertTrue(target.getMessage().startsWith("tandem.target.chat-template: ") && target.getMessage().contains(missing.toString()),
                target.getMessage());
        Path empty = Files.writeString(dir.resolve("empty.jinja"), "");
        var draft = assertThrows(IllegalArgumentException.class,
                () -> ModelRegistry.chatTemplate(BUNDLED, withTemplate(Optional.of(empty)), true));
        assertTrue(draft.getMessage().startsWith("tandem.draft.chat-template: ") && draft.getMessage().contains("is empty"),
                draft.getMessage());
    }
}
