package dev.tandem.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.FatalTemplateErrorsException;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The model's chat template ({@code chat_template} in {@code tokenizer_config.json}, a Jinja
 * template as Hugging Face's {@code apply_chat_template} renders it), rendered with Jinjava.
 * Variables: {@code messages} (role, content), {@code add_generation_prompt}, {@code bos_token},
 * {@code eos_token}; function {@code raise_exception(msg)}.
 */
public final class ChatTemplate {
    /** The message of a raise_exception() during the current render (Jinjava reports only that a function failed). */
    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();
    private final String source;
    private final String bos;
    private final String eos;
    private final Jinjava jinjava;

    private ChatTemplate(String source, String bos, String eos) {
        this.source = source;
        this.bos = bos;
        this.eos = eos;
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(false).withLstripBlocks(false)
                .withFailOnUnknownTokens(false).build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
    }

    /** The directory's template, if its tokenizer_config.json has one (a string, or the "default" of a named list). */
    public static Optional<ChatTemplate> of(ModelDirectory model) {
        JsonNode cfg = model.tokenizerConfig();
        JsonNode t = cfg.path("chat_template");
        String source = null;
        if (t.isTextual()) {
            source = t.asText();
        } else if (t.isArray()) {
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText())) {
                    source = named.path("template").asText();
                }
            }
        }
        if (source == null || source.isBlank()) {
            return Optional.empty();
        }
        return Optional.of(new ChatTemplate(source, tokenText(cfg.path("bos_token")), tokenText(cfg.path("eos_token"))));
    }

    private static String tokenText(JsonNode n) {
        return n.isTextual() ? n.asText() : n.path("content").asText("");
    }

    /** A chat message as the template sees it. */
    public record Message(String role, String content) {
    }

    /**
     * Renders {@code messages} into the prompt text.
     *
     * @throws IllegalArgumentException when the template rejects the conversation (raise_exception)
     *     or fails to render
     */
    private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(ChatTemplate.class);
    private static final String CANNOT_RENDER = "the model's chat template cannot render these messages";

    public String render(List<Message> messages, boolean addGenerationPrompt) {
        Map<String, Object> vars = new HashMap<>();
        vars.put("messages", messages.stream().map(m -> Map.of("role", m.role(), "content", m.content())).toList());
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.put("bos_token", bos);
        vars.put("eos_token", eos);
        RAISED.remove();
        try {
            var result = jinjava.renderForResult(source, vars);
            if (RAISED.get() != null) {
                throw new IllegalArgumentException(RAISED.get());
            }
            for (TemplateError e : result.getErrors()) {
                if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                    LOG.warnf("chat template failed: %s", e.getMessage());  // the engine's text names its internals
                    throw new IllegalArgumentException(CANNOT_RENDER);
                }
            }
            return result.getOutput();
        } catch (FatalTemplateErrorsException e) {
            if (RAISED.get() == null) {
                LOG.warnf("chat template failed: %s", e.getMessage());
            }
            throw new IllegalArgumentException(RAISED.get() != null ? RAISED.get() : CANNOT_RENDER, e);
        } finally {
            RAISED.remove();
        }
    }

    /** {@code raise_exception} for templates: rejects the conversation with the template's message. */
    public static String raiseException(String message) {
        RAISED.set(message);
        throw new TemplateRaised(message);
    }

    static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message);
        }
    }
}
