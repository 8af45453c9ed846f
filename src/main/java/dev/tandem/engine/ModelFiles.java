package dev.tandem.engine;

import java.nio.file.Path;

/**
 * What an engine is given to open a model: the graph, the {@code config.json} beside it and the
 * sizes that config declares. The engine package reads no model directory itself (that is
 * dev.tandem.model's job, above it), so whoever opened the directory hands these over.
 *
 * @param graph      the ONNX graph, OpenVINO IR ({@code .xml}) or llama2.c checkpoint ({@code .bin}) to run
 * @param configJson the model's {@code config.json} (the reference engine reads its constants), {@code genai_config.json},
 *                   or for a llama2.c checkpoint the checkpoint itself (its header is its config)
 * @param declared   the sizes config.json states; an engine checks them against the graph
 */
public record ModelFiles(Path graph, Path configJson, ModelShape declared) {

    /** Whether the graph is a llama2.c checkpoint ({@link Llama2cHeader}), which only the reference engine reads. */
    public boolean isLlama2c() {
        return isLlama2c(graph);
    }

    private static boolean isLlama2c(Path graph) {
        return graph.getFileName().toString().endsWith(".bin");
    }

    /**
     * Refuses a llama2.c checkpoint on an engine that runs graphs ({@code engine} names it in the message).
     *
     * @throws IllegalArgumentException naming the file and the engine that reads it
     */
    public static void requireGraph(Path graph, String engine) {
        if (isLlama2c(graph)) {
            throw new IllegalArgumentException(graph + ": is a llama2.c checkpoint, which " + engine + " cannot read: serve"
                    + " it with engine=reference (or reference-offload), or point the model directory at an ONNX export");
        }
    }
}
