package dev.tandem.api;

import dev.tandem.model.ChatTemplate;
import dev.tandem.model.TextTokenizer;
import dev.tandem.serving.ServedModel;
import java.util.List;

/**
 * A conversation as the model is fed it: the text the model's chat template renders, and its
 * tokens. {@code /v1/chat/completions} generates from it, and {@code /chat_tokenize} (TGI) and
 * {@code /tokenize} with {@code messages} (vLLM) show it; all three build it here, so what the
 * inspection routes show is what a chat is fed.
 *
 * @param text  the rendered prompt
 * @param spans its tokens with their character spans in {@code text}; the template places BOS
 *              itself, so none is added (only an empty prompt gets BOS, so that there is a token to start from)
 */
record ChatPrompt(String text, List<TextTokenizer.Span> spans) {

    /**
     * Renders {@code messages} (checked and flattened as {@link ChatCompletionsResource#messages} does)
     * with {@code model}'s template.
     *
     * @throws ApiException 400 on {@code messages} when the model has no template or the template refuses
     *     the conversation (a template's {@code raise_exception} message is passed on as it is)
     */
    static ChatPrompt render(ServedModel model, List<ChatCompletionRequest.Message> messages, boolean addGenerationPrompt,
                             boolean continueFinalMessage) {
        List<ChatTemplate.Message> checked = ChatCompletionsResource.messages(messages);
        ChatTemplate template = model.chatTemplate().orElseThrow(() -> ApiException.invalid("messages",
                "model '" + model.id() + "' has no chat template; use /v1/completions"));
        String text;
        try {
            text = template.render(checked, addGenerationPrompt, continueFinalMessage);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid("messages", e.getMessage());
        }
        List<TextTokenizer.Span> spans = model.tokenizer().spans(text);
        if (!text.isEmpty() && !spans.isEmpty() && addedBos(spans.getFirst(), model.tokenizer())) {
            spans = spans.subList(1, spans.size());
        }
        return new ChatPrompt(text, List.copyOf(spans));
    }

    /** The BOS {@link TextTokenizer#spans} puts first for a model that uses one: it covers no character. */
    private static boolean addedBos(TextTokenizer.Span first, TextTokenizer tokenizer) {
        return first.id() == tokenizer.bosId() && first.start() == 0 && first.end() == 0;
    }

    /** The token ids the model is fed. */
    int[] tokens() {
        return spans.stream().mapToInt(TextTokenizer.Span::id).toArray();
    }
}
