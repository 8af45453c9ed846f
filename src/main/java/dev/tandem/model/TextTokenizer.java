package dev.tandem.model;

import java.util.List;

/**
 * A model's tokenizer as serving uses it: text to ids (a prompt gets BOS when the model uses one), ids back to text
 * with special tokens skipped, and the character spans of a tokenization (for {@code /tokenize}).
 *
 * <p>Two implementations, chosen by the model directory's layout ({@link #load(ModelDirectory)}): a Hugging Face
 * {@code tokenizer.json} ({@link HfTokenizer}, through the Rust {@code tokenizers} library) and llama2.c's
 * {@code tokenizer.bin} ({@link Llama2cTokenizer}, in Java), which encodes and decodes as the Hugging Face conversion
 * of the same vocabulary does, so a model gives the same text over the API in either layout.
 */
public sealed interface TextTokenizer extends AutoCloseable permits HfTokenizer, Llama2cTokenizer {

    /** The tokenizer of {@code model}: its llama2.c {@code tokenizer.bin}, else its {@code tokenizer.json}. */
    static TextTokenizer load(ModelDirectory model) {
        if (model.isLlama2c()) {
            return Llama2cTokenizer.load(model.tokenizerFile(), model.config().shape().vocabSize());
        }
        return HfTokenizer.load(model);
    }

    /**
     * One token of an encoding: id, its piece in the vocabulary, and the characters of the input it covers, counted in
     * code points (as the Rust {@code tokenizers} library counts them: an emoji is one).
     */
    record Span(int id, String piece, int start, int end) {
    }

    /** How many token ids the tokenizer uses (one more than its largest). */
    int vocabSize();

    /** Prompt ids: BOS (when the model uses one) followed by the encoded text; an empty prompt is just BOS. */
    int[] encodePrompt(String text);

    /** Token ids of {@code text} without any special token. */
    int[] encode(String text);

    /** The prompt's tokens (BOS first when the model uses one) with their character spans in {@code text}. */
    List<Span> spans(String text);

    /** Text of {@code ids[from..to)}, special tokens skipped. */
    String decode(int[] ids, int from, int to);

    default String decode(int... ids) {
        return decode(ids, 0, ids.length);
    }

    /** Text of {@code ids} with special tokens written out ({@code <s>}), as Hugging Face's {@code decode} does by default. */
    String decodeWithSpecialTokens(int... ids);

    /** The beginning-of-sequence id, or -1 when the model has none. */
    int bosId();

    @Override
    void close();
}
