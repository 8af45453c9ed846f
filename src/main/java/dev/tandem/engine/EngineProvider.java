package dev.tandem.engine;

import java.util.List;

/**
 * One inference engine as the service sees it: the names a model selects it by
 * ({@code tandem.target.engine}, {@code tandem.draft.engine}) and how it opens a model. The service
 * finds every provider as a CDI bean and knows no engine by name or class, so adding an engine means
 * its own folder (its {@link CausalLm}, this provider, its config group) plus a row in the engine
 * contract test, and nothing in serving.
 */
public interface EngineProvider {

    /** The names that select this engine; one provider may serve variants (reference, reference-offload). */
    List<String> names();

    /**
     * Opens {@code model} on the engine called {@code name}, one of {@link #names()}.
     *
     * @param draft whether the model is served as the draft (an engine may give it other resources,
     *              e.g. threads of its own)
     * @throws IllegalArgumentException when the model cannot run here or the engine's runtime is
     *                                  missing; the message names the file or what to install
     */
    Opened open(String name, ModelFiles model, boolean draft);

    /**
     * Graph files of a model directory this engine runs in preference to its portable graph ({@code model.onnx},
     * ...), in order, when the directory has them: e.g. ONNX Runtime's {@code model_optimized.onnx}, a graph
     * written with ONNX Runtime's contrib operators that other engines cannot read. A model's configured
     * {@code graph} overrides this. None by default.
     */
    default List<String> preferredGraphs(String name) {
        return List.of();
    }

    /**
     * A model opened on an engine.
     *
     * @param description the engine as /v1/models shows it, e.g. "onnxruntime" or "openvino 2025.1 (CPU)"
     */
    record Opened(CausalLm lm, String description) {
    }

    /**
     * Frees what the engine holds beyond its models (a native runtime loaded once for all of them);
     * called once every model opened on it is closed.
     */
    default void close() {
    }
}
