package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The service finds every engine's provider by itself (CDI beans in the engines' folders, none named
 * in serving), and the default configuration still serves the bundled pair on ONNX Runtime.
 */
@QuarkusTest
class EngineProvidersTest {
    @Inject
    ModelRegistry registry;

    @Test
    void everyEngineIsFoundWithoutServingNamingIt() {
        assertEquals(List.of("onnxruntime", "openvino", "reference", "reference-offload"), registry.engineNames());
        assertEquals("onnxruntime", registry.target().engine());
        assertEquals("onnxruntime", registry.draft().orElseThrow().engine());
    }
}
