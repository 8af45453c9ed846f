package dev.tandem.engine.onnxruntime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/** The service, as configured by default, switched ONNX Runtime's telemetry off when it opened its models. */
@QuarkusTest
class OrtTelemetryConfigTest {
    @Test
    void telemetryIsOffInTheRunningService() {
        assertEquals(Boolean.FALSE, OrtRuntime.telemetry());
    }
}
