package dev.tandem.model;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's {@code tokenizer.bin}: sentencepiece BPE by merge score with byte fallback, encoded as
 * {@code run.c} encodes, decoded as the Hugging Face conversion of the same vocabulary decodes.
 *
 * <p>File: int32 max_token_length, then per token: float32 score, int32 byte length, the UTF-8
 * bytes. Ids 0/1/2 are {@code <unk>}/BOS/EOS (stored as "\n<s>\n" and "\n</s>\n"), 3..258 the byte tokens
 * {@code <0x00>}..{@code <0xFF>}; a piece's leading space is a real space (sentencepiece's "▁").
 *
 * <p>Encoding: a space is prepended to non-empty text ("dummy prefix"); each UTF-8 character becomes
 * its piece, or its bytes' byte tokens when it has none; then, repeatedly, the adjacent pair whose
 * concatenation is a piece with the highest score (the leftmost on a tie) is merged, until no pair
 * merges. A prompt is BOS and the text's tokens (run.c's {@code encode(text, bos=1, eos=0)}).
 *
 * <p>Decoding, as Hugging Face's Llama tokenizer decodes (its {@code tokenizer.json} decoder: "▁" to space, byte
 * fallback, fuse, strip one leading space): special tokens are skipped (or written as {@code <unk>}, {@code <s>},
 * {@code </s>}); a run of byte tokens gives its bytes read as UTF-8, or one U+FFFD per byte when they are not valid
 * UTF-8; one leading space of the text is dropped. run.c drops the first piece's space only after BOS, which gives
 * the same text for a sequence that starts with BOS; decoding the same way as the Hugging Face layout of a model
 * keeps the API's text the same whichever layout is served (the streaming detokenizer decodes windows that start
 * mid-text, where the two rules differ).
 */
public final class Llama2cTokenizer implements TextTokenizer {
    public static final int UNK = 0;
    public static final int BOS = 1;
    public static final int EOS = 2;
    private static final int FIRST_BYTE_TOKEN = 3;
    private static final int BYTE_TOKENS_END = FIRST_BYTE_TOKEN + 256;
    private static final String[] SPECIAL = {"<unk>", "<s>", "</s>"};

    private final byte[][] pieces;
    private final float[] scores;
    private final Map<String, Integer> ids = new HashMap<>();  // piece (bytes as ISO-8859-1 chars) -> id

    private Llama2cTokenizer(byte[][] pieces, float[] scores) {
        this.pieces = pieces;
        this.scores = scores;
        for (int i = BYTE_TOKENS_END; i < pieces.length; i++) {  // text never becomes a special or byte token by its piece
            ids.putIfAbsent(key(pieces[i]), i);
        }
    }

    /**
     * Reads {@code file}, which holds {@code vocabSize} tokens (the checkpoint's vocabulary size).
     *
     * @throws IllegalArgumentException naming the file when it is not such a tokenizer
     */
    public static Llama2cTokenizer load(Path file, int vocabSize) {
        try {
            return parse(Files.readAllBytes(file), vocabSize);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": not a llama2.c tokenizer of " + vocabSize + " tokens: "
                    + e.getMessage(), e);
        }
    }

    /**
     * Whether {@code bytes} are a llama2.c tokenizer of exactly {@code vocabSize} tokens (every byte used), the
     * way a model directory tells its tokenizer from its checkpoint.
     */
    public static boolean isTokenizer(byte[] bytes, int vocabSize) {
        try {
            parse(bytes, vocabSize);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static Llama2cTokenizer parse(byte[] bytes, int vocabSize) {
        if (vocabSize <= BYTE_TOKENS_END) {
            throw new IllegalArgumentException("a vocabulary of " + vocabSize + " tokens has no room for the 3 special"
                    + " and 256 byte tokens");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        try {
            b.getInt();  // max_token_length
            byte[][] pieces = new byte[vocabSize][];
            float[] scores = new float[vocabSize];
            for (int i = 0; i < vocabSize; i++) {
                scores[i] = b.getFloat();
                int len = b.getInt();
                if (len < 0 || len > b.remaining()) {
                    throw new IllegalArgumentException("token " + i + " claims " + len + " bytes");
                }
                pieces[i] = new byte[len];
                b.get(pieces[i]);
            }
            if (b.hasRemaining()) {
                throw new IllegalArgumentException(b.remaining() + " bytes left after " + vocabSize + " tokens");
            }
            Llama2cTokenizer t = new Llama2cTokenizer(pieces, scores);
            if (!t.ids.containsKey(" ")) {
                throw new IllegalArgumentException("no piece is a lone space, which encoding prepends to a text");
            }
            return t;
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("the file ends before token " + vocabSize, e);
        }
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    /** The raw bytes of token {@code id}'s piece, as stored. */
    public byte[] piece(int id) {
        return pieces[id].clone();
    }

    @Override
    public int bosId() {
        return BOS;
    }

    @Override
    public int[] encodePrompt(String text) {
        int[] ids = encode(text);
        int[] out = new int[ids.length + 1];
        out[0] = BOS;
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    @Override
    public int[] encode(String text) {
        return tokens(text).stream().mapToInt(Span::id).toArray();
    }

    @Override
    public List<Span> spans(String text) {
        List<Span> out = new ArrayList<>();
        out.add(new Span(BOS, SPECIAL[BOS], 0, 0));
        out.addAll(tokens(text));
        return out;
    }

    /**
     * The tokens of {@code text} (no BOS) with their pieces as the Hugging Face vocabulary writes them ("▁Once"). As
     * Hugging Face's tokenizer does (and every server built on it), the special tokens' texts ({@code <s>}, ...) in the
     * text are those tokens, and each stretch of text between them is encoded on its own (with its dummy prefix).
     */
    private List<Span> tokens(String text) {
        List<Span> tokens = new ArrayList<>();
        int stretch = 0;   // chars
        int codePoints = 0;
        for (int at = 0; at < text.length(); ) {
            int special = specialAt(text, at);
            if (special < 0) {
                at += Character.charCount(text.codePointAt(at));
                continue;
            }
            int c = codePoints + text.codePointCount(stretch, at);
            tokens.addAll(stretch(text.substring(stretch, at), codePoints));
            int len = SPECIAL[special].length();
            tokens.add(new Span(special, SPECIAL[special], c, c + len));
            at += len;
            stretch = at;
            codePoints = c + len;
        }
        tokens.addAll(stretch(text.substring(stretch), codePoints));
        return tokens;
    }

    /** The special token whose text starts at {@code at} (the longest), or -1. */
    private static int specialAt(String text, int at) {
        int found = -1;
        for (int id = 0; id < SPECIAL.length; id++) {
            if (text.startsWith(SPECIAL[id], at) && (found < 0 || SPECIAL[id].length() > SPECIAL[found].length())) {
                found = id;
            }
        }
        return found;
    }

    /** The tokens of a text without special tokens, which starts {@code offset} code points into the input. */
    private List<Span> stretch(String text, int offset) {
        List<Span> tokens = new ArrayList<>();
        if (text.isEmpty()) {
            return tokens;
        }
        // spans count code points, as the Rust library's do; the dummy prefix covers the text's first character, as
        // Hugging Face's offset of a prepended "▁" does
        tokens.add(new Span(id(" "), null, offset, offset + 1));
        int c = offset;  // code points before the one at 'at'
        for (int at = 0; at < text.length(); c++) {
            int cp = text.codePointAt(at);
            int end = at + Character.charCount(cp);
            byte[] utf8 = text.substring(at, end).getBytes(StandardCharsets.UTF_8);
            Integer piece = ids.get(key(utf8));
            if (piece != null) {
                tokens.add(new Span(piece, null, c, c + 1));
            } else {
                for (byte u : utf8) {
                    tokens.add(new Span((u & 0xFF) + FIRST_BYTE_TOKEN, null, c, c + 1));  // byte fallback
                }
            }
            at = end;
        }
        while (true) {
            float bestScore = Float.NEGATIVE_INFINITY;
            int bestId = -1;
            int bestAt = -1;
            for (int i = 0; i + 1 < tokens.size(); i++) {
                Integer merged = ids.get(key(pieces[tokens.get(i).id()]) + key(pieces[tokens.get(i + 1).id()]));
                if (merged != null && scores[merged] > bestScore) {
                    bestScore = scores[merged];
                    bestId = merged;
                    bestAt = i;
                }
            }
            if (bestAt < 0) {
                break;
            }
            Span left = tokens.get(bestAt);
            Span right = tokens.remove(bestAt + 1);
            tokens.set(bestAt, new Span(bestId, null, left.start(), right.end()));
        }
        return tokens.stream().map(t -> new Span(t.id(), vocabularyPiece(t.id()), t.start(), t.end())).toList();
    }

    /** Token {@code id} as the Hugging Face vocabulary writes it: "▁" for a space, {@code <0x0A>}, {@code <s>}. */
    private String vocabularyPiece(int id) {
        if (id < SPECIAL.length) {
            return SPECIAL[id];
        }
        return new String(pieces[id], StandardCharsets.UTF_8).replace(' ', '\u2581');
    }

    @Override
    public String decode(int[] tokens, int from, int to) {
        return decode(tokens, from, to, true);
    }

    @Override
    public String decodeWithSpecialTokens(int... tokens) {
        return decode(tokens, 0, tokens.length, false);
    }

    private String decode(int[] tokens, int from, int to, boolean skipSpecial) {
        StringBuilder text = new StringBuilder();
        ByteArrayOutputStream run = new ByteArrayOutputStream();  // consecutive byte tokens
        for (int i = from; i < to; i++) {
            int t = tokens[i];
            if (t < 0 || t >= pieces.length) {
                throw new IllegalArgumentException("token id " + t + " is outside the vocabulary of " + pieces.length);
            }
            if (t >= FIRST_BYTE_TOKEN && t < BYTE_TOKENS_END) {
                run.write(t - FIRST_BYTE_TOKEN);
                continue;
            }
            if (t < SPECIAL.length && skipSpecial) {
                continue;  // gone before the bytes are grouped: byte tokens either side of it are one run
            }
            flushBytes(run, text);
            text.append(t < SPECIAL.length ? SPECIAL[t] : new String(pieces[t], StandardCharsets.UTF_8));
        }
        flushBytes(run, text);
        return !text.isEmpty() && text.charAt(0) == ' ' ? text.substring(1) : text.toString();
    }

    /** A run of byte tokens: its bytes as UTF-8 when they are valid, else U+FFFD for each (as Hugging Face's ByteFallback). */
    private static void flushBytes(ByteArrayOutputStream run, StringBuilder text) {
        if (run.size() == 0) {
            return;
        }
        byte[] bytes = run.toByteArray();
        run.reset();
        try {
            text.append(StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)));
        } catch (CharacterCodingException e) {
            text.repeat('\uFFFD', bytes.length);
        }
    }

    private int id(String piece) {
        Integer id = ids.get(key(piece.getBytes(StandardCharsets.UTF_8)));
        if (id == null) {
            throw new IllegalStateException("the vocabulary has no piece '" + piece + "'");
        }
        return id;
    }

    private static String key(byte[] bytes) {
        return new String(bytes, StandardCharsets.ISO_8859_1);
    }

    @Override
    public void close() {
        // nothing native: the vocabulary is Java arrays
    }
}
