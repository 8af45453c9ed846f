package dev.tandem.engine.onnxruntime;

import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;

/**
 * Every {@link OrtSlotsTest} check on the fixture's external-data copy (src/test/resources/models/slots-tiny-external:
 * model.onnx + model.onnx_data, as Optimum writes most exports): ONNX Runtime is given the graph's path, and finds
 * the data file beside it.
 */
class OrtSlotsExternalDataTest extends OrtSlotsTest {

    /** Hides {@link OrtSlotsTest#open}: the inherited checks run on the external-data copy. */
    @BeforeAll
    static void open() {
        openOn(Path.of("src/test/resources/models/slots-tiny-external"));
    }
}
