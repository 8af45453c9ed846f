package dev.tandem.engine.onnxruntime;

/**
 * How ONNX Runtime sessions are built.
 *
 * @param intraOpThreads    threads for one operator (the global pool's size when {@code globalThreadPool})
 * @param globalThreadPool  share one process-wide pool between all sessions (target and draft) instead
 *                          of one pool per session; on small machines separate pools fight over cores
 * @param spinning          let idle pool threads spin (no futex wake per parallel section: faster steps
 *                          on dedicated cores; burnt CPU where cores are shared or quota-limited)
 * @param optimizationLevel ONNX Runtime graph optimisation: none, basic, extended or all
 * @param executionProvider cpu (default), openvino (ORT's OpenVINO EP) or dnnl (oneDNN EP)
 * @param openvinoDevice    device for the OpenVINO execution provider (CPU, GPU, NPU, AUTO)
 * @param telemetry         ONNX Runtime's telemetry (Windows ETW events; a no-op on Linux builds): off
 *                          unless asked for, applied to the process-wide environment by every session opened
 */
public record OnnxRuntimeOptions(int intraOpThreads, boolean globalThreadPool, boolean spinning, String optimizationLevel,
                                 String executionProvider, String openvinoDevice, boolean telemetry) {

    public OnnxRuntimeOptions(int intraOpThreads, boolean globalThreadPool, boolean spinning, String optimizationLevel,
                              String executionProvider, String openvinoDevice) {
        this(intraOpThreads, globalThreadPool, spinning, optimizationLevel, executionProvider, openvinoDevice, false);
    }

    public OnnxRuntimeOptions(int intraOpThreads, boolean globalThreadPool, boolean spinning, String optimizationLevel) {
        this(intraOpThreads, globalThreadPool, spinning, optimizationLevel, "cpu", "CPU");
    }

    /** The service's defaults: one shared pool of a thread per core, spinning, optimisation level all. */
    public static OnnxRuntimeOptions defaults() {
        return new OnnxRuntimeOptions(Math.max(1, Runtime.getRuntime().availableProcessors()), true, true, "all");
    }

    /**
     * A session on {@code threads} intra-op threads of its own, outside the shared pool: how the service opens
     * the draft ({@code tandem.onnxruntime.draft-intra-op-threads}, default 1: on the calling thread).
     */
    public static OnnxRuntimeOptions ownThreads(int threads) {
        return new OnnxRuntimeOptions(threads, false, false, "all");
    }
}
