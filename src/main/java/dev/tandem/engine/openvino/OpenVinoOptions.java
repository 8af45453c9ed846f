package dev.tandem.engine.openvino;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * How OpenVINO compiles a model.
 *
 * @param device                 target device: {@code CPU}, {@code GPU}, {@code NPU} or {@code AUTO}
 *                               (a device index such as {@code GPU.1} is accepted too)
 * @param performanceHint        {@code LATENCY} or {@code THROUGHPUT} ({@code PERFORMANCE_HINT})
 * @param inferenceNumThreads    CPU threads for inference, 0 for the plugin's default
 * @param inferencePrecisionHint compute precision, e.g. {@code f32}, {@code bf16}, {@code f16}.
 *                               Absent on CPU means {@code f32}: the model's own numbers. The CPU
 *                               plugin's own default is bf16 wherever the CPU has bf16 instructions
 *                               (Intel Xeon since Cooper Lake, AMD Zen 4), which changes logits by up to
 *                               ~0.3 on the bundled models: a rolled-back cache then no longer equals a
 *                               fresh prefill, and greedy assisted text can depart from plain. Reduced
 *                               precision is an explicit choice. Absent on other devices: the device's
 *                               default
 * @param kvCachePrecision       the plugin's internal KV-cache precision ({@code KV_CACHE_PRECISION}).
 *                               It affects caches the plugin keeps itself (stateful models); this
 *                               engine keeps the cache in its own memory in the graph's past-tensor
 *                               type, so the setting is passed to OpenVINO but does not change that
 * @param cacheDir               directory for OpenVINO's compiled-model cache ({@code CACHE_DIR}); empty for none
 */
public record OpenVinoOptions(String device, PerformanceHint performanceHint, int inferenceNumThreads,
                              Optional<String> inferencePrecisionHint, Optional<String> kvCachePrecision,
                              Optional<Path> cacheDir) {

    public enum PerformanceHint { LATENCY, THROUGHPUT }

    private static final Set<String> DEVICES = Set.of("CPU", "GPU", "NPU", "AUTO");
    private static final Set<String> PRECISIONS = Set.of("f32", "f16", "bf16");
    private static final Set<String> KV_PRECISIONS = Set.of("f32", "f16", "bf16", "u8", "i8", "u4");

    /**
     * ov_property.h declares its keys as exported variables,
     * {@code OPENVINO_C_VAR(const char*) ov_property_key_hint_performance_mode;}, so they are read from
     * the library by symbol name ({@link OvApi#exportedString}) rather than hard-coded. (Their values,
     * defined in {@code src/bindings/c/src/ov_property.cpp}, are e.g. {@code "PERFORMANCE_HINT"},
     * {@code "INFERENCE_NUM_THREADS"}, {@code "INFERENCE_PRECISION_HINT"}, {@code "CACHE_DIR"}.)
     */
    static final String PERFORMANCE_HINT_SYMBOL = "ov_property_key_hint_performance_mode";
    static final String NUM_THREADS_SYMBOL = "ov_property_key_inference_num_threads";
    static final String PRECISION_SYMBOL = "ov_property_key_hint_inference_precision";
    static final String CACHE_DIR_SYMBOL = "ov_property_key_cache_dir";
    /**
     * The C API exports no symbol for this key; it is the C++ property
     * {@code ov::hint::kv_cache_precision{"KV_CACHE_PRECISION"}} (openvino/runtime/properties.hpp),
     * which the C API forwards like any other (key, value) string pair.
     */
    static final String KV_CACHE_PRECISION_KEY = "KV_CACHE_PRECISION";

    public OpenVinoOptions {
        device = device == null ? "" : device.strip().toUpperCase(Locale.ROOT);
        String base = device.contains(".") ? device.substring(0, device.indexOf('.')) : device;
        if (!DEVICES.contains(base)) {
            throw new IllegalArgumentException("unknown OpenVINO device '" + device + "' (CPU, GPU, NPU, AUTO)");
        }
        if (performanceHint == null) {
            throw new IllegalArgumentException("performanceHint is required (LATENCY or THROUGHPUT)");
        }
        if (inferenceNumThreads < 0) {
            throw new IllegalArgumentException("inferenceNumThreads must be >= 0 (0 = OpenVINO's default), is " + inferenceNumThreads);
        }
        inferencePrecisionHint = normalise(inferencePrecisionHint, PRECISIONS, "inference precision hint");
        if (inferencePrecisionHint.isEmpty() && base.equals("CPU")) {
            inferencePrecisionHint = Optional.of("f32");  // exact by default; see the parameter's note
        }
        kvCachePrecision = normalise(kvCachePrecision, KV_PRECISIONS, "KV cache precision");
        cacheDir = cacheDir == null ? Optional.empty() : cacheDir;
    }

    /** CPU, latency-oriented, default threads, f32, no model cache. */
    public static OpenVinoOptions defaults() {
        return new OpenVinoOptions("CPU", PerformanceHint.LATENCY, 0, Optional.empty(), Optional.empty(), Optional.empty());
    }

    private static Optional<String> normalise(Optional<String> value, Set<String> allowed, String what) {
        if (value == null || value.isEmpty() || value.get().isBlank()) {
            return Optional.empty();
        }
        String v = value.get().strip().toLowerCase(Locale.ROOT);
        if (!allowed.contains(v)) {
            throw new IllegalArgumentException("unsupported " + what + " '" + value.get() + "' (" + String.join(", ", allowed) + ")");
        }
        return Optional.of(v);
    }

    /**
     * The (key, value) pairs for {@code ov_core_compile_model}'s variadic arguments, in order.
     *
     * @param exportedKey the value of an exported {@code ov_property_key_*} variable by symbol name
     *     (the library's, via {@link OvApi#exportedString}); a missing symbol is an error, as the
     *     library would then not understand the property either
     */
    List<Map.Entry<String, String>> compileProperties(Function<String, Optional<String>> exportedKey) {
        List<Map.Entry<String, String>> out = new ArrayList<>();
        out.add(Map.entry(key(exportedKey, PERFORMANCE_HINT_SYMBOL), performanceHint.name()));
        if (inferenceNumThreads > 0) {
            out.add(Map.entry(key(exportedKey, NUM_THREADS_SYMBOL), Integer.toString(inferenceNumThreads)));
        }
        inferencePrecisionHint.ifPresent(p -> out.add(Map.entry(key(exportedKey, PRECISION_SYMBOL), p)));
        kvCachePrecision.ifPresent(p -> out.add(Map.entry(KV_CACHE_PRECISION_KEY, p)));
        cacheDir.ifPresent(d -> out.add(Map.entry(key(exportedKey, CACHE_DIR_SYMBOL), d.toAbsolutePath().toString())));
        return out;
    }

    private static String key(Function<String, Optional<String>> exportedKey, String symbol) {
        return exportedKey.apply(symbol).orElseThrow(() -> new OpenVinoException(
                "the OpenVINO library does not export " + symbol + " (ov_property.h); it is too old for this option", null));
    }
}
