package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.ModelShape;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.memory.WeightInventory;
import dev.tandem.engine.Llama2cHeader;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A llama2.c directory (a checkpoint {@code .bin} and its {@code tokenizer.bin}, as ../shared/models/stories260K has
 * them) opens as a model: its header is its config, its tokenizer is found by its vocabulary's size, and each way
 * it can be wrong fails start-up naming the file and what to do.
 */
@RequiresSharedModels
class Llama2cDirectoryTest {

    static Path llama2cDir() {
        return SharedModels.stories260kBin().getParent();
    }

    /** A scratch directory with the checkpoint and tokenizer under the given names (null: left out). */
    static Path scratch(Path tmp, String checkpoint, String tokenizer) throws IOException {
        if (checkpoint != null) {
            Files.copy(SharedModels.stories260kBin(), tmp.resolve(checkpoint));
        }
        if (tokenizer != null) {
            Files.copy(SharedModels.stories260kTokenizerBin(), tmp.resolve(tokenizer));
        }
        return tmp;
    }

    static String failure(Path dir) {
        return assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(dir)).getMessage();
    }

    @Test
    void theCheckpointsHeaderIsTheConfigAndItsTokenizerIsFound() {
        ModelDirectory d = ModelDirectory.open(llama2cDir());
        assertTrue(d.isLlama2c());
        assertEquals("stories260K.bin", d.graph().getFileName().toString());
        assertEquals("tok512.bin", d.tokenizerFile().getFileName().toString());
        assertEquals("llama2.c", d.config().modelType());
        assertEquals(new ModelShape(512, 512, 5, 4, 8, 4), d.config().shape());
        assertEquals(1, d.config().bosTokenId());
        assertEquals(List.of(2), d.config().eosTokenIds());
        assertEquals("float32", d.quantization());
        assertEquals(d.graph(), d.files().configJson(), "the header is the config the engine checks against");
        assertTrue(d.config().samplingDefaults().isEmpty());
        try (TextTokenizer t = TextTokenizer.load(d)) {
            assertTrue(t instanceof Llama2cTokenizer);
            assertEquals(512, t.vocabSize());
        }
    }

    @Test
    void theReferenceEngineServesItAtTheConfiguredContextAndGraphEnginesRefuseIt() {
        ModelDirectory d = ModelDirectory.open(llama2cDir());
        ModelShape shorter = new ModelShape(512, 128, 5, 4, 8, 4);
        try (ReferenceCausalLm lm = ReferenceCausalLm.open(new dev.tandem.engine.ModelFiles(d.graph(), d.graph(), shorter))) {
            assertEquals(shorter, lm.shape());
        }
        var e = assertThrows(IllegalArgumentException.class, () -> ReferenceCausalLm.open(new dev.tandem.engine.ModelFiles(
                d.graph(), d.graph(), new ModelShape(600, 512, 5, 4, 8, 4))));
        assertTrue(e.getMessage().contains("stories260K.bin says"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults()));
        assertTrue(e.getMessage().contains("llama2.c checkpoint") && e.getMessage().contains("engine=reference"), e.getMessage());
    }

    @Test
    void itsWeightsAreCountedFromTheHeader() {
        WeightInventory w = WeightInventory.llama2c(Llama2cHeader.read(SharedModels.stories260kBin()));
        // ../shared/models/stories260K/README.md: 264,128 float32 values, of which 4,096 are the rotary tables
        assertEquals(264_128 - 4_096, w.parameters());
        assertEquals(4 * 4_096, w.constantBytes());
        assertEquals(4L * 264_128, w.initializerBytes());
        assertEquals(1_056_540 - 28, w.initializerBytes());
    }

    @Test
    void severalCheckpointsNeedTheGraphSetting(@TempDir Path tmp) throws IOException {
        scratch(tmp, "a.bin", "tokenizer.bin");
        Files.copy(SharedModels.stories260kBin(), tmp.resolve("b.bin"));
        String m = failure(tmp);
        assertTrue(m.contains("2 llama2.c checkpoints (a.bin, b.bin)") && m.contains("tandem.target.graph"), m);
        ModelDirectory d = ModelDirectory.open(tmp, List.of(), Optional.of("b.bin"));
        assertEquals("b.bin", d.graph().getFileName().toString());
        assertEquals("tokenizer.bin", d.tokenizerFile().getFileName().toString());
    }

    @Test
    void theTokenizerMustBeThereAndUnambiguous(@TempDir Path tmp) throws IOException {
        Path alone = Files.createDirectory(tmp.resolve("alone"));
        scratch(alone, "model.bin", null);
        String m = failure(alone);
        assertTrue(m.contains("model.bin: no llama2.c tokenizer of its 512 tokens"), m);

        Path two = Files.createDirectory(tmp.resolve("two"));
        scratch(two, "model.bin", "tok512.bin");
        Files.copy(SharedModels.stories260kTokenizerBin(), two.resolve("other.bin"));
        m = failure(two);
        assertTrue(m.contains("2 llama2.c tokenizers of 512 tokens (other.bin, tok512.bin)"), m);
        Files.move(two.resolve("other.bin"), two.resolve("tokenizer.bin"));
        assertEquals("tokenizer.bin", ModelDirectory.open(two).tokenizerFile().getFileName().toString());
    }

    @Test
    void aTruncatedCheckpointOrANewerExportIsNamed(@TempDir Path tmp) throws IOException {
        Path truncated = Files.createDirectory(tmp.resolve("truncated"));
        scratch(truncated, null, "tokenizer.bin");
        byte[] all = Files.readAllBytes(SharedModels.stories260kBin());
        Files.write(truncated.resolve("model.bin"), java.util.Arrays.copyOf(all, all.length - 4096));
        String m = failure(truncated);
        assertTrue(m.contains("no model graph") && m.contains("model.bin: not a llama2.c checkpoint of its header")
                && m.contains("(truncated?)"), m);

        Path v2 = Files.createDirectory(tmp.resolve("v2"));
        scratch(v2, null, "tokenizer.bin");
        ByteBuffer header = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN).putInt(0x616b3432).putInt(2);
        Files.write(v2.resolve("model_q80.bin"), header.array());
        m = failure(v2);
        assertTrue(m.contains("model_q80.bin: a llama2.c export.py --version 2 file (int8, Q8_0)")
                && m.contains("--version 0"), m);

        Path empty = Files.createDirectory(tmp.resolve("empty"));
        m = failure(empty);
        assertTrue(m.contains("no model graph: expected one of") && m.contains("llama2.c checkpoint (.bin)"), m);
    }

    @Test
    void aManifestMustListTheCheckpoint(@TempDir Path tmp) throws IOException {
        scratch(tmp, "model.bin", "tokenizer.bin");
        Files.writeString(tmp.resolve(ModelDirectory.MANIFEST), ModelDirectory.sha256(tmp.resolve("tokenizer.bin"))
                + "  tokenizer.bin\n");
        String m = failure(tmp);
        assertTrue(m.contains("does not list model.bin"), m);
        Files.writeString(tmp.resolve(ModelDirectory.MANIFEST), ModelDirectory.sha256(tmp.resolve("model.bin"))
                + "  model.bin\n");
        assertEquals("model.bin", ModelDirectory.open(tmp).graph().getFileName().toString());
    }
}
