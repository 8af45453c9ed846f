package dev.tandem.engine.onnxruntime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import org.junit.jupiter.api.Test;

/** ONNX Runtime's telemetry follows tandem.onnxruntime.telemetry, off unless asked for. */
class OrtRuntimeTelemetryTest {
    static OnnxRuntimeOptions withTelemetry(boolean on) {
        return new OnnxRuntimeOptions(1, false, false, "all", "cpu", "CPU", on);
    }

    @Test
    void theConfiguredSettingIsAppliedToTheEnvironment() {
        try {
            OrtRuntime.environment(withTelemetry(true));
            assertEquals(Boolean.TRUE, OrtRuntime.telemetry());
        } finally {
            OrtRuntime.environment(withTelemetry(false));
        }
        assertEquals(Boolean.FALSE, OrtRuntime.telemetry());
    }

    @Test
    void offUnlessAskedFor() {
        assertFalse(OnnxRuntimeOptions.defaults().telemetry());
        assertFalse(new OnnxRuntimeOptions(2, true, false, "all").telemetry());
        assertFalse(new OnnxRuntimeOptions(2, true, false, "all", "cpu", "CPU").telemetry());
    }
}
