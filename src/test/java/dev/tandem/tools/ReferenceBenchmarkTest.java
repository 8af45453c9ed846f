package dev.tandem.tools;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import org.junit.jupiter.api.Test;

/** The benchmark CLI runs end to end (a few steps; the numbers themselves are not checked here). */
class ReferenceBenchmarkTest {
    @Test
    void printsBothEnginesAndTheirRatio() {
        PrintStream out = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true));
        try {
            ReferenceBenchmark.main(new String[] {"models/kjv-draft", "model_fp32.onnx", "2", "4", "1"});
        } finally {
            System.setOut(out);
        }
        String text = captured.toString();
        out.print(text);
        assertTrue(text.contains("model=kjv-draft graph=model_fp32.onnx threads=2 steps=4 runs=1"), text);
        assertTrue(text.contains("  reference    step ms median"), text);
        assertTrue(text.contains("  onnxruntime  step ms median"), text);
        assertTrue(text.contains("reference / onnxruntime per decode step: x"), text);
    }
}
