package dev.tandem.engine.reference;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's {@code tokenizer.bin}: sentencepiece BPE by merge score with byte fallback, as
 * {@code run.c} encodes and decodes.
 *
 * <p>File: int32 max_token_length, then per token: float32 score, int32 byte length, the UTF-8
 * bytes. Ids 0/1/2 are {@code <unk>}/BOS/EOS, 3..258 the byte tokens {@code <0x00>}..{@code <0xFF>}.
 *
 * <p>Encoding: a space is prepended to non-empty text ("dummy prefix"); each UTF-8 character becomes
 * its piece, or its bytes' byte tokens when it has none; then, repeatedly, the adjacent pair whose
 * concatenation is a piece with the highest score (the leftmost on a tie) is merged, until no pair
 * merges. Decoding: byte tokens give their byte; the leading space of the first piece after BOS is
 * dropped; the bytes are read as UTF-8.
 */
public final class Llama2cTokenizer {
    public static final int BOS = 1;
    public static final int EOS = 2;

    private final byte[][] pieces;
    private final float[] scores;
    private final Map<String, Integer> ids = new HashMap<>();  // piece (bytes as ISO-8859-1 chars) -> id

    private Llama2cTokenizer(byte[][] pieces, float[] scores) {
        this.pieces = pieces;
        this.scores = scores;
        for (int i = 0; i < pieces.length; i++) {
            ids.putIfAbsent(key(pieces[i]), i);
        }
    }

    /** Reads {@code file}, which holds {@code vocabSize} tokens (the checkpoint's vocabulary size). */
    public static Llama2cTokenizer load(Path file, int vocabSize) {
        try {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
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
            return new Llama2cTokenizer(pieces, scores);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        } catch (IllegalArgumentException | java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(file + ": not a llama2.c tokenizer of " + vocabSize + " tokens: " + e, e);
        }
    }

    public int vocabSize() {
        return pieces.length;
    }

    /** The raw bytes of token {@code id}'s piece, as stored. */
    public byte[] piece(int id) {
        return pieces[id].clone();
    }

    /** Token ids of {@code text}, without BOS/EOS. */
    public int[] encode(String text) {
        if (text.isEmpty()) {
            return new int[0];
        }
        List<Integer> tokens = new ArrayList<>();
        tokens.add(id(" "));  // dummy prefix
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < utf8.length; ) {
            int n = utf8Length(utf8[i]);
            n = Math.min(n, utf8.length - i);
            Integer piece = ids.get(new String(utf8, i, n, StandardCharsets.ISO_8859_1));
            if (piece != null) {
                tokens.add(piece);
            } else {
                for (int j = 0; j < n; j++) {
                    tokens.add((utf8[i + j] & 0xFF) + 3);  // byte fallback: <0x00> is id 3
                }
            }
            i += n;
        }
        while (true) {
            float bestScore = Float.NEGATIVE_INFINITY;
            int bestId = -1;
            int bestAt = -1;
            for (int i = 0; i + 1 < tokens.size(); i++) {
                Integer merged = ids.get(key(pieces[tokens.get(i)]) + key(pieces[tokens.get(i + 1)]));
                if (merged != null && scores[merged] > bestScore) {
                    bestScore = scores[merged];
                    bestId = merged;
                    bestAt = i;
                }
            }
            if (bestAt < 0) {
                break;
            }
            tokens.set(bestAt, bestId);
            tokens.remove(bestAt + 1);
        }
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The text of {@code ids} (BOS and EOS give nothing; the first piece after BOS loses its leading space). */
    public String decode(int[] tokens) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int prev = -1;
        for (int t : tokens) {
            if (t == BOS || t == EOS) {
                prev = t;
                continue;
            }
            byte[] p = pieces[t];
            if (t >= 3 && t < 259) {
                out.write(t - 3);
            } else if (prev == BOS && p.length > 0 && p[0] == ' ') {
                out.write(p, 1, p.length - 1);
            } else {
                out.write(p, 0, p.length);
            }
            prev = t;
        }
        return out.toString(StandardCharsets.UTF_8);
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

    private static int utf8Length(byte lead) {
        int b = lead & 0xFF;
        if (b < 0x80) {
            return 1;
        }
        if (b >= 0xF0) {
            return 4;
        }
        if (b >= 0xE0) {
            return 3;
        }
        if (b >= 0xC0) {
            return 2;
        }
        return 1;  // a stray continuation byte
    }
}
