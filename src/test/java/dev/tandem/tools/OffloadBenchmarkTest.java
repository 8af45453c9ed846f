package dev.tandem.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The offload benchmark CLI runs end to end in both modes and generates the same ids (numbers not checked). */
class OffloadBenchmarkTest {
    static String run(String mode) throws Exception {
        PrintStream out = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true));
        try {
            OffloadBenchmark.main(new String[] {"models/kjv-draft", mode, "6", "2", "1"});
        } finally {
            System.setOut(out);
        }
        String text = captured.toString();
        out.print(text);
        assertTrue(text.contains("model=kjv-draft mode=" + mode + " threads=2 steps=6 runs=1"), text);
        assertTrue(text.contains("step ms median"), text);
        assertTrue(text.contains("VmHWM"), text);
        return text;
    }

    @Test
    void bothModesRunAndGenerateTheSameIds() throws Exception {
        Pattern ids = Pattern.compile("greedy ids hash (\\w+), first (\\[.*])");
        Matcher a = ids.matcher(run("normal"));
        Matcher b = ids.matcher(run("offload"));
        assertTrue(a.find() && b.find());
        assertEquals(a.group(0), b.group(0));
    }
}
