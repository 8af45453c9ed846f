package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.EngineProvider;
import dev.tandem.engine.ModelFiles;
import dev.tandem.engine.PaddedSteps;
import dev.tandem.engine.PaddedStepsTest;
import dev.tandem.engine.StepInvariance;
import dev.tandem.engine.onnxruntime.OnnxRuntimeEngine;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An engine's own graph ({@code model_optimized.onnx} on ONNX Runtime) is served only if, on this processor, it gives a
 * token the same bits alone, in a block and in a batch (StepInvariance); otherwise the directory's portable graph is,
 * so that greedy assisted decoding still reproduces plain decoding. Found on an AVX2-only machine, where the bundled
 * target's 4-bit model_optimized.onnx is not invariant (BundledPairAssistedTest failed there).
 *
 * <p>Where only a step of one row differs (the AVX2 case), the engine's graph is served padded instead ({@code
 * PaddedSteps}). The directories are slots-tiny (an invariant slots graph) with, as its "optimized" graph, either the
 * same graph again (invariant, or made to differ in one-row steps) or optimum-tiny-nopos: the same model (same weights and config.json) as an Optimum float32 graph, whose
 * MatMul takes another kernel for one row than for several (GEMV against GEMM: last bits differ).
 */
class InvariantGraphChoiceTest {
    static final Path SLOTS = Path.of("src/test/resources/models/slots-tiny");
    static final Path OPTIMUM = Path.of("src/test/resources/models/optimum-tiny-nopos/model.onnx");

    /** ONNX Runtime as the service opens it, with the engine's preferred graphs. */
    static final EngineProvider ORT = new EngineProvider() {
        @Override
        public List<String> names() {
            return List.of("onnxruntime");
        }

        @Override
        public List<String> preferredGraphs(String name) {
            return OnnxRuntimeEngine.PREFERRED_GRAPHS;
        }

        @Override
        public Opened open(String name, ModelFiles model, boolean draft) {
            return new Opened(OrtCausalLm.open(model.graph(), model.declared(), OnnxRuntimeOptions.defaults()), "onnxruntime");
        }
    };

    static Path directory(Path tmp, Path optimized) throws IOException {
        try (var files = Files.list(SLOTS)) {
            for (Path f : files.toList()) {
                if (!f.getFileName().toString().equals("SHA256SUMS")) {
                    Files.copy(f, tmp.resolve(f.getFileName()));
                }
            }
        }
        Files.copy(optimized, tmp.resolve("model_optimized.onnx"));
        return tmp;
    }

    static ModelRegistry.Served open(Path dir, ModelSettings settings) {
        ModelDirectory chosen = ModelDirectory.open(dir, ORT.preferredGraphs("onnxruntime"), settings.graph());
        return ModelRegistry.openInvariant(chosen, settings, ORT, "onnxruntime", false);
    }

    @Test
    void anOptimizedGraphThatIsNotInvariantHereGivesWayToThePortableOne(@TempDir Path tmp) throws IOException {
        Path dir = directory(tmp, OPTIMUM);
        try (OrtCausalLm optimum = OrtCausalLm.open(dir.resolve("model_optimized.onnx"),
                ModelDirectory.open(dir).config().shape(), OnnxRuntimeOptions.defaults())) {
            assertFalse(StepInvariance.probe(optimum).holds(), "the premise: the Optimum float32 graph is not invariant");
        }
        ModelRegistry.Served served = open(dir, ModelSettings.of(dir));
        try {
            assertEquals("model.onnx", served.dir().graph().getFileName().toString());
            assertTrue(((OrtCausalLm) served.opened().lm()).slotLayout(), "the slots graph was opened");
            assertTrue(StepInvariance.probe(served.opened().lm()).holds());
        } finally {
            served.opened().lm().close();
        }
    }

    /**
     * As the bundled target's 4-bit graph on an AVX2-only processor: only a step of one row differs (here slots-tiny
     * moved by one ulp in such steps), so the engine's graph is served padded to two rows a step rather than giving
     * way to the slower portable graph.
     */
    @Test
    void anOptimizedGraphWhoseOneRowStepsAloneDifferIsServedPadded(@TempDir Path tmp) throws IOException {
        Path dir = directory(tmp, SLOTS.resolve("model.onnx"));
        EngineProvider oneRowOff = new EngineProvider() {
            @Override
            public List<String> names() {
                return ORT.names();
            }

            @Override
            public List<String> preferredGraphs(String name) {
                return ORT.preferredGraphs(name);
            }

            @Override
            public Opened open(String name, ModelFiles model, boolean draft) {
                Opened o = ORT.open(name, model, draft);
                return model.graph().getFileName().toString().equals("model_optimized.onnx")
                        ? new Opened(new PaddedStepsTest.OneRowOff(o.lm()), o.description()) : o;
            }
        };
        ModelDirectory chosen = ModelDirectory.open(dir, ORT.preferredGraphs("onnxruntime"), Optional.empty());
        ModelRegistry.Served served = ModelRegistry.openInvariant(chosen, ModelSettings.of(dir), oneRowOff, "onnxruntime",
                false);
        try {
            assertEquals("model_optimized.onnx", served.dir().graph().getFileName().toString());
            assertTrue(served.opened().lm() instanceof PaddedSteps, served.opened().lm().toString());
            assertEquals(chosen.config().shape().maxContext(), served.opened().lm().shape().maxContext(), "the whole context");
            assertTrue(StepInvariance.probe(served.opened().lm()).holds());
        } finally {
            served.opened().lm().close();
        }
    }

    @Test
    void anInvariantOptimizedGraphIsServed(@TempDir Path tmp) throws IOException {
        Path dir = directory(tmp, SLOTS.resolve("model.onnx"));
        ModelRegistry.Served served = open(dir, ModelSettings.of(dir));
        try {
            assertEquals("model_optimized.onnx", served.dir().graph().getFileName().toString());
        } finally {
            served.opened().lm().close();
        }
    }

    @Test
    void aConfiguredGraphIsServedAsConfigured(@TempDir Path tmp) throws IOException {
        Path dir = directory(tmp, OPTIMUM);
        ModelRegistry.Served served = open(dir, ModelSettings.of(dir).withGraph("model_optimized.onnx"));
        try {
            assertEquals("model_optimized.onnx", served.dir().graph().getFileName().toString(), "the operator's choice");
            assertFalse(((OrtCausalLm) served.opened().lm()).slotLayout(), "the Optimum graph");
        } finally {
            served.opened().lm().close();
        }
    }

    /** A draft keeps the engine's graph: its arithmetic decides which candidates it proposes, never the output. */
    @Test
    void aDraftKeepsTheEnginesGraph(@TempDir Path tmp) throws IOException {
        Path dir = directory(tmp, OPTIMUM);
        ModelDirectory chosen = ModelDirectory.open(dir, ORT.preferredGraphs("onnxruntime"), Optional.empty());
        ModelRegistry.Served served = ModelRegistry.openInvariant(chosen, ModelSettings.of(dir), ORT, "onnxruntime", true);
        try {
            assertEquals("model_optimized.onnx", served.dir().graph().getFileName().toString());
        } finally {
            served.opened().lm().close();
        }
    }
}
