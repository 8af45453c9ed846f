package dev.tandem.engine;

import java.nio.file.Path;

/**
 * What an engine is given to open a model: the graph, the {@code config.json} beside it and the
 * sizes that config declares. The engine package reads no model directory itself (that is
 * dev.tandem.model's job, above it), so whoever opened the directory hands these over.
 *
 * @param graph      the ONNX graph or OpenVINO IR ({@code .xml}) to run
 * @param configJson the model's {@code config.json} (the reference engine reads its constants)
 * @param declared   the sizes config.json states; an engine checks them against the graph
 */
public record ModelFiles(Path graph, Path configJson, ModelShape declared) {
}
