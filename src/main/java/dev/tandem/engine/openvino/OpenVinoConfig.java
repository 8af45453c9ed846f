package dev.tandem.engine.openvino;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The OpenVINO engine's settings ({@code tandem.openvino.*}, or TANDEM_OPENVINO_* environment variables),
 * for models with engine=openvino; the engine needs an OpenVINO runtime on the machine.
 */
@ConfigMapping(prefix = "tandem.openvino")
public interface OpenVinoConfig {
    /** CPU, GPU, NPU or AUTO (GPU.1 etc. accepted). */
    @WithDefault("CPU")
    String device();

    /** LATENCY or THROUGHPUT. */
    @WithDefault("LATENCY")
    String performanceHint();

    /** CPU inference threads; 0 is OpenVINO's default. */
    @WithDefault("0")
    int inferenceNumThreads();

    /** f32, f16 or bf16; absent is the device default. */
    Optional<String> inferencePrecisionHint();

    /** The plugin's internal KV-cache precision (stateful models only). */
    Optional<String> kvCachePrecision();

    /** Compiled-model cache directory. */
    Optional<Path> cacheDir();
}
