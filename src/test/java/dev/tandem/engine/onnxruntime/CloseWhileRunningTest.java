package dev.tandem.engine.onnxruntime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.EngineException;
import dev.tandem.engine.KvCache;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Closing a model while other threads are inside forward passes (shutdown, or any other path that
 * closes a model with requests still decoding) must not free the session under them: that was a
 * native crash of the whole process. The passes in progress finish, later ones get an
 * EngineException. Without the guard this test takes the test JVM down with a SIGSEGV.
 *
 * <p>Both cache layouts: the bundled models are slots graphs (caches are rows of one pool, so even a new cache
 * is refused once the model is closed), stories260K (../shared) an Optimum graph (a cache of its own, refused at
 * its first forward).
 */
class CloseWhileRunningTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({"models/kjv-target, true", "models/kjv-draft, true"})
    void forwardPassesInProgressFinishAndLaterOnesAreRefused(String model, boolean slotLayout) throws Exception {
        check(Path.of(model), slotLayout);
    }

    @Test
    @RequiresSharedModels
    void alsoOnAnOptimumGraph() throws Exception {
        check(SharedModels.stories260kHf(), false);
    }

    private static void check(Path model, boolean slotLayout) throws Exception {
        ModelDirectory dir = ModelDirectory.open(model);
        OrtCausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), new OnnxRuntimeOptions(2, false, false,
                "all", "cpu", "CPU"));
        assertEquals(slotLayout, lm.slotLayout(), model + "'s KV layout");
        int[] prompt = new int[96];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 10 + i;
        }
        int threads = 3;
        CountDownLatch running = new CountDownLatch(threads);
        AtomicInteger passes = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        AtomicReference<Throwable> unexpected = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            workers.add(Thread.ofPlatform().start(() -> {
                boolean first = true;
                while (true) {
                    try (KvCache cache = lm.newCache()) {
                        lm.forward(cache, prompt);  // a prefill: long enough to be inside run when close comes
                        lm.forward(cache, 7);
                        passes.incrementAndGet();
                    } catch (EngineException e) {
                        refused.incrementAndGet();
                        return;
                    } catch (Throwable e) {
                        unexpected.set(e);
                        return;
                    } finally {
                        if (first) {
                            running.countDown();
                            first = false;
                        }
                    }
                }
            }));
        }
        running.await();
        while (passes.get() < threads) {  // the workers are in their loops
            Thread.sleep(1);
        }
        Thread.sleep(5);  // mid-pass, most inside session.run
        lm.close();
        for (Thread w : workers) {
            w.join(30_000);
        }
        assertEquals(null, unexpected.get());
        assertEquals(threads, refused.get(), "every worker was refused after the close");
        assertTrue(passes.get() >= threads, "the workers ran before the close: " + passes.get());
        EngineException e = assertThrows(EngineException.class, () -> {
            try (KvCache cache = lm.newCache()) {  // a slot pool refuses here, a cache of its own at the forward
                lm.forward(cache, 1, 2, 3);
            }
        });
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        lm.close();  // idempotent
    }
}
