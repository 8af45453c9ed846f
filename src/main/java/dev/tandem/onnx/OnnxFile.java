package dev.tandem.onnx;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The part of an ONNX file Tandem reads itself (the reference engine's weights, the memory planner's
 * weight inventory), decoded with a small hand-written protobuf
 * reader (no protobuf library): {@code ModelProto.graph} (and, alone, {@code metadata_props}) → {@code GraphProto} initializers, nodes
 * (op type, name, inputs, outputs, attributes), and the names of its inputs and outputs.
 *
 * <p>Field numbers are those of {@code onnx.proto} (onnx/onnx, proto2): ModelProto 7 = graph;
 * GraphProto 1 = node, 5 = initializer, 11 = input, 12 = output; NodeProto 1 = input, 2 = output,
 * 3 = name, 4 = op_type, 5 = attribute; AttributeProto 1 = name, 2 = f, 3 = i, 4 = s, 5 = t,
 * 7 = floats, 8 = ints; TensorProto 1 = dims, 2 = data_type, 4 = float_data, 5 = int32_data,
 * 7 = int64_data, 8 = name, 9 = raw_data, 13 = external_data, 14 = data_location; ValueInfoProto 1 = name.
 * Everything else is skipped.
 *
 * <p><b>External data.</b> Most real exports keep their weights outside the graph file (Optimum writes
 * {@code model.onnx} + {@code model.onnx_data}, ONNX Runtime GenAI's builder {@code model.onnx.data}, and a
 * protobuf cannot exceed 2 GB anyway): such a tensor has {@code data_location = EXTERNAL} and
 * {@code external_data} entries {@code location} (a file named relative to the graph file's directory),
 * {@code offset} and {@code length} (bytes; default: from 0 to the end of the file). Its bytes are read as
 * raw_data from a read-only mapping of that file (each data file mapped once; untouched pages are not read), and
 * its length must be what its shape and type take. The location is data from the model, never a path to follow
 * anywhere: one that is absolute, contains {@code ..} or otherwise resolves outside the model's directory is
 * refused (see {@link #dataFile}). A {@code checksum} entry is not verified here: a model directory's
 * {@code SHA256SUMS} covers its data files ({@code ModelDirectory}).
 */
public final class OnnxFile {
    /** TensorProto.DataType values this reader decodes. */
    public static final int FLOAT = 1;
    public static final int UINT8 = 2;
    public static final int INT8 = 3;
    public static final int INT32 = 6;
    public static final int INT64 = 7;

    /**
     * An initializer (or a Constant node's value). The data is a little-endian view of the file.
     *
     * @param rawOffset where {@code raw} starts in the file holding it (-1 without raw_data): the offload mode
     *                  maps that byte range again when it needs the values ({@link #at})
     * @param dataFile  the external data file holding {@code raw} (inside the model's directory), or null when
     *                  raw_data is in the graph file itself
     */
    public record Tensor(String name, long[] dims, int dataType, ByteBuffer raw, float[] floatData, long[] intData,
                         long rawOffset, Path dataFile) {

        /** This tensor with its raw_data read from {@code window}, a mapping of the file's bytes from {@code start}. */
        public Tensor at(java.lang.foreign.MemorySegment window, long start) {
            if (rawOffset < 0) {
                return this;
            }
            ByteBuffer b = window.asSlice(rawOffset - start, raw.capacity()).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            return new Tensor(name, dims, dataType, b, floatData, intData, rawOffset, dataFile);
        }

        /** The byte range [rawOffset, rawEnd) of raw_data in its file (the graph file, or {@link #dataFile}). */
        public long rawEnd() {
            return rawOffset < 0 ? -1 : rawOffset + raw.capacity();
        }

        public long size() {
            long n = 1;
            for (long d : dims) {
                n *= d;
            }
            return n;
        }

        /** The values as float32 (FLOAT tensors only). */
        public float[] floats() {
            require(dataType == FLOAT, "is not float32 (data_type " + dataType + ")");
            int n = Math.toIntExact(size());
            if (raw != null) {
                require(raw.remaining() == 4L * n, "raw_data holds " + raw.remaining() + " bytes, need " + 4L * n);
                float[] out = new float[n];
                raw.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
                return out;
            }
            require(floatData != null && floatData.length == n, "float_data holds " + (floatData == null ? 0 : floatData.length)
                    + " values, need " + n);
            return floatData.clone();
        }

        /** The values of a UINT8 or INT8 tensor, as stored (bytes; read uint8 with {@code & 0xFF}). */
        public byte[] bytes() {
            require(dataType == UINT8 || dataType == INT8, "is not 8-bit (data_type " + dataType + ")");
            int n = Math.toIntExact(size());
            byte[] out = new byte[n];
            if (raw != null) {
                require(raw.remaining() == n, "raw_data holds " + raw.remaining() + " bytes, need " + n);
                raw.duplicate().get(out);
                return out;
            }
            require(intData != null && intData.length == n, "int32_data holds " + (intData == null ? 0 : intData.length)
                    + " values, need " + n);
            for (int i = 0; i < n; i++) {
                out[i] = (byte) intData[i];
            }
            return out;
        }

        /** The values of an integer tensor (INT32, INT64, UINT8, INT8) as longs. */
        public long[] longs() {
            int n = Math.toIntExact(size());
            long[] out = new long[n];
            if (dataType == UINT8 || dataType == INT8) {
                byte[] b = bytes();
                for (int i = 0; i < n; i++) {
                    out[i] = dataType == UINT8 ? b[i] & 0xFF : b[i];
                }
                return out;
            }
            require(dataType == INT32 || dataType == INT64, "is not an integer tensor (data_type " + dataType + ")");
            if (raw != null) {
                ByteBuffer r = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < n; i++) {
                    out[i] = dataType == INT64 ? r.getLong() : r.getInt();
                }
                return out;
            }
            require(intData != null && intData.length == n, "holds " + (intData == null ? 0 : intData.length)
                    + " values, need " + n);
            return intData.clone();
        }

        private void require(boolean ok, String message) {
            if (!ok) {
                throw new IllegalArgumentException("tensor '" + name + "' " + message);
            }
        }
    }

    /** One attribute of a node: what this engine may look at (numbers, a string, a tensor). */
    public record Attribute(String name, float f, long i, String s, Tensor t, float[] floats, long[] ints) {
    }

    public record Node(String name, String opType, List<String> inputs, List<String> outputs, Map<String, Attribute> attributes) {
        public String input(int k) {
            return k < inputs.size() ? inputs.get(k) : "";
        }
    }

    private final Path file;
    private final Map<String, Tensor> initializers;
    private final List<Node> nodes;
    private final List<String> inputs;
    private final List<String> outputs;
    private final List<Path> dataFiles;

    private OnnxFile(Path file, Map<String, Tensor> initializers, List<Node> nodes, List<String> inputs, List<String> outputs,
                     List<Path> dataFiles) {
        this.file = file;
        this.initializers = initializers;
        this.nodes = nodes;
        this.inputs = inputs;
        this.outputs = outputs;
        this.dataFiles = dataFiles;
    }

    /**
     * Reads {@code file} into the heap. External data files are mapped (they may be far larger than a Java array)
     * in an automatic arena: the mappings last as long as the tensors are reachable.
     */
    public static OnnxFile read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        try {
            return parse(file, ByteBuffer.wrap(bytes), java.lang.foreign.Arena.ofAuto());
        } catch (ExternalDataException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException | IndexOutOfBoundsException | java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(file + ": not a readable ONNX model: " + e.getMessage(), e);
        }
    }

    /**
     * Parses {@code file} from a read-only mapping in {@code arena} instead of reading it: tensors'
     * raw_data stay views of the mapping (untouched pages are not read), valid while the arena is open. External
     * data files are mapped in the same arena.
     */
    public static OnnxFile map(Path file, java.lang.foreign.Arena arena) {
        ByteBuffer model;
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            model = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena).asByteBuffer();
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        try {
            return parse(file, model, arena);
        } catch (ExternalDataException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException | IndexOutOfBoundsException | java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(file + ": not a readable ONNX model: " + e.getMessage(), e);
        }
    }

    /**
     * The model's {@code metadata_props} (ModelProto field 14: StringStringEntryProto 1 = key, 2 = value), read
     * from a mapping of the file without decoding the graph. An engine whose runtime does not expose them (the
     * OpenVINO C API has no call for a model's runtime info) learns a graph's KV layout
     * ({@code tandem.kv_layout}) here.
     *
     * @throws IllegalArgumentException naming the file when it cannot be read or is not a readable ONNX model
     */
    public static Map<String, String> metadata(Path file) {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined();
             java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            ByteBuffer model = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena).asByteBuffer();
            Map<String, String> out = new LinkedHashMap<>();
            for (Reader r = new Reader(model); r.more(); ) {
                if (r.tag() != 14) {
                    r.skip();  // the graph (field 7) is skipped by its length: its pages are not read
                    continue;
                }
                String key = "";
                String value = "";
                for (Reader e = new Reader(r.bytes()); e.more(); ) {
                    switch (e.tag()) {
                        case 1 -> key = e.string();
                        case 2 -> value = e.string();
                        default -> e.skip();
                    }
                }
                out.put(key, value);
            }
            return out;
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        } catch (IllegalArgumentException | IndexOutOfBoundsException | java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(file + ": not a readable ONNX model: " + e.getMessage(), e);
        }
    }

    static OnnxFile parse(Path file, ByteBuffer model, java.lang.foreign.Arena arena) {
        // the file offset of a slice: its address minus the file's (heap buffers: offsets in the array)
        long base = java.lang.foreign.MemorySegment.ofBuffer(model).address();
        ExternalData external = new ExternalData(file, arena);
        ByteBuffer graph = null;
        for (Reader r = new Reader(model); r.more(); ) {
            int field = r.tag();
            if (field == 7) {
                graph = r.bytes();
            } else {
                r.skip();
            }
        }
        if (graph == null) {
            throw new IllegalArgumentException("no graph (ModelProto field 7)");
        }
        Map<String, Tensor> inits = new LinkedHashMap<>();
        List<Node> nodes = new ArrayList<>();
        List<String> inputs = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        for (Reader r = new Reader(graph); r.more(); ) {
            switch (r.tag()) {
                case 1 -> nodes.add(node(r.bytes(), base, external));
                case 5 -> {
                    Tensor t = tensor(r.bytes(), base, external);
                    inits.put(t.name(), t);
                }
                case 11 -> inputs.add(valueInfoName(r.bytes()));
                case 12 -> outputs.add(valueInfoName(r.bytes()));
                default -> r.skip();
            }
        }
        return new OnnxFile(file, inits, nodes, List.copyOf(inputs), List.copyOf(outputs), external.files());
    }

    public Path file() {
        return file;
    }

    public Map<String, Tensor> initializers() {
        return initializers;
    }

    public List<Node> nodes() {
        return nodes;
    }

    public List<String> inputs() {
        return inputs;
    }

    public List<String> outputs() {
        return outputs;
    }

    /** The external data files the tensors are read from (resolved, inside the graph file's directory), in order of first use. */
    public List<Path> dataFiles() {
        return dataFiles;
    }

    /**
     * The constant behind a value name: an initializer, or the value of a {@code Constant} node
     * producing it; null if the value is computed.
     */
    public Tensor constant(String value) {
        Tensor t = initializers.get(value);
        if (t != null) {
            return t;
        }
        for (Node n : nodes) {
            if (n.opType().equals("Constant") && n.outputs().contains(value) && n.attributes().containsKey("value")) {
                return n.attributes().get("value").t();
            }
        }
        return null;
    }

    private static String valueInfoName(ByteBuffer b) {
        String name = "";
        for (Reader r = new Reader(b); r.more(); ) {
            if (r.tag() == 1) {
                name = r.string();
            } else {
                r.skip();
            }
        }
        return name;
    }

    private static Node node(ByteBuffer b, long base, ExternalData external) {
        String name = "";
        String op = "";
        List<String> in = new ArrayList<>();
        List<String> out = new ArrayList<>();
        Map<String, Attribute> attrs = new LinkedHashMap<>();
        for (Reader r = new Reader(b); r.more(); ) {
            switch (r.tag()) {
                case 1 -> in.add(r.string());
                case 2 -> out.add(r.string());
                case 3 -> name = r.string();
                case 4 -> op = r.string();
                case 5 -> {
                    Attribute a = attribute(r.bytes(), base, external);
                    attrs.put(a.name(), a);
                }
                default -> r.skip();
            }
        }
        return new Node(name, op, List.copyOf(in), List.copyOf(out), attrs);
    }

    private static Attribute attribute(ByteBuffer b, long base, ExternalData external) {
        String name = "";
        float f = 0;
        long i = 0;
        String s = null;
        Tensor t = null;
        List<Float> floats = new ArrayList<>();
        List<Long> ints = new ArrayList<>();
        for (Reader r = new Reader(b); r.more(); ) {
            switch (r.tag()) {
                case 1 -> name = r.string();
                case 2 -> f = r.fixed32Float();
                case 3 -> i = r.varint();
                case 4 -> s = r.string();
                case 5 -> t = tensor(r.bytes(), base, external);
                case 7 -> r.repeatedFloat(floats);
                case 8 -> r.repeatedVarint(ints);
                default -> r.skip();
            }
        }
        float[] fa = new float[floats.size()];
        for (int k = 0; k < fa.length; k++) {
            fa[k] = floats.get(k);
        }
        return new Attribute(name, f, i, s, t, fa, ints.stream().mapToLong(Long::longValue).toArray());
    }

    private static Tensor tensor(ByteBuffer b, long base, ExternalData external) {
        String name = "";
        List<Long> dims = new ArrayList<>();
        int type = 0;
        ByteBuffer raw = null;
        List<Float> floats = new ArrayList<>();
        List<Long> ints = new ArrayList<>();
        Map<String, String> externalData = new LinkedHashMap<>();
        boolean isExternal = false;
        for (Reader r = new Reader(b); r.more(); ) {
            switch (r.tag()) {
                case 1 -> r.repeatedVarint(dims);
                case 2 -> type = (int) r.varint();
                case 4 -> r.repeatedFloat(floats);
                case 5, 7 -> r.repeatedVarint(ints);   // int32_data (also uint8/int8/...), int64_data
                case 8 -> name = r.string();
                case 9 -> raw = r.bytes();
                case 13 -> {
                    Map.Entry<String, String> e = stringEntry(r.bytes());
                    externalData.put(e.getKey(), e.getValue());
                }
                case 14 -> isExternal = r.varint() == 1;
                default -> r.skip();
            }
        }
        float[] fd = null;
        if (!floats.isEmpty()) {
            fd = new float[floats.size()];
            for (int k = 0; k < fd.length; k++) {
                fd[k] = floats.get(k);
            }
        }
        long[] id = ints.isEmpty() ? null : ints.stream().mapToLong(Long::longValue).toArray();
        long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
        if (isExternal) {
            return external.tensor(name, shape, type, externalData);
        }
        long rawOffset = raw == null ? -1 : java.lang.foreign.MemorySegment.ofBuffer(raw).address() - base;
        return new Tensor(name, shape, type, raw, fd, id, rawOffset, null);
    }

    /** A StringStringEntryProto (1 = key, 2 = value). */
    private static Map.Entry<String, String> stringEntry(ByteBuffer b) {
        String key = "";
        String value = "";
        for (Reader e = new Reader(b); e.more(); ) {
            switch (e.tag()) {
                case 1 -> key = e.string();
                case 2 -> value = e.string();
                default -> e.skip();
            }
        }
        return Map.entry(key, value);
    }

    /**
     * Bits per element of a TensorProto.DataType with a fixed width, 0 for the others (string, unknown): what an
     * external tensor's length is checked against.
     */
    public static int bits(int dataType) {
        return switch (dataType) {
            case 2, 3, 9, 17, 18, 19, 20 -> 8;           // uint8, int8, bool, float8 variants
            case 4, 5, 10, 16 -> 16;                     // uint16, int16, float16, bfloat16
            case 1, 6, 12 -> 32;                         // float, int32, uint32
            case 7, 11, 13, 14 -> 64;                    // int64, double, uint64, complex64
            case 15 -> 128;                              // complex128
            case 21, 22, 23 -> 4;                        // uint4, int4, float4e2m1
            default -> 0;
        };
    }

    /**
     * The data file an external tensor names, resolved against {@code dir} (the graph file's directory, absolute
     * and normalised). The location comes from the model, which is data: it must name a file inside {@code dir}
     * by a relative path without {@code ..}; anything else is refused before any file is opened. (A symbolic link
     * placed in the directory is followed: it was put there by whoever set up the directory, as the Hugging Face
     * cache does, not by the model's content.)
     *
     * @throws IllegalArgumentException naming the tensor and the location, and why it is refused
     */
    static Path dataFile(Path dir, String tensor, String location) {
        String refused = null;
        if (location == null || location.isEmpty()) {
            refused = "no location is given";
        } else if (location.indexOf('\0') >= 0) {
            refused = "it contains a NUL character";
        } else if (location.startsWith("/") || location.startsWith("\\") || location.matches("^[A-Za-z]:.*")) {
            refused = "it is an absolute path";
        } else if (java.util.Arrays.asList(location.split("[/\\\\]")).contains("..")) {
            refused = "it contains '..'";
        }
        Path resolved = null;
        if (refused == null) {
            try {
                Path p = Path.of(location);
                resolved = dir.resolve(p).normalize();
                if (p.isAbsolute() || !resolved.startsWith(dir) || resolved.equals(dir)) {
                    refused = "it resolves outside the model's directory";
                }
            } catch (java.nio.file.InvalidPathException e) {
                refused = "it is not a valid file name here";
            }
        }
        if (refused != null) {
            throw new ExternalDataException("tensor '" + tensor + "': external data location '" + location + "' is refused: "
                    + refused + " (a data file must be named relative to the model's directory, inside it)");
        }
        return resolved;
    }

    /**
     * External data that is refused (a location outside the model's directory, a missing or truncated data file):
     * reported as it is, not as a parse error; {@link #read} and {@link #map} throw it as the cause of their
     * exception, whose message names the graph file.
     */
    public static final class ExternalDataException extends IllegalArgumentException {
        ExternalDataException(String message) {
            super(message);
        }

        ExternalDataException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Resolves, maps (once per file) and checks the external data of one graph file's tensors. */
    private static final class ExternalData {
        private final Path modelFile;
        private final java.lang.foreign.Arena arena;
        private final Map<Path, java.lang.foreign.MemorySegment> mapped = new LinkedHashMap<>();
        private Path dir;

        ExternalData(Path modelFile, java.lang.foreign.Arena arena) {
            this.modelFile = modelFile;
            this.arena = arena;
        }

        List<Path> files() {
            return List.copyOf(mapped.keySet());
        }

        Tensor tensor(String name, long[] dims, int type, Map<String, String> entries) {
            if (dir == null) {
                Path parent = modelFile.toAbsolutePath().normalize().getParent();
                dir = parent == null ? Path.of("/") : parent;
            }
            Path file = dataFile(dir, name, entries.get("location"));
            java.lang.foreign.MemorySegment data = map(file, name);
            long fileSize = data.byteSize();
            long offset = number(entries, "offset", 0, name);
            long length = number(entries, "length", Math.max(0, fileSize - offset), name);
            String where = "'" + dir.relativize(file) + "'";
            if (offset + length > fileSize) {
                throw new ExternalDataException("tensor '" + name + "' needs bytes " + offset + ".." + (offset + length)
                        + " of " + where + ", which holds " + fileSize + " bytes (truncated?)");
            }
            long elements = 1;
            for (long d : dims) {
                elements = Math.multiplyExact(elements, d);
            }
            int bits = bits(type);
            long expected = (Math.multiplyExact(elements, bits) + 7) / 8;
            if (bits > 0 && length != expected) {
                throw new ExternalDataException("tensor '" + name + "' has " + length + " bytes in " + where + ", its shape "
                        + java.util.Arrays.toString(dims) + " needs " + expected + " (a truncated or mismatched data file?)");
            }
            if (length > Integer.MAX_VALUE) {
                throw new ExternalDataException("tensor '" + name + "' is " + length + " bytes: one tensor over 2 GiB is"
                        + " not supported");
            }
            ByteBuffer raw = data.asSlice(offset, length).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            return new Tensor(name, dims, type, raw, null, null, offset, file);
        }

        private java.lang.foreign.MemorySegment map(Path file, String tensor) {
            java.lang.foreign.MemorySegment m = mapped.get(file);
            if (m != null) {
                return m;
            }
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
                m = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            } catch (IOException e) {
                throw new ExternalDataException("tensor '" + tensor + "': cannot read its external data file '"
                        + dir.relativize(file) + "': " + (e instanceof java.nio.file.NoSuchFileException ? "missing" : e.getMessage()), e);
            }
            mapped.put(file, m);
            return m;
        }

        private static long number(Map<String, String> entries, String key, long absent, String tensor) {
            String v = entries.get(key);
            if (v == null) {
                return absent;
            }
            try {
                long n = Long.parseLong(v.trim());
                if (n >= 0) {
                    return n;
                }
            } catch (NumberFormatException e) {
                // refused below
            }
            throw new ExternalDataException("tensor '" + tensor + "': external data " + key + " '" + v
                    + "' is not a byte count");
        }
    }

    /** Protobuf wire format over a buffer slice: tags, varints, fixed32/64, length-delimited. */
    static final class Reader {
        private final ByteBuffer buf;
        private int wireType;

        Reader(ByteBuffer buf) {
            this.buf = buf.slice().order(ByteOrder.LITTLE_ENDIAN);
        }

        boolean more() {
            return buf.hasRemaining();
        }

        /** Reads a key and returns its field number; the wire type is kept for the value read next. */
        int tag() {
            long key = varint();
            wireType = (int) (key & 7);
            return (int) (key >>> 3);
        }

        long varint() {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                byte b = buf.get();
                v |= (long) (b & 0x7F) << shift;
                if (b >= 0) {
                    return v;
                }
            }
            throw new IllegalArgumentException("malformed varint");
        }

        ByteBuffer bytes() {
            expect(2);
            int n = Math.toIntExact(varint());
            if (n < 0 || n > buf.remaining()) {
                throw new IllegalArgumentException("length " + n + " runs past the end of its message");
            }
            ByteBuffer out = buf.slice(buf.position(), n).order(ByteOrder.LITTLE_ENDIAN);
            buf.position(buf.position() + n);
            return out;
        }

        String string() {
            ByteBuffer b = bytes();
            byte[] a = new byte[b.remaining()];
            b.get(a);
            return new String(a, StandardCharsets.UTF_8);
        }

        float fixed32Float() {
            expect(5);
            return buf.getFloat();
        }

        /** A repeated varint field, packed (wire type 2) or not (0). */
        void repeatedVarint(List<Long> into) {
            if (wireType == 2) {
                Reader packed = new Reader(bytes());
                while (packed.more()) {
                    into.add(packed.varint());
                }
            } else {
                expect(0);
                into.add(varint());
            }
        }

        /** A repeated float field, packed (wire type 2) or not (5). */
        void repeatedFloat(List<Float> into) {
            if (wireType == 2) {
                ByteBuffer b = bytes();
                while (b.hasRemaining()) {
                    into.add(b.getFloat());
                }
            } else {
                into.add(fixed32Float());
            }
        }

        void skip() {
            switch (wireType) {
                case 0 -> varint();
                case 1 -> buf.position(buf.position() + 8);
                case 2 -> bytes();
                case 5 -> buf.position(buf.position() + 4);
                default -> throw new IllegalArgumentException("unsupported wire type " + wireType);
            }
        }

        private void expect(int type) {
            if (wireType != type) {
                throw new IllegalArgumentException("wire type " + wireType + " where " + type + " was expected");
            }
        }
    }
}
