package dev.tandem.tools;

import static dev.tandem.tools.BenchStats.median;

import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The cost of one batched step ({@code CausalLm.forward(List<Feed>)}) on a graph, for B = 1, 2, 4, 8, 16
 * sequences feeding T = 1 and 6 tokens each (a decode step; a verification of 5 candidates), next to the
 * same feeds as B single forwards. Every sequence has a past of {@code past} tokens (default 30), and is
 * truncated back after each timed step so that every repetition sees the same lengths. On a slots graph
 * ({@code tandem.kv_layout=slots}) the batched step is one {@code session.run}; on an Optimum graph it is the
 * loop of single forwards, so both columns measure the same thing there. A slots pool's width follows its longest
 * row (SlotRows), so rows filled to {@code past} and stepped run at the width a live pool has at that length
 * (column {@code w}: {@code past + T} rounded up to 64, which truncating back by T keeps).
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
 *      --enable-native-access=ALL-UNNAMED dev.tandem.tools.DecodeBenchmark --batched MODEL_DIR [threads=2] [reps=20] [past=30]
 * </pre>
 */
final class BatchedStepBenchmark {
    private static final int[] BATCHES = {1, 2, 4, 8, 16};
    private static final int[] FED = {1, 6};

    private BatchedStepBenchmark() {
    }

    static void run(ModelDirectory model, int threads, int reps, int past) {
        OnnxRuntimeOptions options = BenchEngines.ortOptions(threads);
        try (OrtCausalLm lm = OrtCausalLm.open(model.graph(), model.config().shape(), options)) {
            int vocab = lm.shape().vocabSize();
            System.out.printf(Locale.ROOT, "model=%s layout=%s threads=%d past=%d reps=%d (median ms per call)%n", model.name(),
                    lm.slotLayout() ? "slots, width up to " + lm.slotMaxWidth() : "optimum (batched = loop of singles)", threads, past, reps);
            System.out.println("   B  T   batched  B singles  batched/token     w");
            for (int b : BATCHES) {
                List<KvCache> caches = new ArrayList<>();
                int[] text = new int[past + 8];
                for (int i = 0; i < text.length; i++) {
                    text[i] = i == 0 ? 1 : 3 + (i * 37) % (vocab - 3);
                }
                try {
                    for (int i = 0; i < b; i++) {
                        KvCache c = lm.newCache();
                        caches.add(c);
                        lm.forward(c, text, 0, past);
                    }
                    for (int t : FED) {
                        List<Feed> feeds = new ArrayList<>();
                        for (KvCache c : caches) {
                            feeds.add(new Feed(c, text, past, t));
                        }
                        double[] batched = new double[reps];
                        double[] singles = new double[reps];
                        for (int r = -3; r < reps; r++) {  // 3 warm-up repetitions
                            long t0 = System.nanoTime();
                            lm.forward(feeds);
                            long t1 = System.nanoTime();
                            for (KvCache c : caches) {
                                c.truncate(past);
                            }
                            long t2 = System.nanoTime();
                            for (KvCache c : caches) {
                                lm.forward(c, text, past, t);
                            }
                            long t3 = System.nanoTime();
                            for (KvCache c : caches) {
                                c.truncate(past);
                            }
                            if (r >= 0) {
                                batched[r] = (t1 - t0) / 1e6;
                                singles[r] = (t3 - t2) / 1e6;
                            }
                        }
                        System.out.printf(Locale.ROOT, "  %2d %2d  %8.3f  %9.3f  %13.3f  %4d%n", b, t, median(batched), median(singles),
                                median(batched) / (b * t), lm.slotWidth());
                    }
                } finally {
                    caches.forEach(KvCache::close);
                }
            }
        }
    }
}
