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

        Path external = tmp.resolve("external.onnx");
        Proto t = new Proto().varint(2, OnnxFile.FLOAT).string(8, "big").varint(14, 1);
        Files.write(external, new Proto().message(7, new Proto().message(5, t)).toBytes());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnnxFile.read(external)).getMessage()
                .contains("external file"));

        Path wrongSize = tmp.resolve("size.onnx");
        Proto short1 = new Proto().packedVarints(1, 2, 2).varint(2, OnnxFile.FLOAT).string(8, "w").bytes(9, floatsLE(1, 2, 3));
        Files.write(wrongSize, new Proto().message(7, new Proto().message(5, short1)).toBytes());
        OnnxFile f = OnnxFile.read(wrongSize);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> f.initializers().get("w").floats()).getMessage()
                .contains("raw_data holds 12 bytes, need 16"));
    }
}
