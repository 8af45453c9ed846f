package dev.tandem.tools;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.openvino.OpenVinoCausalLm;
import dev.tandem.engine.openvino.OpenVinoOptions;
import dev.tandem.engine.openvino.OpenVinoRuntime;
import dev.tandem.model.ModelDirectory;
import java.util.Locale;
import java.util.Optional;

/**
 * The engine a benchmark opens a model on, written on the command line so that one run can put
 * several engines and settings side by side on the same graph:
 * <ul>
 *   <li>{@code ort}: ONNX Runtime on the process-wide pool, as the service's target;
 *       {@code ort:threads=1}: a session with threads of its own, as the service's draft. (The global
 *       pool is created once per process with the first session's thread count, so a second
 *       thread count can only be had in a session of its own.)</li>
 *   <li>{@code openvino} or {@code openvino:hint=THROUGHPUT,precision=bf16,threads=2}: OpenVINO on CPU
 *       ({@code OPENVINO_HOME} or {@code -Dopenvino.library.path}); precision absent is f32, as in
 *       the service.</li>
 * </ul>
 * A benchmark's own {@code threads} applies where the spec names none.
 */
final class BenchEngines {
    private BenchEngines() {
    }

    private static OpenVinoRuntime openvino;

    /** Opens {@code model} on the engine {@code spec} names; {@code defaultThreads} where it names none. */
    static CausalLm open(String spec, ModelDirectory model, int defaultThreads) {
        String engine = spec.contains(":") ? spec.substring(0, spec.indexOf(':')) : spec;
        int threads = defaultThreads;
        String hint = "LATENCY";
        String precision = null;
        boolean shared = true;  // ONNX Runtime's global pool unless the spec names a thread count
        if (spec.contains(":")) {
            for (String kv : spec.substring(spec.indexOf(':') + 1).split(",")) {
                String[] p = kv.split("=", 2);
                switch (p[0]) {
                    case "threads" -> {
                        threads = Integer.parseInt(p[1]);
                        shared = false;
                    }
                    case "hint" -> hint = p[1].toUpperCase(Locale.ROOT);
                    case "precision" -> precision = p[1];
                    default -> throw new IllegalArgumentException("unknown engine setting '" + p[0] + "' in " + spec);
                }
            }
        }
        return switch (engine) {
            case "ort", "onnxruntime" -> OrtCausalLm.open(model.graph(), model.config().shape(),
                    shared ? ortOptions(threads) : OnnxRuntimeOptions.ownThreads(threads));
            case "openvino", "ov" -> OpenVinoCausalLm.open(runtime(), model.graph(), model.config().shape(),
                    new OpenVinoOptions("CPU", OpenVinoOptions.PerformanceHint.valueOf(hint), threads,
                            Optional.ofNullable(precision), Optional.empty(), Optional.empty()));
            default -> throw new IllegalArgumentException("unknown engine '" + engine + "' (ort, openvino)");
        };
    }

    /**
     * ONNX Runtime's pool threads spin while waiting for work, as the service's {@code tandem.onnxruntime.spinning}
     * (its default unless {@code -Dtandem.onnxruntime.spinning=} says otherwise; every benchmark tool uses this).
     */
    static boolean spinning() {
        return Boolean.parseBoolean(System.getProperty("tandem.onnxruntime.spinning", "true"));
    }

    /** The ONNX Runtime options of a benchmark tool: {@code threads} in the shared pool, the service's spinning, level all. */
    static OnnxRuntimeOptions ortOptions(int threads) {
        return new OnnxRuntimeOptions(threads,
                Boolean.parseBoolean(System.getProperty("tandem.onnxruntime.global-thread-pool", "true")), spinning(), "all");
    }

    /** The OpenVINO runtime, loaded once per process (as the service does). */
    static synchronized OpenVinoRuntime runtime() {
        if (openvino == null) {
            openvino = OpenVinoRuntime.load();
        }
        return openvino;
    }

    /**
     * A target as the service serves it (ModelRegistry.openInvariant): padded to two rows a step where only its one-row
     * steps differ on this processor ({@link dev.tandem.engine.StepInvariance#choose}); as opened otherwise, with a
     * line saying so where it is not step-invariant at all (the service would then serve the portable graph, unless
     * the graph was named).
     */
    static dev.tandem.engine.CausalLm asServed(dev.tandem.engine.CausalLm target) {
        dev.tandem.engine.StepInvariance.Choice c = dev.tandem.engine.StepInvariance.choose(target);
        if (c.isPadded()) {
            System.out.println("target: " + c.probe() + "; padded to two rows a step (as the service serves it): " + c.padded());
        } else if (!c.holds()) {
            System.out.println("target: " + c.probe() + (c.padded() == null ? "" : ", padded " + c.padded())
                    + " (the service serves such an engine's own graph only when named: tandem.target.graph)");
        }
        return c.holds() ? c.invariant() : target;
    }
}
