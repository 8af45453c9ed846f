package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.tandem.engine.KvCache;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** {@code tandem.<model>.engine}: which engine a model directory is opened with (no application started). */
class EngineSelectionTest {
    static final Supplier<ModelRegistry.Opened> NOT_THIS = () -> fail("the wrong engine was opened");

    @Test
    void referenceOpensTheModelDirectoryInPlainJavaWithoutTouchingTheNativeRuntimes() {
        ModelDirectory dir = ModelDirectory.open(Path.of("models/kjv-draft"));
        ModelRegistry.Opened opened = ModelRegistry.open("reference", dir, NOT_THIS, NOT_THIS);
        assertEquals("reference", opened.engineName());
        try (var lm = opened.lm()) {
            assertTrue(lm instanceof ReferenceCausalLm);
            assertEquals(dir.config().shape(), lm.shape());
            assertTrue(lm.supportsRollback());
            try (KvCache cache = lm.newCache()) {
                assertEquals(1, lm.forward(cache, 1).rows());
            }
        }
    }

    @Test
    void referenceOffloadOpensTheSameEngineWithTheWeightsLeftInTheFile() {
        ModelDirectory dir = ModelDirectory.open(Path.of("models/kjv-draft"));
        ModelRegistry.Opened opened = ModelRegistry.open("reference-offload", dir, NOT_THIS, NOT_THIS);
        assertEquals("reference-offload", opened.engineName());
        try (var lm = opened.lm(); var normal = ReferenceCausalLm.open(dir)) {
            assertTrue(lm instanceof ReferenceCausalLm r && r.offloaded());
            assertEquals(dir.config().shape(), lm.shape());
            assertTrue(lm.supportsRollback());
            try (KvCache cache = lm.newCache(); KvCache expected = normal.newCache()) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(normal.forward(expected, 1).row(0),
                        lm.forward(cache, 1).row(0));
            }
        }
    }

        @Test
    void theOtherNamesReachTheirRuntimesAndUnknownNamesAreRefusedListingTheChoices() {
        ModelDirectory dir = ModelDirectory.open(Path.of("models/kjv-draft"));
        ModelRegistry.Opened marker = new ModelRegistry.Opened(null, "x");
        assertEquals(marker, ModelRegistry.open("onnxruntime", dir, () -> marker, NOT_THIS));
        assertEquals(marker, ModelRegistry.open("openvino", dir, NOT_THIS, () -> marker));
        var e = assertThrows(IllegalArgumentException.class, () -> ModelRegistry.open("llamacpp", dir, NOT_THIS, NOT_THIS));
        assertTrue(e.getMessage().contains("unknown engine 'llamacpp'"), e.getMessage());
        assertTrue(e.getMessage().endsWith("(available: onnxruntime, openvino, reference, reference-offload)"),
                e.getMessage());
    }
}
