package dev.tandem.engine.onnxruntime;

import dev.tandem.engine.EngineProvider;
import dev.tandem.engine.ModelFiles;
import jakarta.inject.Singleton;
import java.util.List;

/** The {@code onnxruntime} engine (the default): {@link OrtCausalLm} with the settings of {@link OnnxRuntimeConfig}. */
@Singleton
public class OnnxRuntimeEngine implements EngineProvider {
    private final OnnxRuntimeConfig config;

    OnnxRuntimeEngine(OnnxRuntimeConfig config) {
        this.config = config;
    }

    @Override
    public List<String> names() {
        return List.of("onnxruntime");
    }

    /**
     * A model directory's {@code model_optimized.onnx} (the name Optimum's ORTOptimizer gives the graphs it fuses
     * into ONNX Runtime's contrib operators) is run in preference to its portable {@code model.onnx}: the bundled
     * target and draft carry one (MatMulNBits, RotaryEmbedding, SkipSimplifiedLayerNormalization; about twice as
     * fast here, docs/benchmarks.md), which OpenVINO and the reference engine cannot read.
     */
    @Override
    public List<String> preferredGraphs(String name) {
        return PREFERRED_GRAPHS;
    }

    /** {@link #preferredGraphs}, for the tools that open a directory for ONNX Runtime without the service. */
    public static final List<String> PREFERRED_GRAPHS = List.of("model_optimized.onnx");

    @Override
    public Opened open(String name, ModelFiles model, boolean draft) {
        return new Opened(OrtCausalLm.open(model.graph(), model.declared(), options(draft)), "onnxruntime");
    }

    /**
     * The session settings: the target on the shared pool (one thread per core unless configured);
     * the draft, when {@code draft-intra-op-threads} is set, on a few threads of its own, out of the pool.
     */
    OnnxRuntimeOptions options(boolean draft) {
        int threads = config.intraOpThreads() > 0 ? config.intraOpThreads() : Runtime.getRuntime().availableProcessors();
        boolean shared = config.globalThreadPool();
        if (draft && config.draftIntraOpThreads() > 0) {
            threads = config.draftIntraOpThreads();
            shared = false;
        }
        return new OnnxRuntimeOptions(threads, shared, config.spinning(), config.optimizationLevel(),
                config.executionProvider(), config.openvinoDevice(), config.telemetry());
    }
}
