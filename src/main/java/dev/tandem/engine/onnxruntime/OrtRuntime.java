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

    static synchronized OrtEnvironment environment(OnnxRuntimeOptions options) {
        if (env != null) {
            return env;
        }
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
        return env;
    }

    static synchronized boolean hasGlobalThreadPool() {
        return globalPool;
    }
}
