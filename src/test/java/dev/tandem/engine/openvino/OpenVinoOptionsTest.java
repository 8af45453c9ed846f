package dev.tandem.engine.openvino;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.openvino.OpenVinoOptions.PerformanceHint;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

class OpenVinoOptionsTest {
    /** The exported variables' values, as defined in src/bindings/c/src/ov_property.cpp. */
    static final Map<String, String> EXPORTED = Map.of(
            "ov_property_key_hint_performance_mode", "PERFORMANCE_HINT",
            "ov_property_key_inference_num_threads", "INFERENCE_NUM_THREADS",
            "ov_property_key_hint_inference_precision", "INFERENCE_PRECISION_HINT",
            "ov_property_key_cache_dir", "CACHE_DIR");
    static final Function<String, Optional<String>> KEYS = s -> Optional.ofNullable(EXPORTED.get(s));

    /** f32 on CPU unless asked otherwise: the plugin's own default is bf16 on CPUs that have it, which is not exact. */
    @Test
    void defaultsAreLatencyAndTheModelsOwnPrecisionOnCpu() {
        assertEquals(List.of(Map.entry("PERFORMANCE_HINT", "LATENCY"), Map.entry("INFERENCE_PRECISION_HINT", "f32")),
                OpenVinoOptions.defaults().compileProperties(KEYS));
        var gpu = new OpenVinoOptions("GPU", PerformanceHint.LATENCY, 0, Optional.empty(), Optional.empty(), Optional.empty());
        assertEquals(List.of(Map.entry("PERFORMANCE_HINT", "LATENCY")), gpu.compileProperties(KEYS), "other devices: their default");
        var bf16 = new OpenVinoOptions("CPU", PerformanceHint.LATENCY, 0, Optional.of("bf16"), Optional.empty(), Optional.empty());
        assertEquals(Optional.of("bf16"), bf16.inferencePrecisionHint(), "reduced precision is opt-in");
    }

    @Test
    void everyOptionIsEncodedAsAStringPair() {
        var o = new OpenVinoOptions("gpu", PerformanceHint.THROUGHPUT, 6, Optional.of("BF16"), Optional.of("u8"),
                Optional.of(Path.of("/var/cache/ov")));
        assertEquals("GPU", o.device());
        assertEquals(List.of(
                Map.entry("PERFORMANCE_HINT", "THROUGHPUT"),
                Map.entry("INFERENCE_NUM_THREADS", "6"),
                Map.entry("INFERENCE_PRECISION_HINT", "bf16"),
                Map.entry("KV_CACHE_PRECISION", "u8"),
                Map.entry("CACHE_DIR", "/var/cache/ov")), o.compileProperties(KEYS));
    }

    @Test
    void invalidOptionsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new OpenVinoOptions("TPU", PerformanceHint.LATENCY, 0,
                Optional.empty(), Optional.empty(), Optional.empty()));
        assertThrows(IllegalArgumentException.class, () -> new OpenVinoOptions("CPU", PerformanceHint.LATENCY, -1,
                Optional.empty(), Optional.empty(), Optional.empty()));
        assertThrows(IllegalArgumentException.class, () -> new OpenVinoOptions("CPU", PerformanceHint.LATENCY, 0,
                Optional.of("f8"), Optional.empty(), Optional.empty()));
        assertEquals("GPU.1", new OpenVinoOptions("GPU.1", PerformanceHint.LATENCY, 0, Optional.empty(), Optional.empty(),
                Optional.empty()).device());
    }

    @Test
    void aMissingExportedKeyIsAnError() {
        var o = new OpenVinoOptions("CPU", PerformanceHint.LATENCY, 0, Optional.empty(), Optional.empty(),
                Optional.of(Path.of("/tmp/x")));
        var e = assertThrows(OpenVinoException.class, () -> o.compileProperties(
                s -> s.equals("ov_property_key_cache_dir") ? Optional.empty() : KEYS.apply(s)));
        assertTrue(e.getMessage().contains("ov_property_key_cache_dir"), e.getMessage());
    }
}
