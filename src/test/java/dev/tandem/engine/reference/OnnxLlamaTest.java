package dev.tandem.engine.reference;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.onnx.OnnxFile;
import dev.tandem.onnx.OnnxFileTest.Proto;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the ONNX weight reader refuses, on small graphs written here (the real graphs are covered against ONNX Runtime). */
class OnnxLlamaTest {
    static final String CONFIG = """
            {"hidden_size": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 2,
             "intermediate_size": 4, "num_hidden_layers": 1, "vocab_size": 8, "max_position_embeddings": 16}""";

    static Proto node(String name, String op, String[] in, String out) {
        Proto n = new Proto();
        for (String i : in) {
            n.string(1, i);
        }
        return n.string(2, out).string(3, name).string(4, op);
    }

    static Proto floats(String name, long... dims) {
        Proto t = new Proto();
        long n = 1;
        for (long d : dims) {
            t.varint(1, d);
            n *= d;
        }
        return t.varint(2, OnnxFile.FLOAT).string(8, name).bytes(9, new byte[(int) (4 * n)]);
    }

    static Path write(Path dir, Proto graph) throws Exception {
        Files.writeString(dir.resolve("config.json"), CONFIG);
        Path onnx = dir.resolve("model.onnx");
        Files.write(onnx, new Proto().message(7, graph).toBytes());
        return onnx;
    }

    @Test
    void refusesAGraphWithoutHuggingFaceRotary(@TempDir Path dir) throws Exception {
        Path onnx = write(dir, new Proto().message(1, node("/model/layers.0/self_attn/q_proj/MatMul", "MatMul",
                new String[] {"x", "wq"}, "q")).message(5, floats("wq", 4, 4)));
        var e = assertThrows(IllegalArgumentException.class, () -> OnnxLlama.load(onnx, dir.resolve("config.json")));
        assertTrue(e.getMessage().startsWith(onnx + ": no rotate_half (Neg)"), e.getMessage());
    }

    @Test
    void namesTheProjectionItCannotFind(@TempDir Path dir) throws Exception {
        Proto g = new Proto().message(1, node("/Neg", "Neg", new String[] {"a"}, "b"))
                .message(1, node("/model/layers.0/self_attn/q_proj/MatMul", "MatMul", new String[] {"x", "wq"}, "q"))
                .message(1, node("/lm_head/MatMul", "MatMul", new String[] {"h", "wcls"}, "logits"))
                .message(5, floats("wq", 4, 4)).message(5, floats("wcls", 4, 8));
        Path onnx = write(dir, g);
        var e = assertThrows(IllegalArgumentException.class, () -> OnnxLlama.load(onnx, dir.resolve("config.json")));
        assertTrue(e.getMessage().contains("no k_proj product found for layer 0"), e.getMessage());
    }

    @Test
    void refusesInt8ProductsThatAreNotThePerTokenScheme(@TempDir Path dir) throws Exception {
        Proto wq = new Proto().varint(1, 4).varint(1, 4).varint(2, OnnxFile.UINT8).string(8, "wq").bytes(9, new byte[16]);
        Proto zp = new Proto().varint(2, OnnxFile.UINT8).string(8, "zp").bytes(9, new byte[] {0});  // per tensor, not 128
        Proto g = new Proto().message(1, node("/Neg", "Neg", new String[] {"a"}, "b"))
                .message(1, node("/x/DynamicQuantizeLinear", "DynamicQuantizeLinear", new String[] {"x"}, "xq"))
                .message(1, node("layers.0_self_attn_q_proj_MatMulInteger", "MatMulInteger",
                        new String[] {"xq", "wq", "zp", "wzp"}, "i32"))
                .message(5, wq).message(5, zp);
        Path onnx = write(dir, g);
        var e = assertThrows(IllegalArgumentException.class, () -> OnnxLlama.load(onnx, dir.resolve("config.json")));
        assertTrue(e.getMessage().contains("activation zero point is not the constant 128"), e.getMessage());
    }
}
