package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.ModelFiles;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code tandem.target.max-context} / {@code tandem.draft.max-context}: a model served at a shorter context than it was
 * built for (vLLM's --max-model-len). The engines size every cache for it (a slot pool's row reserves that many
 * positions, not the model's 1024) and refuse a step beyond it.
 */
class MaxContextKeyTest {
    static final Path DRAFT = Path.of("models/kjv-draft");

    @Test
    void absentTheModelsOwnContextIsServed() {
        ModelDirectory dir = ModelDirectory.open(DRAFT);
        ModelFiles files = ModelRegistry.servedFiles(dir, ModelSettings.of(DRAFT), false);
        assertEquals(dir.files(), files);
        assertEquals(1024, files.declared().maxContext());
    }

    @Test
    void aShorterContextSizesTheCachesAndLimitsTheSteps() {
        ModelDirectory dir = ModelDirectory.open(DRAFT, dev.tandem.engine.onnxruntime.OnnxRuntimeEngine.PREFERRED_GRAPHS, java.util.Optional.empty());
        ModelFiles files = ModelRegistry.servedFiles(dir, ModelSettings.of(DRAFT).withMaxContext(100), false);
        assertEquals(100, files.declared().maxContext());
        try (OrtCausalLm lm = OrtCausalLm.open(files.graph(), files.declared(), OnnxRuntimeOptions.defaults())) {
            assertTrue(lm.slotLayout());
            assertEquals(100, lm.shape().maxContext());
            assertEquals(128, lm.slotMaxWidth(), "a row reserves 100 positions rounded up to 64, not 1024");
            assertStopsAt100(lm);
        }
        try (ReferenceCausalLm lm = ReferenceCausalLm.open(ModelRegistry.servedFiles(ModelDirectory.open(DRAFT),
                ModelSettings.of(DRAFT).withMaxContext(100), false))) {
            assertEquals(100, lm.shape().maxContext(), "the reference engine serves it too");
            assertStopsAt100(lm);
        }
    }

    static void assertStopsAt100(CausalLm lm) {
        try (KvCache cache = lm.newCache()) {
            int[] tokens = new int[100];
            java.util.Arrays.fill(tokens, 5);
            lm.forward(cache, tokens, 0, 100);
            assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, new int[] {5}, 0, 1), "position 100");
        }
    }

    @Test
    void aValueOutsideOneToTheModelsContextFailsStartUpNamingTheKey() {
        ModelDirectory dir = ModelDirectory.open(DRAFT);
        for (int bad : List.of(0, -5, 1025, 100_000)) {
            for (boolean draft : List.of(false, true)) {
                var e = assertThrows(IllegalArgumentException.class,
                        () -> ModelRegistry.servedFiles(dir, ModelSettings.of(DRAFT).withMaxContext(bad), draft));
                String key = draft ? "tandem.draft.max-context" : "tandem.target.max-context";
                assertTrue(e.getMessage().contains(key) && e.getMessage().contains("is " + bad)
                        && e.getMessage().contains("1024"), e.getMessage());
            }
        }
        assertEquals(1024, ModelRegistry.servedFiles(dir, ModelSettings.of(DRAFT).withMaxContext(1024), false)
                .declared().maxContext(), "the model's own context is allowed");
    }
}
