package dev.tandem.engine.reference;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * The weights of the offload (layered) mode: nothing decoded stays on the heap between uses. The
 * model file is split into pieces (one per decoder layer, the head = final norm + classifier, and
 * one embedding row per token); each use of a piece maps its byte range of the file read-only in a
 * confined {@link Arena}, decodes it into heap arrays exactly as the normal mode does (so the
 * arithmetic, and the logits, are the same), and closes the arena, which unmaps the range (its
 * pages leave the process's resident set). The caller drops the decoded piece after use, so at most
 * one piece's decoded weights are reachable at a time.
 *
 * <p>Resident for the life of the model: the config, this index of byte ranges, the small tensors
 * stored inline in the graph (not as raw_data), and for a uint8 embedding its zero point and scale
 * per row (2 x vocab floats). Thread-safe: every load maps its own range.
 */
public final class LayeredWeights implements AutoCloseable {

    /** A byte range [start, end) of the model file and how to decode it into heap objects (which must not keep the mapping). */
    record Piece<T>(long start, long end, Function<Window, T> decode) {

        /** The piece spanning the raw_data of {@code tensors} (any order; unmapped gaps cost nothing). */
        static <T> Piece<T> over(Collection<OnnxFile.Tensor> tensors, Function<Window, T> decode) {
            long start = Long.MAX_VALUE;
            long end = -1;
            for (OnnxFile.Tensor t : tensors) {
                if (t.rawOffset() >= 0) {
                    start = Math.min(start, t.rawOffset());
                    end = Math.max(end, t.rawEnd());
                }
            }
            return end < 0 ? new Piece<>(0, 0, decode) : new Piece<>(start, end, decode);
        }
    }

    /** A mapping of the file's bytes from {@code start} (empty when a piece needs no file bytes). */
    record Window(MemorySegment segment, long start) {

        /** {@code t} reading its raw_data from this mapping. */
        OnnxFile.Tensor bind(OnnxFile.Tensor t) {
            return t.at(segment, start);
        }

        ByteBuffer bytes(long fileOffset, long length) {
            return segment.asSlice(fileOffset - start, length).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }

        float[] floats(long fileOffset, int n) {
            float[] out = new float[n];
            bytes(fileOffset, 4L * n).asFloatBuffer().get(out);
            return out;
        }
    }

    /** The last piece: the final RMSNorm and the classifier. */
    public record Head(float[] finalNorm, Matrix classifier) {
    }

    private final LlamaConfig config;
    private final Path file;
    private final FileChannel channel;
    private final List<Piece<LlamaWeights.Layer>> layers;
    private final Piece<Head> head;
    private final IntFunction<Piece<Embedding>> embeddingRow;

    /**
     * @param embeddingRow for a token, the piece holding its embedding row, decoded as a one-row
     *                     {@link Embedding} (looked up as token 0)
     */
    LayeredWeights(LlamaConfig config, Path file, List<Piece<LlamaWeights.Layer>> layers, Piece<Head> head,
                   IntFunction<Piece<Embedding>> embeddingRow) {
        if (layers.size() != config.layers()) {
            throw new IllegalArgumentException(layers.size() + " layer pieces, the config says " + config.layers());
        }
        this.config = config;
        this.file = file;
        this.layers = List.copyOf(layers);
        this.head = head;
        this.embeddingRow = embeddingRow;
        try {
            this.channel = FileChannel.open(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** Decodes every piece once, one at a time, to check the shapes against the config (as {@link LlamaWeights} does). */
    LayeredWeights validated() {
        try {
            for (int l = 0; l < config.layers(); l++) {
                LlamaWeights.checkLayer(config, layer(l));
            }
            Head h = head();
            LlamaWeights.checkHead(config, h.finalNorm(), h.classifier());
            float[] row = new float[config.dim()];
            embed(0, row);
            embed(config.vocabSize() - 1, row);
            return this;
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    public LlamaConfig config() {
        return config;
    }

    public Path file() {
        return file;
    }

    /** Layer {@code l}, freshly decoded from the file (the caller drops it after use). */
    public LlamaWeights.Layer layer(int l) {
        return load(layers.get(l));
    }

    /** The final norm and the classifier, freshly decoded from the file. */
    public Head head() {
        return load(head);
    }

    /** Copies token {@code token}'s embedding into {@code out[0..dim)}, reading only its row. */
    public void embed(int token, float[] out) {
        if (token < 0 || token >= config.vocabSize()) {
            throw new IllegalArgumentException("token " + token + " outside the vocabulary of " + config.vocabSize());
        }
        load(embeddingRow.apply(token)).lookup(0, out);
    }

    private <T> T load(Piece<T> p) {
        if (p.end() == p.start()) {
            return p.decode().apply(new Window(MemorySegment.NULL, 0));
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, p.start(), p.end() - p.start(), arena);
            return p.decode().apply(new Window(segment, p.start()));
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot map bytes " + p.start() + ".." + p.end(), e);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
