package dev.tandem.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** tools/plan.sh's main class prints the planner's figures for a model directory (read through ONNX Runtime). */
class MemoryPlannerTest {

    record Run(int status, String out, String err) {
        /** The row labelled {@code label}: its values, spaces squeezed. */
        String row(String label) {
            var m = Pattern.compile("(?m)^" + Pattern.quote(label) + "\\s+(.*)$").matcher(out);
            assertTrue(m.find(), "no row '" + label + "' in\n" + out);
            return m.group(1).trim().replaceAll("\\s{2,}", " | ");
        }
    }

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = MemoryPlanner.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void printsTheBundledPairsPlan() {
        Run r = run("models/kjv-target", "--draft", "models/kjv-draft", "--budget", "384M");
        assertEquals(0, r.status(), r.err());
        assertEquals("25,698,816 | 893,568", r.row("parameters"));
        assertEquals("25,698,816 | 893,568", r.row("parameters (config.json)"));
        assertEquals("16,384 (16.0 KiB) | 1,024 (1.0 KiB)", r.row("KV bytes per token"));
        assertEquals("16,777,216 (16.0 MiB) | 1,048,576 (1.0 MiB)", r.row("KV bytes per full context"));
        // both are slots graphs: one pool row of 1024 positions + step rows (vocabulary x 4 + 16 bytes) each; the
        // target's prompt is fed in chunks of at most 64 tokens (max-batched-tokens' default), so 64 rows; under the
        // auto policy (the default) the draft may catch up on a whole sequence in one feed, so 1024 rows
        assertEquals("17,826,816 (17.0 MiB) | 17,842,176 (17.0 MiB)", r.row("allocated per sequence (worst)"));
        assertTrue(r.row("KV cache").contains("(engine)"), r.row("KV cache"));
        assertEquals("22 | 22", r.row("full-context sequences"));
        assertEquals("24 | 384", r.row("  counting theoretical bytes"));
        // 402,653,184 / (17,826,816 + 17,842,176)
        assertEquals("11", r.row("  target with draft"));

        // the fixed policy feeds the draft the target's chunks: 64 rows; a chunk as large as the context: 1024 rows
        Run fixed = run("models/kjv-target", "--draft", "models/kjv-draft", "--budget", "384M", "--policy", "fixed");
        assertEquals(0, fixed.status(), fixed.err());
        assertEquals("17,826,816 (17.0 MiB) | 2,098,176 (2.0 MiB)", fixed.row("allocated per sequence (worst)"));
        assertEquals("20", fixed.row("  target with draft"));  // 402,653,184 / (17,826,816 + 2,098,176)
        Run oneCall = run("models/kjv-target", "--max-batched-tokens", "1024");
        assertEquals(0, oneCall.status(), oneCall.err());
        assertEquals("33,570,816 (32.0 MiB)", oneCall.row("allocated per sequence (worst)"));
        // the plan is of the graph ONNX Runtime serves (model_optimized.onnx: int4 matrices, its own tensor names)
        assertEquals("model_optimized.onnx, int4 (MatMulNBits) | model_optimized.onnx, int8 (MatMulNBits)", r.row("graph"));
        assertTrue(r.out().contains("note (kjv-target): the output layer 'lm_head_B' is a quantised copy"), r.out());
    }

    @Test
    void plansAShorterContextAndExplainsMistakes() {
        Run r = run("models/kjv-draft", "--context", "128");
        assertEquals(0, r.status(), r.err());
        assertEquals("128", r.row("context tokens"));
        assertEquals("131,072 (128.0 KiB)", r.row("KV bytes per full context"));
        assertTrue(!r.out().contains("full-context sequences"), "no budget, no counts");
        assertEquals(2, run().status());
        assertEquals(2, run("models/kjv-draft", "--budget").status());
        assertEquals(2, run("models/kjv-draft", "--policy", "sometimes").status());
        assertEquals(2, run("models/kjv-draft", "--max-batched-tokens", "0").status());
        Run bad = run("models/kjv-draft", "--budget", "lots");
        assertEquals(1, bad.status());
        assertTrue(bad.err().contains("'lots' is not a memory size"), bad.err());
        Run big = run("models/kjv-draft", "--context", "100000");
        assertEquals(1, big.status());
        assertTrue(big.err().contains("outside 1..1024"), big.err());
        Run missing = run("models/none");
        assertEquals(1, missing.status());
        assertTrue(missing.err().contains("does not exist"), missing.err());
    }
}
