package dev.tandem.engine.openvino;

import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;

/**
 * Every {@link OpenVinoSlotsTest} check on the fixture's external-data copy
 * (src/test/resources/models/slots-tiny-external: model.onnx + model.onnx_data, as Optimum writes most exports):
 * OpenVINO reads the graph from its path and finds the data file beside it. Skipped, as OpenVinoSlotsTest, where no
 * OpenVINO runtime is installed.
 */
class OpenVinoSlotsExternalDataTest extends OpenVinoSlotsTest {

    /** Hides {@link OpenVinoSlotsTest#open}: the inherited checks run on the external-data copy. */
    @BeforeAll
    static void open() {
        openOn(Path.of("src/test/resources/models/slots-tiny-external"));
    }
}
