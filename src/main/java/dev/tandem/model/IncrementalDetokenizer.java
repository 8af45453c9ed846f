package dev.tandem.model;

import java.util.Arrays;

/**
 * Turns a growing token sequence into text pieces, never splitting a UTF-8 character.
 *
 * <p>Decoding token by token is wrong for sentencepiece-style tokenizers (a lone "▁the" decodes to
 * "the", the leading space stripped; byte-fallback tokens are fragments of one character). So, as
 * in TGI and vLLM, each step decodes a short window that starts a few tokens back, and emits what
 * the window's text gained; a step that ends inside a character emits nothing until it completes.
 * Concatenated, the pieces equal the decoded continuation, so {@code prompt + pieces} reads as the
 * full text.
 */
public final class IncrementalDetokenizer {
    private static final char REPLACEMENT = '\uFFFD';
    private final TextTokenizer tokenizer;
    private int[] ids;
    private int size;
    private int prefixOffset;  // window start
    private int readOffset;    // tokens before this one have been emitted as text

    /** Starts after {@code context} (the prompt); its text is not emitted. */
    public IncrementalDetokenizer(TextTokenizer tokenizer, int[] context) {
        this.tokenizer = tokenizer;
        this.ids = Arrays.copyOf(context, Math.max(16, context.length * 2));
        this.size = context.length;
        this.readOffset = size;
        this.prefixOffset = Math.max(0, size - 5);
    }

    /** Appends {@code token} and returns the text it completes ("" while a character is incomplete). */
    public String next(int token) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, size * 2);
        }
        ids[size++] = token;
        String prefix = tokenizer.decode(ids, prefixOffset, readOffset);
        String text = tokenizer.decode(ids, prefixOffset, size);
        if (text.length() > prefix.length() && text.charAt(text.length() - 1) != REPLACEMENT) {
            prefixOffset = readOffset;
            readOffset = size;
            return text.substring(commonPrefix(prefix, text));
        }
        return "";
    }

    /** The text {@code token} would add if it came next, without appending it (for alternatives in logprobs). */
    public String peek(int token) {
        int[] window = Arrays.copyOfRange(ids, prefixOffset, size + 1);
        window[window.length - 1] = token;
        String prefix = tokenizer.decode(ids, prefixOffset, size);
        String text = tokenizer.decode(window);
        return text.substring(commonPrefix(prefix, text));
    }

    /** Whatever is still held back at the end of generation (an incomplete character, as U+FFFD). */
    public String flush() {
        if (readOffset == size) {
            return "";
        }
        String prefix = tokenizer.decode(ids, prefixOffset, readOffset);
        String text = tokenizer.decode(ids, prefixOffset, size);
        prefixOffset = readOffset;
        readOffset = size;
        return text.substring(commonPrefix(prefix, text));
    }

    private static int commonPrefix(String prefix, String text) {
        if (text.startsWith(prefix)) {
            return prefix.length();
        }
        int n = Math.min(prefix.length(), text.length());
        int i = 0;
        while (i < n && prefix.charAt(i) == text.charAt(i)) {
            i++;
        }
        return i;
    }
}
