package dev.tandem.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * The header of a llama2.c checkpoint ({@code run.c}'s "legacy" export, {@code export.py --version 0}): 7
 * little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
 * means an untied classifier follows the other weights), then float32 arrays whose sizes follow from it. The model
 * directory reads it as the model's config; the reference engine reads the weights after it. A file is taken for a
 * checkpoint only when its size is exactly what its header says.
 *
 * @param sharedClassifier whether the classifier is the token embedding (vocab_size positive)
 * @param maxContext       seq_len: the context the model was trained for (and its rotary tables' length)
 */
public record Llama2cHeader(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize,
                            boolean sharedClassifier, int maxContext) {
    public static final int BYTES = 28;
    /** "ak42": the magic number of export.py's version 1 (float32) and 2 (int8) files, which run.c does not read. */
    private static final int MAGIC = 0x616b3432;

    public int headDim() {
        return dim / heads;
    }

    public int kvDim() {
        return dim / heads * kvHeads;
    }

    /** float32 values after the header: the weights, the rotary tables, the classifier when untied. */
    public long floats() {
        long kv = kvDim();
        return (long) vocabSize * dim + 2L * layers * dim + (long) layers * (2L * dim * dim + 2L * kv * dim)
                + 3L * layers * hiddenDim * dim + dim + rotaryFloats() + (sharedClassifier ? 0 : (long) vocabSize * dim);
    }

    /** The precomputed rotary tables (freq_cis_real and _imag, {@code [seq_len, head_dim / 2]} each): not parameters. */
    public long rotaryFloats() {
        return (long) maxContext * headDim();
    }

    /** The model's parameters: every float after the header but the rotary tables. */
    public long parameters() {
        return floats() - rotaryFloats();
    }

    /**
     * Reads the header of {@code file} and checks the file's size against it.
     *
     * @throws IllegalArgumentException naming the file and what is wrong: not a checkpoint, another llama2.c format
     *                                  (and what to export instead), or truncated
     */
    public static Llama2cHeader read(Path file) {
        ByteBuffer b = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
        long size;
        try (FileChannel ch = FileChannel.open(file)) {
            size = ch.size();
            while (b.hasRemaining() && ch.read(b) >= 0) {
                // the whole header, or the file if shorter
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        b.flip();
        try {
            return parse(b, size);
        } catch (UnreadableCheckpoint e) {
            throw new UnreadableCheckpoint(file + ": " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * A file that looks like a llama2.c checkpoint but cannot be served: one of llama2.c's newer export formats, or a
     * header whose weights the file does not hold (truncated), as opposed to a file that is no checkpoint at all.
     */
    public static final class UnreadableCheckpoint extends IllegalArgumentException {
        UnreadableCheckpoint(String message) {
            super(message);
        }
    }

    /** The header at the start of {@code b}, for a file of {@code fileBytes} bytes. */
    static Llama2cHeader parse(ByteBuffer b, long fileBytes) {
        if (b.remaining() < BYTES) {
            throw new IllegalArgumentException("not a llama2.c checkpoint: shorter than the " + BYTES + "-byte header");
        }
        int dim = b.getInt();
        if (dim == MAGIC) {
            int version = b.getInt();
            throw new UnreadableCheckpoint("a llama2.c export.py --version " + version + " file" + (version == 2
                    ? " (int8, Q8_0)" : "") + ", which run.c and Tandem do not read: export the legacy format instead"
                    + " (python export.py --version 0 model.bin --checkpoint ckpt.pt), or an ONNX model");
        }
        int hidden = b.getInt();
        int layers = b.getInt();
        int heads = b.getInt();
        int kvHeads = b.getInt();
        int vocabField = b.getInt();
        int seqLen = b.getInt();
        String header = "dim " + dim + ", hidden_dim " + hidden + ", n_layers " + layers + ", n_heads " + heads
                + ", n_kv_heads " + kvHeads + ", vocab_size " + vocabField + ", seq_len " + seqLen;
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocabField == 0
                || vocabField == Integer.MIN_VALUE || seqLen <= 0 || dim % heads != 0 || heads % kvHeads != 0
                || (dim / heads) % 2 != 0) {
            throw new IllegalArgumentException("not a llama2.c checkpoint: its header (" + header + ") is not a Llama's");
        }
        Llama2cHeader h = new Llama2cHeader(dim, hidden, layers, heads, kvHeads, Math.abs(vocabField), vocabField > 0, seqLen);
        long expected = BYTES + 4 * h.floats();
        if (expected != fileBytes) {
            throw new UnreadableCheckpoint("not a llama2.c checkpoint of its header (" + header + "): that needs "
                    + h.floats() + " float32 values after it (" + expected + " bytes in all), the file has " + fileBytes
                    + " bytes" + (fileBytes < expected ? " (truncated?)" : ""));
        }
        return h;
    }

    /** The sizes as the engines state them (float32 cache). */
    public ModelShape shape() {
        return new ModelShape(vocabSize, maxContext, layers, kvHeads, headDim(), 4);
    }
}
