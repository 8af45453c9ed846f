package dev.tandem.engine.openvino;

import dev.tandem.engine.EngineProvider;
import dev.tandem.engine.ModelFiles;
import jakarta.inject.Singleton;
import java.util.List;
import java.util.Locale;
import org.jboss.logging.Logger;

/**
 * The {@code openvino} engine: {@link OpenVinoCausalLm} with the settings of {@link OpenVinoConfig}. The
 * runtime is loaded on the first model opened here, once for all of them, so a service that uses no
 * OpenVINO model loads no OpenVINO library.
 */
@Singleton
public class OpenVinoEngine implements EngineProvider {
    private static final Logger LOG = Logger.getLogger(OpenVinoEngine.class);

    private final OpenVinoConfig config;
    private OpenVinoRuntime runtime;

    OpenVinoEngine(OpenVinoConfig config) {
        this.config = config;
    }

    @Override
    public List<String> names() {
        return List.of("openvino");
    }

    /** optimum-intel's OpenVINO IR, when a directory has one beside its ONNX graph (as OpenVINO Model Server reads). */
    @Override
    public List<String> preferredGraphs(String name) {
        return List.of("openvino_model.xml");
    }

    @Override
    public Opened open(String name, ModelFiles model, boolean draft) {
        ModelFiles.requireGraph(model.graph(), "OpenVINO");
        OpenVinoRuntime rt = runtime();
        OpenVinoOptions options = new OpenVinoOptions(config.device(),
                OpenVinoOptions.PerformanceHint.valueOf(config.performanceHint().toUpperCase(Locale.ROOT)),
                config.inferenceNumThreads(), config.inferencePrecisionHint(), config.kvCachePrecision(), config.cacheDir());
        return new Opened(OpenVinoCausalLm.open(rt, model.graph(), model.declared(), options),
                "openvino " + rt.version() + " (" + config.device() + ")");
    }

    private synchronized OpenVinoRuntime runtime() {
        if (runtime == null) {
            try {
                runtime = OpenVinoRuntime.load();
            } catch (OpenVinoRuntime.NotAvailableException e) {
                throw new IllegalArgumentException("engine=openvino, but " + e.getMessage(), e);
            }
            LOG.infof("OpenVINO runtime %s", runtime.description());
        }
        return runtime;
    }

    @Override
    public synchronized void close() {
        if (runtime != null) {
            runtime.close();
            runtime = null;
        }
    }
}
