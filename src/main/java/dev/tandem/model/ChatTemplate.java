package dev.tandem.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.JinjavaProcessors;
import com.hubspot.jinjava.interpret.CollectionTooBigException;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.OutputTooBigException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import com.hubspot.jinjava.util.LengthLimitingStringBuilder;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import jinjava.javax.el.CompositeELResolver;
import org.jboss.logging.Logger;

/**
 * The model's chat template (a Jinja template as Hugging Face's {@code apply_chat_template} renders
 * it; where it is read from is decided in one place, {@link #source(ModelDirectory)}, or an operator's
 * file replaces it: {@link #of(ModelDirectory, Optional)}), rendered with Jinjava set up
 * to render it as transformers' Jinja2 environment does ({@code _compile_jinja_template} in
 * {@code transformers/utils/chat_template_utils.py}), so the prompt is the one the model was
 * trained on, byte for byte:
 * <ul>
 *   <li>Jinja2's whitespace rules with {@code trim_blocks} and {@code lstrip_blocks} on, applied to
 *       the source by {@link Jinja2Whitespace} (Jinjava's own lstrip_blocks is not Jinja2's);</li>
 *   <li>the variables {@code render(messages=..., tools=None, documents=None, add_generation_prompt=...,
 *       **special_tokens_map)} passes: {@code bos_token}, {@code eos_token}, {@code unk_token},
 *       {@code sep_token}, {@code pad_token}, {@code cls_token}, {@code mask_token} (those the
 *       tokenizer config sets) and {@code additional_special_tokens};</li>
 *   <li>the globals {@code raise_exception(msg)} and {@code strftime_now(format)} (the server's
 *       local time, {@link PythonStrftime}), the filter {@code tojson} ({@link PythonJson}),
 *       {@code break}/{@code continue} in loops, and the {@code generation} block;</li>
 *   <li>strings behave as Python's {@code str}: {@code .strip()}, {@code .split()},
 *       {@code .startswith()}, ... and the {@code trim} filter ({@link PythonStrings}).</li>
 * </ul>
 * Where Jinjava still renders otherwise than Jinja2, see ChatTemplateJinja2Test#jinjavaStillDiffersHere.
 *
 * <p>The template is the operator's code; the messages are the client's data and stay data:
 * <ul>
 *   <li>Nested interpretation is off. By default Jinjava renders an expression's output again when it
 *       holds Jinja syntax, so <code>{{ message['content'] }}</code> ran a client's
 *       <code>{{ raise_exception(...) }}</code>, <code>{% include ... %}</code> or loops as template
 *       code. Off, content comes out literally, as in Python's Jinja2.</li>
 *   <li>No include, import or from: the resource locator refuses every name (Jinjava's default
 *       reads the classpath, application.properties included). A chat template needs none.</li>
 * </ul>
 *
 * <p>The template may still loop over the messages (some loop inside such a loop, and Jinjava goes on
 * looping after most errors), so each render is bounded by {@link Limits}: the number of messages;
 * the output's characters, which also bound any string the template builds; the size of any list or
 * map it builds; and its time. Jinjava ignores thread interrupts, so the time limit is checked before
 * every node it renders: past the deadline every node fails, which ends every loop.
 *
 * <p>A render over a bound, or one that fails inside Jinjava, is rejected with a short message of its
 * own: Jinjava's error text quotes the template and Java types, so it goes to the log for the
 * operator only. A {@code raise_exception(msg)} is the template's verdict on the conversation (e.g.
 * "Conversation roles must alternate"), so {@code msg} is reported as it is.
 */
public final class ChatTemplate {
    private static final Logger LOG = Logger.getLogger(ChatTemplate.class);
    private static final Set<TemplateError.ErrorReason> OVER_A_LIMIT = Set.of(TemplateError.ErrorReason.OUTPUT_TOO_BIG,
            TemplateError.ErrorReason.OVER_LIMIT, TemplateError.ErrorReason.COLLECTION_TOO_BIG);
    /**
     * Jinja2's semantics where Jinjava keeps older ones by default: {@code {{ -1 }}} is minus one
     * (a dash is whitespace control only where it touches the brace, and Jinja2Whitespace has
     * removed those); dict literal keys are expressions; a for loop over a dict gives its keys;
     * lists and dicts print the Python way ({@code {'a': 1}}, not {@code {a=1}}). Not taken:
     * required whitespace inside {@code {{x}}} (Jinja2 has none); Jinjava's "natural" operator
     * precedence, which reads {@code not x is defined} as {@code (not x) is defined} where Jinja2
     * (and Jinjava's default) tests first; and its nullable loop values, which print a none item as
     * "null" and fail {@code is none}.
     */
    private static final LegacyOverrides JINJA2_SEMANTICS = LegacyOverrides.newBuilder()
            .withParseWhitespaceControlStrictly(true)
            .withEvaluateMapKeys(true).withIterateOverMapKeys(true).withUsePyishObjectMapper(true)
            .build();
    /** The special tokens transformers passes to a template, when the tokenizer config sets them. */
    private static final List<String> SPECIAL_TOKENS = List.of("bos_token", "eos_token", "unk_token", "sep_token",
            "pad_token", "cls_token", "mask_token");
    /** The render running on this thread (Jinjava calls raise_exception and the node hook without a handle to us). */
    private static final ThreadLocal<Render> CURRENT = new ThreadLocal<>();

    /**
     * Bounds on one render.
     *
     * @param maxMessages    messages in one conversation
     * @param maxOutputChars characters of the rendered prompt, and of any string the template builds
     * @param maxListSize    elements of any list or map the template builds
     * @param maxRenderTime  wall-clock time of one render
     */
    public record Limits(int maxMessages, long maxOutputChars, int maxListSize, Duration maxRenderTime) {
        /**
         * Far above real chats, well below harm: 4096 messages; 4M characters, four times the content
         * the default 1 MiB request body can hold; lists of 64K items; 2 s, where real templates take
         * milliseconds.
         */
        public static final Limits DEFAULT = new Limits(4096, 4L << 20, 65_536, Duration.ofSeconds(2));
    }

    private final String source;
    private final String origin;
    private final Map<String, Object> specialTokens;
    private final Limits limits;
    private final Clock clock;
    private final Jinjava jinjava;

    private ChatTemplate(Source source, Map<String, Object> specialTokens, Limits limits, Clock clock) {
        this.source = Jinja2Whitespace.apply(source.text());
        this.origin = source.origin();
        this.specialTokens = specialTokens;
        this.limits = limits;
        this.clock = clock;
        CompositeELResolver resolver = new CompositeELResolver();  // strings answer as Python's, all else as before
        resolver.add(new PythonStrings(limits.maxListSize()));
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder()
                .withTrimBlocks(false).withLstripBlocks(false)  // Jinja2Whitespace applies Jinja2's
                .withLegacyOverrides(JINJA2_SEMANTICS)
                .withElResolver(resolver)
                .withFailOnUnknownTokens(false)
                .withNestedInterpretationEnabled(false)
                .withMaxOutputSize(limits.maxOutputChars())
                .withMaxStringLength(limits.maxOutputChars())
                .withMaxListSize(limits.maxListSize())
                .withMaxMapSize(limits.maxListSize())
                .withProcessors(JinjavaProcessors.newBuilder().withNodePreProcessor(ChatTemplate::checkTime).build())
                .build());
        jinjava.setResourceLocator(ChatTemplate::refuseResource);
        Context globals = jinjava.getGlobalContext();
        globals.registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException",
                String.class));
        globals.registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow",
                String.class));
        globals.registerFilter(new PythonJson());
        globals.registerFilter(new PythonStrings.TrimFilter());
        globals.registerTag(new GenerationTag());
        refuseIfUnparsable();
    }

    /**
     * A template that does not even parse (an unclosed block, an unknown tag) fails where it is loaded, naming its
     * file, instead of answering every chat request with a 400 ("could not render") once the service is up.
     */
    private void refuseIfUnparsable() {
        com.hubspot.jinjava.interpret.JinjavaInterpreter interpreter = jinjava.newInterpreter();
        interpreter.parse(source);
        for (TemplateError e : interpreter.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new IllegalArgumentException("the chat template from " + origin + " does not parse: "
                        + e.getMessage() + (e.getLineno() > 0 ? " (line " + e.getLineno() + ")" : ""));
            }
        }
    }

    /**
     * The file name transformers (4.51 and later) writes a tokenizer's template to, beside
     * tokenizer_config.json; when present it replaces the config's {@code chat_template}
     * ({@code PreTrainedTokenizerBase.from_pretrained} reads it over the config's entry), so newer
     * exports carry their template only there.
     */
    public static final String TEMPLATE_FILE = "chat_template.jinja";
    /** A template is a few kilobytes; a larger file is not one (e.g. a configured path pointing at the weights). */
    static final long MAX_TEMPLATE_FILE_BYTES = 1 << 20;

    /**
     * The template's text and where it came from (for the start-up log and error messages).
     *
     * @param text   the Jinja source as written
     * @param origin the file it was read from, with the entry for tokenizer_config.json
     */
    record Source(String text, String origin) {
    }

    /** The directory's template, if it has one: see {@link #source(ModelDirectory)}. */
    public static Optional<ChatTemplate> of(ModelDirectory model) {
        return of(model, Optional.empty());
    }

    /**
     * The template of {@code model}, or the one in {@code file} when given (an operator's override,
     * {@code tandem.target.chat-template}). Either way the special tokens come from the directory's
     * tokenizer_config.json, as transformers passes them to whichever template the tokenizer has.
     *
     * @throws IllegalArgumentException when a template file cannot be read, is not UTF-8 text, is
     *     empty or is too large to be a template, naming the file
     */
    public static Optional<ChatTemplate> of(ModelDirectory model, Optional<Path> file) {
        return of(model, file, Limits.DEFAULT, Clock.systemDefaultZone());
    }

    /** {@link #of(ModelDirectory)} with other bounds (tests use small ones). */
    static Optional<ChatTemplate> of(ModelDirectory model, Limits limits) {
        return of(model, limits, Clock.systemDefaultZone());
    }

    /** {@link #of(ModelDirectory, Limits)} with another clock for {@code strftime_now} (tests fix the date). */
    static Optional<ChatTemplate> of(ModelDirectory model, Limits limits, Clock clock) {
        return of(model, Optional.empty(), limits, clock);
    }

    private static Optional<ChatTemplate> of(ModelDirectory model, Optional<Path> file, Limits limits, Clock clock) {
        Optional<Source> source = file.isPresent() ? Optional.of(read(file.get(), true)) : source(model);
        if (source.isEmpty()) {
            return Optional.empty();
        }
        JsonNode cfg = model.tokenizerConfig();
        Map<String, Object> tokens = new LinkedHashMap<>();
        for (String name : SPECIAL_TOKENS) {
            tokenText(cfg.path(name)).ifPresent(text -> tokens.put(name, text));
        }
        List<String> additional = new ArrayList<>();
        cfg.path("additional_special_tokens").forEach(token -> tokenText(token).ifPresent(additional::add));
        if (!additional.isEmpty()) {
            tokens.put("additional_special_tokens", additional);
        }
        return Optional.of(new ChatTemplate(source.get(), Map.copyOf(tokens), limits, clock));
    }

    /**
     * Where a model directory's template is, in transformers' order: {@value #TEMPLATE_FILE} beside
     * the tokenizer files wins; otherwise tokenizer_config.json's {@code chat_template} (a string, or
     * the "default" of a named list). The one place a template is looked up.
     */
    static Optional<Source> source(ModelDirectory model) {
        Path beside = model.dir().resolve(TEMPLATE_FILE);
        if (Files.exists(beside)) {
            Source s = read(beside, false);
            return s.text().isBlank() ? Optional.empty() : Optional.of(s);
        }
        JsonNode t = model.tokenizerConfig().path("chat_template");
        String text = null;
        if (t.isTextual()) {
            text = t.asText();
        } else if (t.isArray()) {
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText())) {
                    text = named.path("template").asText();
                }
            }
        }
        return text == null || text.isBlank() ? Optional.empty()
                : Optional.of(new Source(text, model.dir().resolve("tokenizer_config.json") + " (chat_template)"));
    }

    /** A template file's text, read as transformers reads it (UTF-8, as it is); an empty one is refused when configured. */
    private static Source read(Path file, boolean configured) {
        try {
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException("chat template file " + file + " does not exist or is not a file");
            }
            if (Files.size(file) > MAX_TEMPLATE_FILE_BYTES) {
                throw new IllegalArgumentException("chat template file " + file + " is over "
                        + (MAX_TEMPLATE_FILE_BYTES >> 20) + " MiB: not a chat template");
            }
            String text = Files.readString(file, StandardCharsets.UTF_8);
            if (configured && text.isBlank()) {
                throw new IllegalArgumentException("chat template file " + file + " is empty");
            }
            return new Source(text, file.toString());
        } catch (MalformedInputException e) {
            throw new IllegalArgumentException("chat template file " + file + " is not UTF-8 text", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("chat template file " + file + " cannot be read: " + e.getMessage(), e);
        }
    }

    /** A token as tokenizer_config.json writes it: a string or an AddedToken object; absent, null or empty is unset. */
    private static Optional<String> tokenText(JsonNode n) {
        String text = n.isTextual() ? n.asText() : n.path("content").asText("");
        return text.isEmpty() ? Optional.empty() : Optional.of(text);
    }

    /** A chat message as the template sees it. */
    public record Message(String role, String content) {
    }

    /** Where the template was read from: a file, or tokenizer_config.json's entry (for the start-up log). */
    public String origin() {
        return origin;
    }

    /**
     * Renders as transformers' {@code apply_chat_template(..., continue_final_message=...)}: with
     * {@code continueFinalMessage} the prompt ends right after the last message's content, so the model
     * continues that message (a "prefilled" reply) instead of starting a new one. transformers renders
     * without the generation prompt and cuts after the last occurrence of the content (or of its
     * stripped form when the template trimmed its trailing spaces); so does this.
     *
     * @throws IllegalArgumentException as {@link #render(List, boolean)}, when both flags are set, or
     *     when the template does not reproduce the final message's content
     */
    public String render(List<Message> messages, boolean addGenerationPrompt, boolean continueFinalMessage) {
        if (!continueFinalMessage) {
            return render(messages, addGenerationPrompt);
        }
        if (addGenerationPrompt) {
            throw new IllegalArgumentException("continue_final_message and add_generation_prompt cannot both be true:"
                    + " the prompt either continues the last message or starts a new one");
        }
        if (messages.isEmpty()) {
            throw new IllegalArgumentException("continue_final_message needs a final message to continue");
        }
        String rendered = render(messages, false);
        String last = messages.getLast().content();
        String stripped = PythonStrings.strip(last, null, true, true);
        int at = rendered.lastIndexOf(stripped);
        if (at < 0) {
            throw new IllegalArgumentException("continue_final_message is set, but the chat template does not reproduce"
                    + " the final message's content, so the prompt cannot end inside it");
        }
        // transformers: rendered[at : at + len(last.lstrip())] == last, i.e. no leading spaces and all of it is there
        boolean spacingKept = PythonStrings.strip(last, null, true, false).length() == last.length()
                && rendered.startsWith(last, at);
        return rendered.substring(0, at + (spacingKept ? last.length() : stripped.length()));
    }

    /**
     * Renders {@code messages} into the prompt text; their content comes out literally.
     *
     * @throws IllegalArgumentException when the template rejects the conversation (raise_exception),
     *     a bound of {@link Limits} is exceeded, or the template fails to render
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        if (messages.size() > limits.maxMessages()) {
            throw new IllegalArgumentException("at most " + limits.maxMessages() + " messages per chat, got " + messages.size());
        }
        Map<String, Object> vars = new HashMap<>(specialTokens);
        vars.put("messages", messages.stream().map(ChatTemplate::asDict).toList());
        vars.put("tools", null);
        vars.put("documents", null);
        vars.put("add_generation_prompt", addGenerationPrompt);
        Render render = new Render(System.nanoTime() + limits.maxRenderTime().toNanos(), LocalDateTime.now(clock));
        CURRENT.set(render);
        RenderResult result = null;
        try {
            result = jinjava.renderForResult(source, vars);
            render.noteErrors(result.getErrors());
        } catch (RuntimeException e) {  // Jinjava reports most failures as errors of the result, but throws some
            render.noteThrown(e);
        } finally {
            CURRENT.remove();
        }
        rejectIfStopped(render, messages.size());  // always rejects when Jinjava threw
        return result.getOutput();
    }

    /** A message as transformers passes it: a dict with its keys in the client's order (what tojson prints). */
    private static Map<String, Object> asDict(Message m) {
        Map<String, Object> dict = new LinkedHashMap<>();
        dict.put("role", m.role());
        dict.put("content", m.content());
        return dict;
    }

    /** Rejects the conversation if the render was stopped, naming the first cause (the stop also leaves a Jinjava error). */
    private void rejectIfStopped(Render render, int messages) {
        if (render.timedOut) {
            throw new IllegalArgumentException("the chat template took longer than " + limits.maxRenderTime().toMillis()
                    + " ms to render these messages");
        }
        if (render.raised != null) {
            throw new IllegalArgumentException(render.raised);
        }
        if (render.overLimit) {  // even when Jinjava only warns: it may have cut the output short
            throw new IllegalArgumentException("the chat template's rendering of these messages is too large (over "
                    + limits.maxOutputChars() + " characters, or a list over " + limits.maxListSize() + " items)");
        }
        if (render.failure != null) {
            LOG.warnf("the chat template failed to render %d messages: %s", messages, render.failure);
            throw new IllegalArgumentException("the model's chat template could not render these messages");
        }
    }

    /** One render: its deadline, its time for strftime_now, and what stopped it. */
    private static final class Render {
        final long deadlineNanos;
        final LocalDateTime now;
        boolean timedOut;
        String raised;
        boolean overLimit;
        /** Jinjava's own account of a failure: for the log only. */
        String failure;

        Render(long deadlineNanos, LocalDateTime now) {
            this.deadlineNanos = deadlineNanos;
            this.now = now;
        }

        void noteErrors(List<TemplateError> errors) {
            for (TemplateError e : errors) {
                overLimit |= OVER_A_LIMIT.contains(e.getReason()) || causedByALimit(e.getException());
                if (e.getSeverity() == TemplateError.ErrorType.FATAL && failure == null) {
                    failure = e.getMessage();
                }
            }
        }

        void noteThrown(RuntimeException e) {
            overLimit |= causedByALimit(e);
            failure = e.toString();
        }

        /** Jinjava's limits throw these; an error or exception may carry one as its cause (a string over the limit does). */
        private static boolean causedByALimit(Throwable e) {
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (c instanceof OutputTooBigException || c instanceof CollectionTooBigException) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Runs before every node Jinjava renders: past the deadline, every further node fails, so every loop ends. */
    private static void checkTime(Node node, JinjavaInterpreter interpreter) {
        Render render = CURRENT.get();
        if (render != null && System.nanoTime() - render.deadlineNanos > 0) {
            render.timedOut = true;
            throw new RenderStopped("render time limit");
        }
    }

    private static String refuseResource(String name, Charset charset, JinjavaInterpreter interpreter)
            throws IOException {
        throw new IOException("chat templates cannot include, import or read files");
    }

    /** {@code raise_exception} for templates: rejects the conversation with the template's message. */
    public static String raiseException(String message) {
        Render render = CURRENT.get();
        if (render != null && render.raised == null) {
            render.raised = String.valueOf(message);
        }
        throw new RenderStopped(message);
    }

    /**
     * {@code strftime_now} for templates: the render's time (the server's local clock, read once per
     * render) formatted as Python's {@code datetime.now().strftime(format)}.
     */
    public static String strftimeNow(String format) {
        Render render = CURRENT.get();
        return PythonStrftime.format(render != null ? render.now : LocalDateTime.now(), String.valueOf(format));
    }

    /**
     * {@code {% generation %}...{% endgeneration %}}: transformers marks the assistant's part with it
     * (to find those tokens when asked); rendering a prompt, it renders its body unchanged.
     */
    static final class GenerationTag implements Tag {
        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String getEndTagName() {
            return "endgeneration";
        }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            LengthLimitingStringBuilder out = new LengthLimitingStringBuilder(interpreter.getConfig().getMaxOutputSize());
            try (var scope = interpreter.enterScope()) {  // Jinja2 renders the body as a macro: its sets stay inside
                for (Node child : tagNode.getChildren()) {
                    out.append(child.render(interpreter).getValue());
                }
            }
            return out.toString();
        }
    }

    /** Stops the render (the reason is in {@link Render}; Jinjava reports only that something failed). */
    static final class RenderStopped extends RuntimeException {
        RenderStopped(String message) {
            super(message, null, false, false);
        }
    }
}
