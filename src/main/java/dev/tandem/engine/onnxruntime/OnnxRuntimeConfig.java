package dev.tandem.engine.onnxruntime;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** The ONNX Runtime engine's settings ({@code tandem.onnxruntime.*}, or TANDEM_ONNXRUNTIME_* environment variables). */
@ConfigMapping(prefix = "tandem.onnxruntime")
public interface OnnxRuntimeConfig {
    /** Intra-op threads; 0 means one per available core. */
    @WithDefault("0")
    int intraOpThreads();

    /** One thread pool shared by all sessions (target and draft) instead of one per session. */
    @WithDefault("true")
    boolean globalThreadPool();

    /**
     * Intra-op threads of the draft's session: 1 runs the draft on the calling thread (no pool
     * hand-off for its tiny operators); 0 puts it in the shared pool with the target.
     */
    @WithDefault("1")
    int draftIntraOpThreads();

    /**
     * Let the pool's threads spin-wait for work instead of sleeping on a futex: a decode step hands
     * about 50 parallel sections to the pool, and waking sleeping threads for each cost a third of the
     * step on the bundled target (docs/benchmarks.md, "Pool spinning"). Switch off where the cores are
     * shared or a CPU limit is below the thread count: spinning threads burn the quota.
     */
    @WithDefault("true")
    boolean spinning();

    /** Graph optimisation level: none, basic, extended, all. */
    @WithDefault("all")
    String optimizationLevel();

    /** Execution provider: cpu, openvino (ORT's OpenVINO EP) or dnnl (oneDNN); non-CPU ones need a provider-enabled ORT build. */
    @WithDefault("cpu")
    String executionProvider();

    /** Device for the OpenVINO execution provider: CPU, GPU, NPU, AUTO. */
    @WithDefault("CPU")
    String openvinoDevice();

    /** ONNX Runtime's own telemetry (Windows ETW events; nothing on Linux). Off unless asked for. */
    @WithDefault("false")
    boolean telemetry();
}
