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
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * The weights of the offload (layered) mode: nothing stays on the heap or mapped between uses. The
 * model file (and its external data file, if the graph keeps its weights outside) is split into pieces (one per decoder layer, the head = final norm + classifier, and
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

    /**
     * A byte range [start, end) of one file: the model file ({@code file} null) or, for a graph with external
     * data, the data file holding the tensors ({@link OnnxFile.Tensor#dataFile}).
     */
    record Span(Path file, long start, long end) {
    }

    /** The byte ranges of a piece (at most one per file) and how to build the piece over a mapping of them (valid while mapped). */
    record Piece<T>(List<Span> spans, Function<Window, T> decode) {

        /** A piece of the model file's bytes [start, end). */
        Piece(long start, long end, Function<Window, T> decode) {
            this(end == start ? List.of() : List.of(new Span(null, start, end)), decode);
        }

        /** The piece spanning the raw_data of {@code tensors} (any order; unmapped gaps cost nothing), per file holding them. */
        static <T> Piece<T> over(Collection<OnnxFile.Tensor> tensors, Function<Window, T> decode) {
            List<Span> spans = new ArrayList<>();
            for (OnnxFile.Tensor t : tensors) {
                if (t.rawOffset() < 0) {
                    continue;
                }
                int k = 0;
                while (k < spans.size() && !Objects.equals(spans.get(k).file(), t.dataFile())) {
                    k++;
                }
                if (k == spans.size()) {
                    spans.add(new Span(t.dataFile(), t.rawOffset(), t.rawEnd()));
                } else {
                    Span s = spans.get(k);
                    spans.set(k, new Span(s.file(), Math.min(s.start(), t.rawOffset()), Math.max(s.end(), t.rawEnd())));
                }
            }
            return new Piece<>(List.copyOf(spans), decode);
        }
    }

    /** One span's mapping: the bytes of {@code file} (null: the model file) from {@code start}. */
    record Mapped(Path file, MemorySegment segment, long start) {
    }

    /** The mappings of a piece's spans (none when a piece needs no file bytes). */
    record Window(List<Mapped> maps) {

        /** {@code t} reading its raw_data from this mapping (as is without raw_data). */
        OnnxFile.Tensor bind(OnnxFile.Tensor t) {
            if (t.rawOffset() < 0) {
                return t;
            }
            Mapped m = of(t.dataFile());
            return t.at(m.segment(), m.start());
        }

        /** Bytes of the model file. */
        ByteBuffer bytes(long fileOffset, long length) {
            return bytes(null, fileOffset, length);
        }

        /** Bytes of {@code file} (null: the model file). */
        ByteBuffer bytes(Path file, long fileOffset, long length) {
            Mapped m = of(file);
            return m.segment().asSlice(fileOffset - m.start(), length).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }

        float[] floats(long fileOffset, int n) {
            float[] out = new float[n];
            bytes(fileOffset, 4L * n).asFloatBuffer().get(out);
            return out;
        }

        private Mapped of(Path file) {
            for (Mapped m : maps) {
                if (Objects.equals(m.file(), file)) {
                    return m;
                }
            }
            throw new IllegalStateException("no mapping of " + (file == null ? "the model file" : file) + " in this piece");
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
    private final Map<Path, FileChannel> dataChannels = new ConcurrentHashMap<>();  // external data files
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
        if (p.spans().isEmpty()) {
            return new Loaded<>(p.decode().apply(new Window(List.of())), null);
        }
        Arena arena = shared ? Arena.ofShared() : Arena.ofConfined();
        Span at = null;
        try {
            List<Mapped> maps = new ArrayList<>(p.spans().size());
            for (Span s : p.spans()) {
                at = s;
                maps.add(new Mapped(s.file(), channel(s.file()).map(FileChannel.MapMode.READ_ONLY, s.start(), s.end() - s.start(),
                        arena), s.start()));
            }
            return new Loaded<>(p.decode().apply(new Window(maps)), arena);
        } catch (IOException | RuntimeException e) {
            arena.close();
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new UncheckedIOException((at.file() == null ? file : at.file()) + ": cannot map bytes " + at.start() + ".."
                    + at.end(), (IOException) e);
        }
    }

    /** The channel of the model file (null) or of an external data file, opened at its first use. */
    private FileChannel channel(Path data) throws IOException {
        if (data == null) {
            return channel;
        }
        try {
            return dataChannels.computeIfAbsent(data, d -> {
                try {
                    return FileChannel.open(d);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
            for (FileChannel c : dataChannels.values()) {
                c.close();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
