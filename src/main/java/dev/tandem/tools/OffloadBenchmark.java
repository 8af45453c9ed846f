package dev.tandem.tools;

import static dev.tandem.tools.BenchStats.argmax;

import com.sun.management.GarbageCollectionNotificationInfo;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.reference.ReferenceCausalLm;
import dev.tandem.model.ModelDirectory;
import java.io.IOException;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.NotificationEmitter;
import javax.management.openmbean.CompositeData;

/**
 * Greedy decoding on the reference engine in one mode per JVM, normal (every weight decoded on the
 * heap) or offload (weights left in the model file, mapped a layer at a time), with the memory
 * the process needed: for the speed / peak-memory trade-off of the offload mode
 * ({@code tools/bench/offload.sh} runs both under {@code /usr/bin/time -v}).
 *
 * <pre>
 * java -Xmx64m -cp ... dev.tandem.tools.OffloadBenchmark MODEL_DIR normal|offload [steps=128] [threads=2] [runs=3]
 * </pre>
 *
 * Each run prefills BOS and decodes {@code steps} tokens greedily (EOS ignored); one untimed
 * warm-up run first. Prints: load time, heap in use after load and a full GC (what stays resident),
 * the largest heap in use after any GC during the whole run (the peak live set, an upper bound:
 * a young collection leaves old garbage in), per-step milliseconds, a 32-token prefill, the
 * generated ids' hash (equal across modes when the text is), and the kernel's VmHWM (peak resident
 * set) and VmRSS / RssAnon / RssFile at the end.
 */
public final class OffloadBenchmark {
    private OffloadBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String mode = args.length > 1 ? args[1] : "normal";
        if (!mode.equals("normal") && !mode.equals("offload")) {
            throw new IllegalArgumentException("mode is normal or offload, not " + mode);
        }
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 128;
        int threads = args.length > 3 ? Integer.parseInt(args[3]) : 2;
        int runs = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        System.setProperty("java.util.concurrent.ForkJoinPool.common.parallelism", Integer.toString(threads - 1));
        AtomicLong peakAfterGc = watchHeapAfterGc();

        ModelDirectory model = ModelDirectory.open(dir);
        long t0 = System.nanoTime();
        try (ReferenceCausalLm lm = ReferenceCausalLm.open(model.files(), mode.equals("offload"))) {
            double loadMs = (System.nanoTime() - t0) / 1e6;
            System.gc();
            long residentAfterLoad = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
            int max = Math.min(steps, lm.shape().maxContext() - 1);
            double[] stepMs = new double[max * runs];
            int[] ids = null;
            for (int run = 0; run <= runs; run++) {
                ids = decode(lm, max, run == 0 ? null : stepMs, (run - 1) * max);
            }
            int[] prompt = new int[32];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 1 + (i * 37) % (lm.shape().vocabSize() - 1);
            }
            double[] prefillMs = new double[runs];
            for (int run = 0; run < runs; run++) {
                long p0 = System.nanoTime();
                try (KvCache cache = lm.newCache()) {
                    lm.forward(cache, prompt);
                }
                prefillMs[run] = (System.nanoTime() - p0) / 1e6;
            }
            Arrays.sort(stepMs);
            Arrays.sort(prefillMs);
            MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
            System.out.printf(Locale.ROOT, "model=%s mode=%s threads=%d steps=%d runs=%d maxHeap=%.0fMB%n", model.name(), mode,
                    threads, max, runs, mb(Runtime.getRuntime().maxMemory()));
            System.out.printf(Locale.ROOT, "  load %.0f ms | heap after load + GC %.1f MB | peak heap after GC %.1f MB"
                    + " | heap committed at end %.1f MB%n", loadMs, mb(residentAfterLoad), mb(peakAfterGc.get()),
                    mb(heap.getCommitted()));
            System.out.printf(Locale.ROOT, "  step ms median %.2f p10 %.2f p90 %.2f (%.1f tokens/s) | prefill of 32 tokens"
                    + " median %.1f ms%n", stepMs[stepMs.length / 2], stepMs[stepMs.length / 10],
                    stepMs[stepMs.length * 9 / 10], 1000 / stepMs[stepMs.length / 2], prefillMs[prefillMs.length / 2]);
            System.out.printf(Locale.ROOT, "  greedy ids hash %08x, first %s%n", Arrays.hashCode(ids),
                    Arrays.toString(Arrays.copyOf(ids, Math.min(12, ids.length))));
            System.out.printf(Locale.ROOT, "  %s%n", procStatus());
        }
    }

    /** Greedy from BOS: the generated ids; step times into {@code ms[at..]} when {@code ms} is given. */
    private static int[] decode(ReferenceCausalLm lm, int steps, double[] ms, int at) {
        int[] out = new int[steps];
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, 1);
            float[] row = new float[lm.shape().vocabSize()];
            int[] one = new int[1];
            for (int s = 0; s < steps; s++) {
                long t0 = System.nanoTime();
                logits.copyRow(logits.rows() - 1, row);
                one[0] = argmax(row);
                out[s] = one[0];
                logits = lm.forward(cache, one);
                if (ms != null) {
                    ms[at + s] = (System.nanoTime() - t0) / 1e6;
                }
            }
        }
        return out;
    }

    /** The largest heap in use right after any collection, kept up to date by GC notifications. */
    private static AtomicLong watchHeapAfterGc() {
        AtomicLong peak = new AtomicLong();
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            if (gc instanceof NotificationEmitter emitter) {
                emitter.addNotificationListener((n, h) -> {
                    if (!n.getType().equals(GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION)) {
                        return;
                    }
                    var info = GarbageCollectionNotificationInfo.from((CompositeData) n.getUserData());
                    long used = 0;
                    for (var e : info.getGcInfo().getMemoryUsageAfterGc().entrySet()) {
                        if (isHeapPool(e.getKey())) {
                            used += e.getValue().getUsed();
                        }
                    }
                    peak.accumulateAndGet(used, Math::max);
                }, null, null);
            }
        }
        return peak;
    }

    private static boolean isHeapPool(String name) {
        return ManagementFactory.getMemoryPoolMXBeans().stream()
                .anyMatch(p -> p.getName().equals(name) && p.getType() == java.lang.management.MemoryType.HEAP);
    }

    /** VmHWM, VmRSS, RssAnon and RssFile of this process (Linux), or why not. */
    private static String procStatus() {
        try {
            StringBuilder b = new StringBuilder();
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                for (String key : new String[] {"VmHWM", "VmRSS", "RssAnon", "RssFile"}) {
                    if (line.startsWith(key + ":")) {
                        b.append(key).append(' ').append(line.substring(key.length() + 1).trim()).append("  ");
                    }
                }
            }
            return b.toString().trim();
        } catch (IOException e) {
            return "no /proc/self/status: " + e.getMessage();
        }
    }

    private static double mb(long bytes) {
        return bytes / (1024.0 * 1024.0);
    }
}
