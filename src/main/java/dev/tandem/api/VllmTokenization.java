package dev.tandem.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.model.TextTokenizer;
import dev.tandem.serving.ServedModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.eclipse.microprofile.openapi.annotations.media.Schema;

/**
 * vLLM's {@code POST /tokenize} and {@code POST /detokenize} ({@code serving_tokenization.py}). vLLM
 * serves them at the root, where TGI's routes of the same names are, so {@link TgiResource} takes
 * both and hands a vLLM-shaped body here: {@code prompt} or {@code messages} (not TGI's
 * {@code inputs}) for tokenize, {@code model} for detokenize. Errors for these bodies are vLLM's
 * (OpenAI's format, 400), not TGI's.
 *
 * <p>A chat is rendered exactly as {@code /v1/chat/completions} renders it ({@link ChatPrompt}). What
 * Tandem cannot honour is refused with a 400 naming the field rather than ignored, which would show
 * a prompt a chat is never fed: a template sent with the request (a template is code, and the
 * request is data), {@code chat_template_kwargs}, {@code tools}, {@code documents},
 * {@code mm_processor_kwargs}, and any field vLLM does not have.
 */
final class VllmTokenization {
    private static final Set<String> COMPLETION_FIELDS = Set.of("model", "prompt", "add_special_tokens", "return_token_strs");
    private static final Set<String> CHAT_FIELDS = Set.of("model", "messages", "add_generation_prompt",
            "continue_final_message", "add_special_tokens", "return_token_strs");
    /** vLLM's fields Tandem does not honour, and why. */
    private static final Map<String, String> REFUSED = Map.of(
            "chat_template", "a request cannot bring its own chat template; the model's template is used",
            "chat_template_kwargs", "is not supported: the template gets the messages and add_generation_prompt only",
            "tools", "is not supported: the template is rendered without tools",
            "documents", "is not supported: the template is rendered without documents",
            "mm_processor_kwargs", "is not supported: only text is served");

    private VllmTokenization() {
    }

    /** vLLM's tokenize body for text. */
    @Schema(name = "TokenizeCompletionRequest", example = "{\"prompt\": \"And God said\"}")
    public record CompletionRequest(String model, String prompt,
            @Schema(description = "Add BOS as the tokenizer does (default true)") Boolean addSpecialTokens,
            Boolean returnTokenStrs) {
    }

    /** vLLM's tokenize body for a chat: the prompt {@code /v1/chat/completions} would feed, as tokens. */
    @Schema(name = "TokenizeChatRequest",
            example = "{\"messages\": [{\"role\": \"user\", \"content\": \"And God said\"}], \"add_generation_prompt\": true}")
    public record ChatRequest(String model, List<ChatCompletionRequest.Message> messages,
            @Schema(description = "Render the template's generation prompt (default true; a chat completion always does)")
            Boolean addGenerationPrompt,
            @Schema(description = "End the prompt inside the last message, to continue it (default false)")
            Boolean continueFinalMessage,
            @Schema(description = "Add BOS on top of what the template writes (default false)") Boolean addSpecialTokens,
            Boolean returnTokenStrs) {
    }

    /** vLLM's tokenize answer; {@code token_strs} (the vocabulary's pieces) only when asked for. */
    @Schema(name = "TokenizeResponse")
    public record TokenizeResponse(int count, int maxModelLen, List<Integer> tokens, List<String> tokenStrs) {
    }

    /** vLLM's detokenize answer: the text with special tokens written out, as Hugging Face's decode gives it. */
    @Schema(name = "DetokenizeResponse")
    public record DetokenizeResponse(String prompt) {
    }

    /** A tokenize body in vLLM's shape: {@code prompt} or {@code messages}, and not TGI's {@code inputs}. */
    static boolean isTokenizeRequest(JsonNode body) {
        return body != null && body.isObject() && !body.has("inputs") && (body.has("prompt") || body.has("messages"));
    }

    static TokenizeResponse tokenize(JsonNode body, GenerationRoutes routes) {
        try {
            boolean chat = body.has("messages");
            if (chat && body.has("prompt")) {
                throw ApiException.invalid("prompt", "send either prompt or messages, not both");
            }
            checkFields(body, chat ? CHAT_FIELDS : COMPLETION_FIELDS);
            List<TextTokenizer.Span> spans;
            ServedModel model;
            boolean tokenStrs;
            if (chat) {
                ChatRequest r = routes.json.treeToValue(body, ChatRequest.class);
                model = routes.model(r.model());
                ChatPrompt prompt = ChatPrompt.render(model, r.messages(), !Boolean.FALSE.equals(r.addGenerationPrompt()),
                        Boolean.TRUE.equals(r.continueFinalMessage()));
                spans = Boolean.TRUE.equals(r.addSpecialTokens()) ? model.tokenizer().spans(prompt.text()) : prompt.spans();
                tokenStrs = Boolean.TRUE.equals(r.returnTokenStrs());
            } else {
                CompletionRequest r = routes.json.treeToValue(body, CompletionRequest.class);
                if (r.prompt() == null) {
                    throw ApiException.invalid("prompt", "prompt must be a string");
                }
                model = routes.model(r.model());
                spans = model.tokenizer().spans(r.prompt());
                if (Boolean.FALSE.equals(r.addSpecialTokens())) {
                    spans = spans.stream().filter(s -> !(s.id() == model.tokenizer().bosId() && s.end() == 0)).toList();
                }
                tokenStrs = Boolean.TRUE.equals(r.returnTokenStrs());
            }
            List<Integer> ids = spans.stream().map(TextTokenizer.Span::id).toList();
            return new TokenizeResponse(ids.size(), model.maxContext(), ids,
                    tokenStrs ? spans.stream().map(TextTokenizer.Span::piece).toList() : null);
        } catch (JsonProcessingException e) {
            throw ErrorMappers.invalidJson(e).inOpenAiShape();
        } catch (ApiException e) {
            throw e.inOpenAiShape();
        }
    }

    /** vLLM's detokenize: {@code {"model", "tokens"}}. */
    static DetokenizeResponse detokenize(TgiResource.DetokenizeRequest body, GenerationRoutes routes) {
        try {
            ServedModel model = routes.model(body.model());
            int[] ids = TgiResource.checkedTokens(body.tokens(), model);
            return new DetokenizeResponse(model.tokenizer().decodeWithSpecialTokens(ids));
        } catch (ApiException e) {
            throw e.inOpenAiShape();
        }
    }

    /** Refuses a field vLLM's body does not have, or one Tandem does not honour; null counts as absent. */
    private static void checkFields(JsonNode body, Set<String> known) {
        for (Map.Entry<String, JsonNode> field : body.properties()) {
            String name = field.getKey();
            JsonNode value = field.getValue();
            if (known.contains(name) || value.isNull()) {
                continue;
            }
            String refused = REFUSED.get(name);
            if (refused != null && (value.isContainerNode() && value.isEmpty())) {
                continue;  // an empty list or object asks for nothing
            }
            if (refused != null) {
                throw ApiException.invalid(name, name.equals("chat_template") ? refused : "'" + name + "' " + refused);
            }
            List<String> fields = new ArrayList<>(known);
            fields.sort(null);
            throw ApiException.invalid(name, "unknown field '" + name + "' for this request; its fields are "
                    + String.join(", ", fields));
        }
    }
}
