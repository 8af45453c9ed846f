package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A bad model directory fails with a message that names the file and what is wrong. */
@RequiresSharedModels
class ModelDirectoryTest {

    /** A scratch copy of the shared model (in a temp dir, deleted after the test). */
    static Path copy(Path to) throws IOException {
        try (Stream<Path> files = Files.list(SharedModels.stories260kHf())) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
        return to;
    }

    @Test
    void readsConfigAndGenerationConfig() {
        ModelDirectory d = ModelDirectory.open(SharedModels.stories260kHf());
        assertEquals("llama", d.config().modelType());
        assertEquals(1, d.config().bosTokenId());
        assertEquals(List.of(2), d.config().eosTokenIds());
        assertEquals(512, d.config().shape().maxContext());
        assertEquals("model.onnx", d.graph().getFileName().toString());
    }

    @Test
    void missingFilesAreNamed(@TempDir Path tmp) throws IOException {
        for (String name : List.of("model.onnx", "config.json", "tokenizer.json")) {
            Path d = Files.createDirectory(tmp.resolve("m-" + name));
            copy(d);
            Files.delete(d.resolve(name));
            var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(d));
            assertTrue(e.getMessage().contains(name), e.getMessage());
        }
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp.resolve("nope")));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
    }

    @Test
    void invalidJsonIsNamed(@TempDir Path tmp) throws IOException {
        copy(tmp);
        Files.writeString(tmp.resolve("config.json"), "{ not json");
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void checksumManifestIsVerified(@TempDir Path tmp) throws IOException {
        copy(tmp);
        String sum = ModelDirectory.sha256(tmp.resolve("model.onnx"));
        Files.writeString(tmp.resolve("SHA256SUMS"), sum + "  model.onnx\n");
        ModelDirectory.open(tmp);  // intact: loads

        byte[] bytes = Files.readAllBytes(tmp.resolve("model.onnx"));
        bytes[bytes.length / 2] ^= 1;
        Files.write(tmp.resolve("model.onnx"), bytes);
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp));
        assertTrue(e.getMessage().contains("model.onnx") && e.getMessage().contains("checksum mismatch"), e.getMessage());
    }

    /**
     * A directory with an engine's own graph beside its portable one: the engine that prefers it gets it, every
     * other engine the portable graph; a configured graph wins over both, stays a file of the directory, and a
     * manifest must vouch for whichever graph is loaded.
     */
    @Test
    void anEnginesOwnGraphIsChosenOnlyForThatEngineAndAConfiguredGraphWins(@TempDir Path tmp) throws IOException {
        copy(tmp);
        Files.copy(tmp.resolve("model.onnx"), tmp.resolve("model_optimized.onnx"));
        List<String> ort = dev.tandem.engine.onnxruntime.OnnxRuntimeEngine.PREFERRED_GRAPHS;
        assertEquals("model_optimized.onnx", ModelDirectory.open(tmp, ort, java.util.Optional.empty()).graph().getFileName().toString());
        assertEquals("model.onnx", ModelDirectory.open(tmp, List.of("openvino_model.xml"), java.util.Optional.empty())
                .graph().getFileName().toString());
        assertEquals("model.onnx", ModelDirectory.open(tmp).graph().getFileName().toString());
        assertEquals("model.onnx", ModelDirectory.open(tmp, ort, java.util.Optional.of("model.onnx")).graph().getFileName().toString());

        for (String bad : List.of("../model.onnx", "sub/model.onnx", "/etc/passwd", "..", "", "missing.onnx")) {
            var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp, ort, java.util.Optional.of(bad)));
            assertTrue(e.getMessage().startsWith("graph '" + bad + "'"), e.getMessage());
        }

        Files.writeString(tmp.resolve("SHA256SUMS"), ModelDirectory.sha256(tmp.resolve("model.onnx")) + "  model.onnx\n");
        ModelDirectory.open(tmp);  // the portable graph is listed
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp, ort, java.util.Optional.empty()));
        assertTrue(e.getMessage().contains("does not list model_optimized.onnx"), e.getMessage());
    }

    @Test
    void unsupportedGraphsAreNamed(@TempDir Path tmp) throws IOException {
        copy(tmp);
        Files.writeString(tmp.resolve("model.onnx"), "this is not an ONNX graph");
        ModelDirectory d = ModelDirectory.open(tmp);
        var e = assertThrows(IllegalArgumentException.class,
                () -> OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults()));
        assertTrue(e.getMessage().contains("model.onnx"), e.getMessage());
    }

    @Test
    void anOpenVinoIrDirectoryOpensForTheOpenVinoEngineOnly(@TempDir Path tmp) throws IOException {
        copy(tmp);
        Files.delete(tmp.resolve("model.onnx"));
        Files.writeString(tmp.resolve("openvino_model.xml"), "<net name=\"m\"><layers><layer type=\"Const\">"
                + "<data element_type=\"u8\" shape=\"64,64\"/></layer></layers></net>");
        var missingBin = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp));
        assertTrue(missingBin.getMessage().contains("openvino_model.bin"), missingBin.getMessage());
        Files.write(tmp.resolve("openvino_model.bin"), new byte[16]);
        ModelDirectory d = ModelDirectory.open(tmp);
        assertEquals("openvino_model.xml", d.graph().getFileName().toString());
        assertEquals("int8 (OpenVINO IR)", d.quantization());
        var e = assertThrows(IllegalArgumentException.class,
                () -> OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults()));
        assertTrue(e.getMessage().contains("OpenVINO IR") && e.getMessage().contains("engine=openvino"), e.getMessage());
    }

    @Test
    void executionProvidersThisBuildLacksFailWithGuidance() {
        ModelDirectory d = ModelDirectory.open(SharedModels.stories260kHf());
        for (String ep : List.of("openvino", "dnnl")) {
            var e = assertThrows(IllegalArgumentException.class, () -> OrtCausalLm.open(d.graph(), d.config().shape(),
                    new OnnxRuntimeOptions(1, true, false, "all", ep, "CPU")));
            assertTrue(e.getMessage().contains("'" + ep + "' execution provider") && e.getMessage().contains("onnxruntime.native.path")
                    && e.getMessage().contains("CPU"), e.getMessage());
        }
        var e = assertThrows(IllegalArgumentException.class, () -> OrtCausalLm.open(d.graph(), d.config().shape(),
                new OnnxRuntimeOptions(1, true, false, "all", "cuda-please", "CPU")));
        assertTrue(e.getMessage().contains("unknown ONNX Runtime execution provider"), e.getMessage());
    }

    @Test
    void configThatContradictsTheGraphIsNamed(@TempDir Path tmp) throws IOException {
        copy(tmp);
        String cfg = Files.readString(tmp.resolve("config.json")).replace("\"num_hidden_layers\": 5", "\"num_hidden_layers\": 6");
        Files.writeString(tmp.resolve("config.json"), cfg);
        ModelDirectory d = ModelDirectory.open(tmp);
        var e = assertThrows(IllegalArgumentException.class,
                () -> OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults()));
        assertTrue(e.getMessage().contains("num_hidden_layers=6"), e.getMessage());
    }

    /** stories260K described as ONNX Runtime GenAI's builder describes a model, with {@code decoder} entries added. */
    static String genAiConfig(String decoderExtra) {
        return """
                {"model": {"bos_token_id": 1, "context_length": 256, "eos_token_id": [2, 5],
                  "pad_token_id": 0, "type": "llama", "vocab_size": 512,
                  "decoder": {"filename": "model.onnx", "head_size": 8, "hidden_size": 64, "num_attention_heads": 8,
                    "num_hidden_layers": 5, "num_key_value_heads": 4%s,
                    "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                      "past_key_names": "past_key_values.%%d.key", "past_value_names": "past_key_values.%%d.value"},
                    "outputs": {"logits": "logits", "present_key_names": "present.%%d.key",
                      "present_value_names": "present.%%d.value"}}},
                 "search": {"do_sample": false, "max_length": 256, "temperature": 1.0}}
                """.formatted(decoderExtra);
    }

    /** A GenAI directory: genai_config.json instead of config.json and generation_config.json. */
    static Path genAiCopy(Path to, String config) throws IOException {
        copy(to);
        Files.delete(to.resolve("config.json"));
        Files.delete(to.resolve("generation_config.json"));
        Files.writeString(to.resolve(ModelDirectory.GENAI_CONFIG), config);
        return to;
    }

    /**
     * An ONNX Runtime GenAI directory is read from genai_config.json: sizes, the context the graph was built for, BOS
     * and several EOS ids; its graph runs.
     */
    @Test
    void aGenAiDirectoryIsDescribedByGenaiConfig(@TempDir Path tmp) throws IOException {
        ModelDirectory d = ModelDirectory.open(genAiCopy(tmp, genAiConfig("")));
        assertEquals("llama", d.config().modelType());
        assertEquals(new dev.tandem.engine.ModelShape(512, 256, 5, 4, 8, 4), d.config().shape());
        assertEquals(1, d.config().bosTokenId());
        assertEquals(List.of(2, 5), d.config().eosTokenIds());
        assertEquals(tmp.resolve(ModelDirectory.GENAI_CONFIG), d.files().configJson());
        try (var lm = OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults());
             var cache = lm.newCache()) {
            assertEquals(512, lm.forward(cache, new int[] {1, 403, 407}, 0, 3).vocabSize());
        }
    }

    /** The graph genai_config.json names is the one opened, and it must be a file name in the directory. */
    @Test
    void theGraphGenaiConfigNamesStaysInTheDirectory(@TempDir Path tmp) throws IOException {
        Path d = genAiCopy(Files.createDirectory(tmp.resolve("named")), genAiConfig("").replace("\"model.onnx\"", "\"decoder.onnx\""));
        Files.move(d.resolve("model.onnx"), d.resolve("decoder.onnx"));
        assertEquals("decoder.onnx", ModelDirectory.open(d).graph().getFileName().toString());
        for (String name : List.of("../model.onnx", "/etc/passwd", "sub/model.onnx", "..", "", "C:model.onnx")) {
            Path bad = genAiCopy(Files.createDirectory(tmp.resolve("bad" + Math.abs(name.hashCode()))),
                    genAiConfig("").replace("\"model.onnx\"", "\"" + name + "\""));
            var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(bad), name);
            assertTrue(e.getMessage().contains("model.decoder.filename"), e.getMessage());
        }
    }

    /** Renamed graph inputs are refused when the directory is opened, naming the entry. */
    @Test
    void renamedGraphInputsAreNamed(@TempDir Path tmp) throws IOException {
        genAiCopy(tmp, genAiConfig("").replace("\"input_ids\": \"input_ids\"", "\"input_ids\": \"inputIds\""));
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp));
        assertTrue(e.getMessage().contains("model.decoder.inputs.input_ids") && e.getMessage().contains("inputIds"),
                e.getMessage());
    }
}
