package dev.tandem.api;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/**
 * The bundled pair under a 33 MiB KV-cache budget: two short requests fit at once (a kjv-target sequence
 * reserves a slot-pool row of 1024 positions of 16 KiB, 16 MiB, plus step buffers), a full-context request decoded
 * with the draft does not (the draft's row and, as it may catch up on the whole sequence in one feed, 1024 step
 * rows: 35,668,992 bytes in all).
 */
public class SmallKvBudgetProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        // the graph pinned: the figures MemoryApiTest checks are model_optimized.onnx's, which the service would otherwise
        // serve only where it is step-invariant (not on an AVX2-only processor: ModelRegistry.openInvariant)
        return Map.of("tandem.memory.budget", "33M", "tandem.target.graph", "model_optimized.onnx");
    }
}
