package dev.tandem.engine.openvino;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.openvino.OpenVinoOptions.PerformanceHint;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The binding end to end against a C stand-in for libopenvino_c.so (src/test/resources/openvino/ov_stub.c,
 * built here with gcc): downcalls, struct marshalling, variadic compile_model, per-step tensor
 * binding, truncate, and that every native object created is freed. Skipped without gcc.
 */
class OpenVinoStubLibraryTest {
    static Path dir;
    static Path stub;
    static MethodHandle liveObjects;
    static MethodHandle compileLog;
    static final ModelShape TOY = new ModelShape(5, 16, 1, 2, 2, 4);

    @BeforeAll
    static void build() throws Exception {
        dir = Files.createTempDirectory("ov-stub");
        Path src = dir.resolve("ov_stub.c");
        try (InputStream in = OpenVinoStubLibraryTest.class.getResourceAsStream("/openvino/ov_stub.c")) {
            Files.copy(in, src);
        }
        stub = dir.resolve("libopenvino_c.so");
        assumeTrue(gcc("-shared", "-fPIC", "-O1", "-z", "noexecstack", "-o", stub.toString(), src.toString()), "gcc not available");
        SymbolLookup lookup = SymbolLookup.libraryLookup(stub, Arena.global());  // same handle as the runtime's
        Linker linker = Linker.nativeLinker();
        liveObjects = linker.downcallHandle(lookup.find("stub_live_objects").orElseThrow(), FunctionDescriptor.of(JAVA_LONG));
        compileLog = linker.downcallHandle(lookup.find("stub_compile_log").orElseThrow(), FunctionDescriptor.of(ADDRESS));
    }

    static boolean gcc(String... args) throws IOException, InterruptedException {
        try {
            List<String> command = new ArrayList<>(List.of("gcc"));
            command.addAll(List.of(args));
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException("gcc failed: " + out);
            }
            return true;
        } catch (IOException e) {
            return false;  // no gcc
        }
    }

    @AfterAll
    static void cleanUp() throws IOException {
        if (dir != null) {
            try (var s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    static long live() throws Throwable {
        return (long) liveObjects.invokeExact();
    }

    @Test
    void versionAndShapesCrossTheBoundary() throws Throwable {
        long before = live();
        try (OpenVinoRuntime rt = OpenVinoRuntime.load(stub)) {
            assertEquals("2024.2.0-stub", rt.version());
            assertEquals("OpenVINO Runtime (stub)", rt.description());
            assertEquals(stub, rt.library());
            assertArrayEquals(new long[] {1, 4, 0, 8}, rt.api().shapeRoundTrip(1, 4, 0, 8));
            assertEquals(Optional.of("CACHE_DIR"), rt.api().exportedString("ov_property_key_cache_dir"));
            assertEquals(Optional.empty(), rt.api().exportedString("ov_property_key_no_such_key"));
        }
        assertEquals(before, live(), "ov_version_free / ov_shape_free released what was allocated");
    }

    @Test
    void runsTheToyModelLikeAnEngine() throws Throwable {
        long before = live();
        var options = new OpenVinoOptions("CPU", PerformanceHint.LATENCY, 3, Optional.of("f32"), Optional.empty(),
                Optional.of(Path.of("/tmp/ov-cache")));
        try (OpenVinoRuntime rt = OpenVinoRuntime.load(stub);
             CausalLm lm = OpenVinoCausalLm.open(rt, Path.of("/models/toy/model.onnx"), TOY, options)) {
            assertEquals("CPU PERFORMANCE_HINT=LATENCY INFERENCE_NUM_THREADS=3 INFERENCE_PRECISION_HINT=f32 CACHE_DIR=/tmp/ov-cache",
                    OvApi.cString((MemorySegment) compileLog.invokeExact()));
            assertEquals(TOY, lm.shape());
            try (KvCache cache = lm.newCache()) {
                Logits prefill = lm.forward(cache, 1, 2, 3);  // zero-length past
                assertEquals(3, prefill.rows());
                assertEquals(3, cache.length());
                // key[1][t][0] = token*10 + 1; logits[i][v] = v*1000 + sum over t <= i
                assertEquals(11f, prefill.get(0, 0));
                assertEquals(2000f + 11 + 21, prefill.get(1, 2));
                assertEquals(4000f + 11 + 21 + 31, prefill.get(2, 4));
                Logits step = lm.forward(cache, 4);
                assertEquals(1000f + 11 + 21 + 31 + 41, step.get(0, 1));
                cache.truncate(2);  // forget tokens 3 and 4: head 1 must be compacted
                Logits verify = lm.forward(cache, new int[] {9, 3, 0}, 1, 2);
                assertEquals(2, verify.rows());
                assertEquals(11f + 21 + 31, verify.get(0, 0));
                assertEquals(11f + 21 + 31 + 1, verify.get(1, 0));
                assertEquals(4, cache.length());
                assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, 5));  // outside the vocabulary
                assertThrows(IllegalArgumentException.class, () -> lm.forward(cache, new int[13]));  // past the context
            }
        }
        assertEquals(before, live(), "every core, model, port, name, shape, request and tensor was freed");
    }

    static final Path STATELESS = Path.of("/models/toy/model.onnx");
    static final Path STATEFUL = Path.of("/models/toy-stateful/openvino_model.xml");

    /** Feeds {@code tokens[from..to)} to both caches and checks that every row of logits agrees. */
    static void sameLogits(CausalLm a, KvCache ca, CausalLm b, KvCache cb, int[] tokens, int from, int to) {
        Logits la = a.forward(ca, tokens, from, to - from);
        float[][] rowsA = new float[la.rows()][];
        for (int r = 0; r < la.rows(); r++) {
            rowsA[r] = la.row(r);
        }
        Logits lb = b.forward(cb, tokens, from, to - from);
        assertEquals(to - from, lb.rows());
        for (int r = 0; r < lb.rows(); r++) {
            assertArrayEquals(rowsA[r], lb.row(r), "position " + (from + r));
        }
        assertEquals(ca.length(), cb.length());
    }

    @Test
    void servesAStatefulModelLikeTheStatelessOneButCannotRollItBack() throws Throwable {
        long before = live();
        try (OpenVinoRuntime rt = OpenVinoRuntime.load(stub);
             CausalLm stateless = OpenVinoCausalLm.open(rt, STATELESS, TOY, OpenVinoOptions.defaults());
             CausalLm stateful = OpenVinoCausalLm.open(rt, STATEFUL, TOY, OpenVinoOptions.defaults())) {
            assertTrue(stateless.supportsRollback());
            assertFalse(stateful.supportsRollback());
            assertEquals(TOY, stateful.shape(), "cache geometry from config.json, vocabulary from the logits port");
            int[] seq = {1, 2, 3, 4, 0, 2, 2, 1, 4, 3};
            try (KvCache a = stateless.newCache(); KvCache b = stateful.newCache()) {
                sameLogits(stateless, a, stateful, b, seq, 0, 3);   // prefill
                assertEquals(3, b.length());
                Logits step = stateful.forward(b, 4);
                assertEquals(1000f + 11 + 21 + 31 + 41, step.get(0, 1), "the request's state held the prefill");
                stateless.forward(a, 4);
                sameLogits(stateless, a, stateful, b, seq, 4, 7);   // several tokens at once
                b.truncate(b.length());                             // the current length: a no-op
                a.truncate(a.length());
                for (int i = 7; i < seq.length; i++) {
                    sameLogits(stateless, a, stateful, b, seq, i, i + 1);  // one-token steps
                }
                assertEquals(seq.length, b.length());

                var shorter = assertThrows(UnsupportedOperationException.class, () -> b.truncate(seq.length - 2));
                assertTrue(shorter.getMessage().contains(STATEFUL.toString()), shorter.getMessage());
                assertTrue(shorter.getMessage().contains("from 10 to 8 tokens"), shorter.getMessage());
                assertTrue(shorter.getMessage().contains("stateful model"), shorter.getMessage());
                assertTrue(shorter.getMessage().contains("OpenVINO C API has no call to trim or reset variable state"),
                        shorter.getMessage());
                assertTrue(shorter.getMessage().contains("--disable-stateful"), shorter.getMessage());
                assertThrows(UnsupportedOperationException.class, () -> b.truncate(0), "no reset call in the C API either");
                assertThrows(IllegalArgumentException.class, () -> b.truncate(seq.length + 1));
                assertEquals(seq.length, b.length(), "a refused truncate changes nothing");
                sameLogits(stateless, a, stateful, b, new int[] {2}, 0, 1);  // and the cache still works
            }
            // two sequences at once: each cache has its own request, so its own state
            try (KvCache a = stateless.newCache(); KvCache b1 = stateful.newCache(); KvCache b2 = stateful.newCache()) {
                Logits other = stateful.forward(b2, 4, 4, 4);
                assertEquals(41f * 3, other.get(2, 0));
                sameLogits(stateless, a, stateful, b1, seq, 0, 2);
                stateful.forward(b2, 0);
                sameLogits(stateless, a, stateful, b1, seq, 2, 3);
                assertEquals(4, b2.length());
                assertEquals(3, b1.length());
            }
            long withoutCaches = live();
            KvCache c = stateful.newCache();
            assertEquals(withoutCaches + 1, live(), "a stateful cache owns one infer request");
            stateful.forward(c, 1, 2);
            c.close();
            assertEquals(withoutCaches, live(), "closing the cache freed its request");
            c.close();  // idempotent
            assertThrows(IllegalStateException.class, () -> c.truncate(2));
        }
        assertEquals(before, live(), "every model, request and tensor was freed");
    }

    @Test
    void aStatefulCacheIsUnusableAfterAFailedStep() throws Throwable {
        long before = live();
        var longContext = new ModelShape(5, 100, 1, 2, 2, 4);  // the stub's state holds 64 tokens
        try (OpenVinoRuntime rt = OpenVinoRuntime.load(stub);
             CausalLm lm = OpenVinoCausalLm.open(rt, STATEFUL, longContext, OpenVinoOptions.defaults());
             KvCache cache = lm.newCache()) {
            var failed = assertThrows(dev.tandem.engine.EngineException.class, () -> lm.forward(cache, new int[65]));
            assertTrue(failed.getMessage().contains("stub state is full"), failed.getMessage());
            var after = assertThrows(IllegalStateException.class, () -> lm.forward(cache, 1));
            assertTrue(after.getMessage().contains("state inside its infer request is unknown"), after.getMessage());
        }
        assertEquals(before, live());
    }

    @Test
    void failuresCarryStatusAndOpenVinosMessage() throws Throwable {
        long before = live();
        try (OpenVinoRuntime rt = OpenVinoRuntime.load(stub)) {
            var read = assertThrows(IllegalArgumentException.class,
                    () -> OpenVinoCausalLm.open(rt, Path.of("/models/missing.onnx"), TOY, OpenVinoOptions.defaults()));
            assertEquals("/models/missing.onnx: OpenVINO cannot read this graph: ov_core_read_model failed with GENERAL_ERROR (-1):"
                    + " Exception from stub: cannot open the model file", read.getMessage());
            var npu = new OpenVinoOptions("NPU", PerformanceHint.LATENCY, 0, Optional.empty(), Optional.empty(), Optional.empty());
            var compile = assertThrows(OpenVinoException.class,
                    () -> OpenVinoCausalLm.open(rt, Path.of("/models/toy/model.onnx"), TOY, npu));
            assertTrue(compile.getMessage().contains("cannot compile this graph for NPU"), compile.getMessage());
            assertTrue(compile.getMessage().contains("Device with \"NPU\" name is not registered"), compile.getMessage());
        }
        assertEquals(before, live(), "the model was freed after the failed compile");
    }

    @Test
    void aLibraryWithoutTheCApiIsRefusedByName() throws Exception {
        Path src = Files.writeString(dir.resolve("empty.c"), "int not_openvino(void) { return 0; }\n");
        Path lib = dir.resolve("libempty.so");
        assumeTrue(gcc("-shared", "-fPIC", "-z", "noexecstack", "-o", lib.toString(), src.toString()));
        var e = assertThrows(OpenVinoException.class, () -> OpenVinoRuntime.load(lib));
        assertTrue(e.getMessage().contains("ov_core_create"), e.getMessage());
        assertTrue(e.getMessage().contains("OpenVINO 2023.1 or newer"), e.getMessage());
    }
}
