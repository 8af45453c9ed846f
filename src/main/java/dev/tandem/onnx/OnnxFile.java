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
 * 7 = int64_data, 8 = name, 9 = raw_data, 14 = data_location; ValueInfoProto 1 = name.
 * Everything else is skipped. Tensors stored outside the file (external data) are refused.
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
     * @param rawOffset where {@code raw} starts in the file (-1 without raw_data): the offload mode maps
     *                  that byte range again when it needs the values ({@link #at})
     */
    public record Tensor(String name, long[] dims, int dataType, ByteBuffer raw, float[] floatData, long[] intData,
                         long rawOffset) {

        /** This tensor with its raw_data read from {@code window}, a mapping of the file's bytes from {@code start}. */
        public Tensor at(java.lang.foreign.MemorySegment window, long start) {
            if (rawOffset < 0) {
                return this;
            }
            ByteBuffer b = window.asSlice(rawOffset - start, raw.capacity()).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            return new Tensor(name, dims, dataType, b, floatData, intData, rawOffset);
        }

        /** The byte range [rawOffset, rawEnd) of raw_data in the file. */
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

    private OnnxFile(Path file, Map<String, Tensor> initializers, List<Node> nodes, List<String> inputs, List<String> outputs) {
        this.file = file;
        this.initializers = initializers;
        this.nodes = nodes;
        this.inputs = inputs;
        this.outputs = outputs;
    }

    public static OnnxFile read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        try {
            return parse(file, ByteBuffer.wrap(bytes));
        } catch (IllegalArgumentException | IndexOutOfBoundsException | java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(file + ": not a readable ONNX model: " + e.getMessage(), e);
        }
    }

    /**
     * Parses {@code file} from a read-only mapping in {@code arena} instead of reading it: tensors'
     * raw_data stay views of the mapping (untouched pages are not read), valid while the arena is open.
     */
    public static OnnxFile map(Path file, java.lang.foreign.Arena arena) {
        ByteBuffer model;
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            model = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena).asByteBuffer();
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        try {
            return parse(file, model);
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

    static OnnxFile parse(Path file, ByteBuffer model) {
        // the file offset of a slice: its address minus the file's (heap buffers: offsets in the array)
        long base = java.lang.foreign.MemorySegment.ofBuffer(model).address();
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
                case 1 -> nodes.add(node(r.bytes(), base));
                case 5 -> {
                    Tensor t = tensor(r.bytes(), base);
                    inits.put(t.name(), t);
                }
                case 11 -> inputs.add(valueInfoName(r.bytes()));
                case 12 -> outputs.add(valueInfoName(r.bytes()));
                default -> r.skip();
            }
        }
        return new OnnxFile(file, inits, nodes, List.copyOf(inputs), List.copyOf(outputs));
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

    private static Node node(ByteBuffer b, long base) {
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
                    Attribute a = attribute(r.bytes(), base);
                    attrs.put(a.name(), a);
                }
                default -> r.skip();
            }
        }
        return new Node(name, op, List.copyOf(in), List.copyOf(out), attrs);
    }

    private static Attribute attribute(ByteBuffer b, long base) {
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
                case 5 -> t = tensor(r.bytes(), base);
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

    private static Tensor tensor(ByteBuffer b, long base) {
        String name = "";
        List<Long> dims = new ArrayList<>();
        int type = 0;
        ByteBuffer raw = null;
        List<Float> floats = new ArrayList<>();
        List<Long> ints = new ArrayList<>();
        for (Reader r = new Reader(b); r.more(); ) {
            switch (r.tag()) {
                case 1 -> r.repeatedVarint(dims);
                case 2 -> type = (int) r.varint();
                case 4 -> r.repeatedFloat(floats);
                case 5, 7 -> r.repeatedVarint(ints);   // int32_data (also uint8/int8/...), int64_data
                case 8 -> name = r.string();
                case 9 -> raw = r.bytes();
                case 14 -> {
                    if (r.varint() == 1) {
                        throw new IllegalArgumentException("tensor '" + name + "' is stored in an external file (not supported)");
                    }
                }
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
        long rawOffset = raw == null ? -1 : java.lang.foreign.MemorySegment.ofBuffer(raw).address() - base;
        return new Tensor(name, dims.stream().mapToLong(Long::longValue).toArray(), type, raw, fd, id, rawOffset);
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
