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
