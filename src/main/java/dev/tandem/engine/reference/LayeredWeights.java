package dev.tandem.engine.reference;

import dev.tandem.onnx.OnnxFile;
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
 * The weights of the offload (layered) mode: nothing stays on the heap or mapped between uses. The
 * model file is split into pieces (one per decoder layer, the head = final norm + classifier, and
 * one embedding row per token); each use of a piece maps its byte range of the file read-only in
 * its own {@link Arena} and builds the piece from it: the ONNX weight matrices are used in place,
 * {@code [in][out]} as stored ({@link Matrix.U8InOut}, {@link Matrix.F32InOut}: nothing decoded,
 * same arithmetic as the normal mode's), the small tensors (norms, zero points, scales) and
 * llama2.c's float32 matrices are copied to the heap. {@link Loaded#close} closes the arena, which
 * unmaps the range, so its pages leave the process's resident set; the caller closes each piece
 * before it loads the next, so about one layer is resident at a time.
 *
 * <p>Resident for the life of the model: the config, this index of byte ranges, the small tensors
 * stored inline in the graph (not as raw_data), and for a uint8 embedding its zero point and scale
 * per row (2 x vocab floats). Thread-safe: every load maps its own range.
 */
public final class LayeredWeights implements AutoCloseable {

    /** A byte range [start, end) of the model file and how to build the piece over a mapping of it (valid while mapped). */
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

    /** A piece and the mapping it reads: close after use (the piece must not be used after). */
    public static final class Loaded<T> implements AutoCloseable {
        private final T value;
        private final Arena arena;

        Loaded(T value, Arena arena) {
            this.value = value;
            this.arena = arena;
        }

        public T value() {
            return value;
        }

        @Override
        public void close() {
            if (arena != null && arena.scope().isAlive()) {
                arena.close();
            }
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
                try (Loaded<LlamaWeights.Layer> layer = layer(l)) {
                    LlamaWeights.checkLayer(config, layer.value());
                }
            }
            try (Loaded<Head> h = head()) {
                LlamaWeights.checkHead(config, h.value().finalNorm(), h.value().classifier());
            }
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

    /** Layer {@code l}, mapped from the file: close it after use. */
    public Loaded<LlamaWeights.Layer> layer(int l) {
        return map(layers.get(l), true);
    }

    /** The final norm and the classifier, mapped from the file: close after use. */
    public Loaded<Head> head() {
        return map(head, true);
    }

    /** Copies token {@code token}'s embedding into {@code out[0..dim)}, reading only its row. */
    public void embed(int token, float[] out) {
        if (token < 0 || token >= config.vocabSize()) {
            throw new IllegalArgumentException("token " + token + " outside the vocabulary of " + config.vocabSize());
        }
        try (Loaded<Embedding> row = map(embeddingRow.apply(token), false)) {
            row.value().lookup(0, out);
        }
    }

    /**
     * Maps {@code p}'s bytes and builds it over them; {@code shared} when other threads will read the
     * mapping (the products' fork-join workers), else confined to this thread (cheaper to close).
     */
    private <T> Loaded<T> map(Piece<T> p, boolean shared) {
        if (p.end() == p.start()) {
            return new Loaded<>(p.decode().apply(new Window(MemorySegment.NULL, 0)), null);
        }
        Arena arena = shared ? Arena.ofShared() : Arena.ofConfined();
        try {
            MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, p.start(), p.end() - p.start(), arena);
            return new Loaded<>(p.decode().apply(new Window(segment, p.start())), arena);
        } catch (IOException | RuntimeException e) {
            arena.close();
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new UncheckedIOException(file + ": cannot map bytes " + p.start() + ".." + p.end(), (IOException) e);
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
