package dev.tandem.engine.onnxruntime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The session settings the onnxruntime provider derives from tandem.onnxruntime.* for a target and a draft. */
class OnnxRuntimeEngineTest {
    static OnnxRuntimeConfig config(int intraOp, int draftIntraOp) {
        return new OnnxRuntimeConfig() {
            public int intraOpThreads() { return intraOp; }
            public boolean globalThreadPool() { return true; }
            public int draftIntraOpThreads() { return draftIntraOp; }
            public boolean spinning() { return false; }
            public String optimizationLevel() { return "all"; }
            public String executionProvider() { return "cpu"; }
            public String openvinoDevice() { return "CPU"; }
            public boolean telemetry() { return false; }
        };
    }

    @Test
    void theTargetSharesThePoolAndTheDraftGetsThreadsOfItsOwn() {
        OnnxRuntimeEngine engine = new OnnxRuntimeEngine(config(3, 1));
        assertEquals(new OnnxRuntimeOptions(3, true, false, "all", "cpu", "CPU", false), engine.options(false));
        assertEquals(new OnnxRuntimeOptions(1, false, false, "all", "cpu", "CPU", false), engine.options(true));
    }

    @Test
    void zeroMeansOneThreadPerCoreAndADraftInTheSharedPool() {
        OnnxRuntimeEngine engine = new OnnxRuntimeEngine(config(0, 0));
        int cores = Runtime.getRuntime().availableProcessors();
        assertEquals(new OnnxRuntimeOptions(cores, true, false, "all", "cpu", "CPU", false), engine.options(true));
    }
}
