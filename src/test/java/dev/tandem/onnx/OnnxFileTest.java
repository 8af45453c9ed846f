package dev.tandem.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The hand-written protobuf reader, on ONNX messages encoded here field by field. */
public class OnnxFileTest {

    /** A minimal protobuf writer for the test: tags, varints, length-delimited fields. */
    public static final class Proto {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        public Proto varint(int field, long v) {
            key(field, 0);
            raw(v);
            return this;
        }

        public Proto bytes(int field, byte[] b) {
            key(field, 2);
            raw(b.length);
            out.writeBytes(b);
            return this;
        }

        public Proto string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        public Proto message(int field, Proto m) {
            return bytes(field, m.out.toByteArray());
        }

        public Proto fixed32(int field, float f) {
            key(field, 5);
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(f).array());
            return this;
        }

        public Proto packedVarints(int field, long... vs) {
            Proto p = new Proto();
            for (long v : vs) {
                p.raw(v);
            }
            return bytes(field, p.out.toByteArray());
        }

        void key(int field, int wire) {
            raw(((long) field << 3) | wire);
        }

        void raw(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }

        public byte[] toBytes() {
            return out.toByteArray();
        }
    }

    public static byte[] floatsLE(float... fs) {
        ByteBuffer b = ByteBuffer.allocate(4 * fs.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : fs) {
            b.putFloat(f);
        }
        return b.array();
    }

    static byte[] model() {
        Proto rawFloat = new Proto().packedVarints(1, 2, 3).varint(2, OnnxFile.FLOAT).string(8, "w_raw")
                .bytes(9, floatsLE(1, 2, 3, 4, 5, 6));
        Proto floatData = new Proto().varint(1, 2).varint(2, OnnxFile.FLOAT).string(8, "w_floats")
                .fixed32(4, 0.5f).fixed32(4, -1.5f);  // unpacked repeated float
        Proto uint8 = new Proto().varint(1, 3).varint(2, OnnxFile.UINT8).string(8, "w_u8").packedVarints(5, 0, 128, 255);
        Proto int64 = new Proto().varint(1, 2).varint(2, OnnxFile.INT64).string(8, "shape")
                .packedVarints(7, 7, -1L);
        Proto constant = new Proto().varint(2, OnnxFile.FLOAT).string(8, "c").bytes(9, floatsLE(127f));
        Proto attrT = new Proto().string(1, "value").message(5, constant).varint(20, 4);
        Proto attrI = new Proto().string(1, "axis").varint(3, -1L).varint(20, 2);
        Proto node1 = new Proto().string(1, "x").string(1, "w_raw").string(2, "y").string(3, "/layers.0/mlp/up_proj/MatMul")
                .string(4, "MatMul");
        Proto node2 = new Proto().string(2, "c_out").string(3, "/Constant").string(4, "Constant").message(5, attrT)
                .message(5, attrI).string(6, "a doc string to skip");
        Proto input = new Proto().string(1, "x").bytes(2, new byte[] {8, 1});  // type (skipped)
        Proto output = new Proto().string(1, "y");
        Proto graph = new Proto().message(1, node1).message(1, node2).string(2, "g").message(5, rawFloat)
                .message(5, floatData).message(5, uint8).message(5, int64).message(11, input).message(12, output);
        return new Proto().varint(1, 8).string(2, "test").message(8, new Proto().varint(2, 14)).message(7, graph).toBytes();
    }

    @Test
    void readsNodesInitializersAndConstants(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("m.onnx");
        Files.write(file, model());
        OnnxFile f = OnnxFile.read(file);
        assertEquals(List.of("x"), f.inputs());
        assertEquals(List.of("y"), f.outputs());
        assertEquals(2, f.nodes().size());
        OnnxFile.Node mm = f.nodes().get(0);
        assertEquals("MatMul", mm.opType());
        assertEquals("/layers.0/mlp/up_proj/MatMul", mm.name());
        assertEquals(List.of("x", "w_raw"), mm.inputs());
        assertEquals(List.of("y"), mm.outputs());
        assertEquals("", mm.input(5));

        OnnxFile.Tensor w = f.initializers().get("w_raw");
        assertArrayEquals(new long[] {2, 3}, w.dims());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, w.floats());
        assertArrayEquals(new float[] {0.5f, -1.5f}, f.initializers().get("w_floats").floats());
        assertArrayEquals(new byte[] {0, (byte) 128, (byte) 255}, f.initializers().get("w_u8").bytes());
        assertArrayEquals(new long[] {0, 128, 255}, f.initializers().get("w_u8").longs());
        assertArrayEquals(new long[] {7, -1}, f.initializers().get("shape").longs());

        OnnxFile.Node c = f.nodes().get(1);
        assertEquals(-1L, c.attributes().get("axis").i());
        assertArrayEquals(new float[] {127f}, f.constant("c_out").floats(), "a Constant node's value");
        assertEquals(0, f.constant("c_out").dims().length);
        assertEquals(w, f.constant("w_raw"));
        assertNull(f.constant("y"), "computed values are not constants");
        assertThrows(IllegalArgumentException.class, () -> w.bytes(), "type is checked");
    }

    /** A float tensor whose data is in an external file: data_location EXTERNAL (14) and external_data entries (13). */
    public static Proto externalTensor(String name, long[] dims, String location, Long offset, Long length) {
        Proto t = new Proto().packedVarints(1, dims).varint(2, OnnxFile.FLOAT).string(8, name);
        if (location != null) {
            t.message(13, new Proto().string(1, "location").string(2, location));
        }
        if (offset != null) {
            t.message(13, new Proto().string(1, "offset").string(2, offset.toString()));
        }
        if (length != null) {
            t.message(13, new Proto().string(1, "length").string(2, length.toString()));
        }
        return t.varint(14, 1);
    }

    /** A model of one MatMul whose initializers are {@code tensors}. */
    static byte[] modelWith(Proto... tensors) {
        Proto graph = new Proto().message(1, new Proto().string(1, "x").string(1, "w").string(2, "y")
                .string(4, "MatMul"));
        for (Proto t : tensors) {
            graph.message(5, t);
        }
        return new Proto().varint(1, 8).message(7, graph).toBytes();
    }

    @Test
    void readsTensorsFromExternalDataFiles(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("model.onnx");
        byte[] data = new byte[8 + 24 + 8];
        System.arraycopy(floatsLE(1, 2, 3, 4, 5, 6), 0, data, 8, 24);
        System.arraycopy(floatsLE(7, 8), 0, data, 32, 8);
        Files.write(tmp.resolve("model.onnx_data"), data);
        Files.createDirectories(tmp.resolve("weights"));
        Files.write(tmp.resolve("weights/whole.bin"), floatsLE(-1, -2));
        Files.write(model, modelWith(externalTensor("w", new long[] {2, 3}, "model.onnx_data", 8L, 24L),
                externalTensor("tail", new long[] {2}, "model.onnx_data", 32L, null),   // length: to the end of the file
                externalTensor("whole", new long[] {2}, "./weights/whole.bin", null, null),
                new Proto().varint(1, 1).varint(2, OnnxFile.FLOAT).string(8, "inline").bytes(9, floatsLE(9))));
        for (boolean mapped : new boolean[] {false, true}) {
            try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                OnnxFile f = mapped ? OnnxFile.map(model, arena) : OnnxFile.read(model);
                OnnxFile.Tensor w = f.initializers().get("w");
                assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, w.floats());
                assertEquals(tmp.resolve("model.onnx_data").toAbsolutePath().normalize(), w.dataFile());
                assertEquals(8, w.rawOffset(), "its offset in the data file (the offload mode maps that range)");
                assertArrayEquals(new float[] {7, 8}, f.initializers().get("tail").floats());
                assertArrayEquals(new float[] {-1, -2}, f.initializers().get("whole").floats());
                assertArrayEquals(new float[] {9}, f.initializers().get("inline").floats());
                assertNull(f.initializers().get("inline").dataFile());
                assertEquals(List.of(tmp.resolve("model.onnx_data").toAbsolutePath().normalize(),
                        tmp.resolve("weights/whole.bin").toAbsolutePath().normalize()), f.dataFiles());
            }
        }
    }

    /** The location is the model's data, not a path to follow: outside the model's directory nothing is opened. */
    @Test
    void refusesDataLocationsOutsideTheModelsDirectory(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        Files.write(tmp.resolve("outside.bin"), floatsLE(1, 2));  // exists: refused all the same
        Files.write(dir.resolve("inside.bin"), floatsLE(1, 2));
        for (String location : List.of("../outside.bin", "/etc/passwd", tmp.resolve("outside.bin").toString(),
                "sub/../../outside.bin", "inside.bin/../../outside.bin", "..\\outside.bin", "C:\\Windows\\win.ini",
                "\\\\server\\share\\x", ".", "", "in\0side.bin")) {
            Path model = dir.resolve("model.onnx");
            Files.write(model, modelWith(externalTensor("w", new long[] {2}, location, null, null)));
            for (boolean mapped : new boolean[] {false, true}) {
                try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> { var unused = mapped ? OnnxFile.map(model, arena) : OnnxFile.read(model); }, location);
                    assertTrue(e.getMessage().startsWith(model + ": tensor 'w': external data location '" + location
                            + "' is refused: "), e.getMessage());
                    assertTrue(e.getMessage().contains("inside it"), e.getMessage());
                }
            }
        }
        Path noLocation = dir.resolve("none.onnx");
        Files.write(noLocation, modelWith(externalTensor("w", new long[] {2}, null, null, null)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(noLocation)).getMessage()
                .contains("no location is given"));
    }

    @Test
    void refusesTruncatedMissingOrMismatchedDataFiles(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("model.onnx");
        Files.write(tmp.resolve("model.onnx_data"), new byte[20]);
        Files.write(model, modelWith(externalTensor("w", new long[] {2, 3}, "model.onnx_data", 8L, 24L)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(model));
        assertEquals(model + ": tensor 'w' needs bytes 8..32 of 'model.onnx_data', which holds 20 bytes (truncated?)",
                e.getMessage());

        Files.write(model, modelWith(externalTensor("w", new long[] {2, 3}, "model.onnx_data", 0L, null)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(model)).getMessage()
                .contains("tensor 'w' has 20 bytes in 'model.onnx_data', its shape [2, 3] needs 24"));

        Files.write(model, modelWith(externalTensor("w", new long[] {2}, "model.onnx_data", -4L, null)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(model)).getMessage()
                .contains("offset '-4' is not a byte count"));

        Files.write(model, modelWith(externalTensor("w", new long[] {2}, "gone.bin", null, null)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(model)).getMessage()
                .contains("tensor 'w': cannot read its external data file 'gone.bin': missing"));
    }

    @Test
    void refusesMalformedFilesNamingThem(@TempDir Path tmp) throws Exception {
        Path cut = tmp.resolve("cut.onnx");
        byte[] m = model();
        Files.write(cut, java.util.Arrays.copyOf(m, m.length - 20));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(cut));
        assertTrue(e.getMessage().startsWith(cut + ": not a readable ONNX model"), e.getMessage());

        Path noGraph = tmp.resolve("empty.onnx");
        Files.write(noGraph, new Proto().varint(1, 8).toBytes());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(noGraph)).getMessage().contains("no graph"));

        Path wrongSize = tmp.resolve("size.onnx");
        Proto short1 = new Proto().packedVarints(1, 2, 2).varint(2, OnnxFile.FLOAT).string(8, "w").bytes(9, floatsLE(1, 2, 3));
        Files.write(wrongSize, new Proto().message(7, new Proto().message(5, short1)).toBytes());
        OnnxFile f = OnnxFile.read(wrongSize);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> f.initializers().get("w").floats()).getMessage()
                .contains("raw_data holds 12 bytes, need 16"));
    }
}
