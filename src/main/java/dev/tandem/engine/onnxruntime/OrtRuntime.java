package dev.tandem.engine.onnxruntime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import org.jboss.logging.Logger;

/**
 * The process-wide ONNX Runtime environment. With a global thread pool, every session (target and
 * draft) shares one pool of intra-op threads, so two models that run alternately do not fight over
 * the cores. The environment exists once per process: the options of the first caller win.
 */
final class OrtRuntime {
    private static final Logger LOG = Logger.getLogger(OrtRuntime.class);
    private static OrtEnvironment env;
    private static boolean globalPool;

    private OrtRuntime() {
    }

    /** The telemetry setting last applied to the environment; null before the first. */
    private static Boolean telemetry;

    static synchronized OrtEnvironment environment(OnnxRuntimeOptions options) {
        if (env == null) {
            create(options);
        }
        applyTelemetry(options.telemetry());
        return env;
    }

    /**
     * ONNX Runtime's telemetry (ETW events) is on by default in its official Windows builds and does
     * nothing elsewhere; it is switched to the configured value (default off) on every open, so the
     * last configuration wins. A failure to switch is logged, not fatal: it sends nothing on Linux anyway.
     */
    private static void applyTelemetry(boolean enabled) {
        try {
            env.setTelemetry(enabled);
            telemetry = enabled;
        } catch (OrtException e) {
            LOG.warnf("ONNX Runtime telemetry could not be switched %s: %s", enabled ? "on" : "off", e.getMessage());
        }
    }

    /** The telemetry setting applied to the environment, or null if none was. */
    static synchronized Boolean telemetry() {
        return telemetry;
    }

    private static void create(OnnxRuntimeOptions options) {
        if (options.globalThreadPool()) {
            try (OrtEnvironment.ThreadingOptions threading = new OrtEnvironment.ThreadingOptions()) {
                threading.setGlobalIntraOpNumThreads(options.intraOpThreads());
                threading.setGlobalInterOpNumThreads(1);
                threading.setGlobalSpinControl(options.spinning());
                env = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "tandem", threading);
                globalPool = true;
                LOG.infof("ONNX Runtime %s: global intra-op pool of %d threads, spinning %s", env.getVersion(),
                        options.intraOpThreads(), options.spinning());
            } catch (OrtException | IllegalStateException e) {
                LOG.warnf("ONNX Runtime global thread pool not available (%s); using per-session threads", e.getMessage());
                env = OrtEnvironment.getEnvironment();
            }
        } else {
            env = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "tandem");
        }
    }

    static synchronized boolean hasGlobalThreadPool() {
        return globalPool;
    }
}
