package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.EngineProvider;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.ModelFiles;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.engine.reference.ReferenceEngine;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code tandem.<model>.engine}: which engine a model directory is opened with (no application started). */
class EngineSelectionTest {
    /** A provider that must not be the one chosen. */
    record Elsewhere(List<String> names) implements EngineProvider {
        @Override
        public Opened open(String name, ModelFiles model, boolean draft) {
            return fail("the wrong engine was opened");
        }
    }

    static final List<EngineProvider> ENGINES = List.of(new Elsewhere(List.of("openvino")), new ReferenceEngine(),
            new Elsewhere(List.of("onnxruntime")));

    static EngineProvider.Opened open(String engine, ModelDirectory dir) {
        return ModelRegistry.provider(engine, dir.dir(), ENGINES).open(engine, dir.files(), false);
    }

    @Test
    void referenceOpensTheModelDirectoryInPlainJavaWithoutTouchingTheNativeRuntimes() {
        ModelDirectory dir = ModelDirectory.open(Path.of("models/kjv-draft"));
        EngineProvider.Opened opened = open("reference", dir);
        assertEquals("reference", opened.description());
        try (var lm = opened.lm()) {
            assertTrue(lm instanceof ReferenceCausalLm);
            assertEquals(dir.config().shape(), lm.shape());
            assertTrue(lm.supportsRollback());
            assertEquals(CausalLm.CacheStorage.JAVA_HEAP, lm.cacheStorage(), "memory planning counts Java arrays");
            try (KvCache cache = lm.newCache()) {
                assertEquals(1, lm.forward(cache, 1).rows());
            }
        }
    }

    @Test
    void referenceOffloadOpensTheSameEngineWithTheWeightsLeftInTheFile() {
        ModelDirectory dir = ModelDirectory.open(Path.of("models/kjv-draft"));
        EngineProvider.Opened opened = open("reference-offload", dir);
        assertEquals("reference-offload", opened.description());
        try (var lm = opened.lm(); var normal = ReferenceCausalLm.open(dir.files())) {
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
    void eachNameReachesTheProviderServingItAndUnknownNamesAreRefusedListingTheChoices() {
        Path dir = Path.of("models/kjv-draft");
        assertSame(ENGINES.get(2), ModelRegistry.provider("onnxruntime", dir, ENGINES));
        assertSame(ENGINES.get(0), ModelRegistry.provider("openvino", dir, ENGINES));
        assertSame(ENGINES.get(1), ModelRegistry.provider("reference-offload", dir, ENGINES));
        var e = assertThrows(IllegalArgumentException.class, () -> ModelRegistry.provider("llamacpp", dir, ENGINES));
        assertTrue(e.getMessage().contains("unknown engine 'llamacpp'"), e.getMessage());
        assertTrue(e.getMessage().endsWith("(available: onnxruntime, openvino, reference, reference-offload)"),
                e.getMessage());
    }
}
