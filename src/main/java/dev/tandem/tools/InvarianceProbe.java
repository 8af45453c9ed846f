package dev.tandem.tools;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.Feed;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.PaddedSteps;
import dev.tandem.engine.StepInvariance;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * Whether a graph of a model directory is step-invariant on this processor with ONNX Runtime: what the service's
 * probe (StepInvariance) says, and, over a longer text, how many rows of blocks of 2-16 tokens differ from the same
 * tokens fed one at a time, and by how much (docs/benchmarks.md, "The 4-bit graph is not step-invariant here"); then the
 * same for batched steps of 2-16 sequences with blocks of 1-7 tokens each, unpadded and padded ({@link PaddedSteps}: no
 * step computes one row), the form the service serves a target in when only its one-row steps differ.
 *
 * <pre>
 * java -cp 'target/quarkus-app/app/*:target/quarkus-app/lib/main/*:target/quarkus-app/lib/boot/*' \
 *   --enable-native-access=ALL-UNNAMED dev.tandem.tools.InvarianceProbe MODEL_DIR [GRAPH_FILE] [TOKENS=80]
 * </pre>
 */
public final class InvarianceProbe {
    private InvarianceProbe() {
    }

    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: InvarianceProbe MODEL_DIR [GRAPH_FILE] [TOKENS=80]");
            System.exit(2);
        }
        ModelDirectory dir = ModelDirectory.open(Path.of(args[0]), List.of(), args.length > 1 ? Optional.of(args[1]) : Optional.empty());
        int n = args.length > 2 ? Integer.parseInt(args[2]) : 80;
        try (OrtCausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults())) {
            System.out.println(dir.graph().getFileName() + ": " + StepInvariance.probe(lm));
            Random rnd = new Random(7);
            int[] tokens = new int[n];
            for (int i = 0; i < n; i++) {
                tokens[i] = 5 + rnd.nextInt(lm.shape().vocabSize() - 5);
            }
            float[][] single = new float[n][];
            try (KvCache c = lm.newCache()) {
                for (int i = 0; i < n; i++) {
                    single[i] = lm.forward(c, tokens, i, 1).row(0);
                }
            }
            for (int block : new int[] {2, 3, 4, 6, 8, 16}) {
                int differing = 0;
                int rows = 0;
                float worst = 0;
                try (KvCache c = lm.newCache()) {
                    for (int i = 0; i + block <= n; i += block) {
                        Logits l = lm.forward(c, tokens, i, block);
                        for (int r = 0; r < block; r++) {
                            float[] row = l.row(r);
                            float w = 0;
                            boolean same = true;
                            for (int v = 0; v < row.length; v++) {
                                w = Math.max(w, Math.abs(row[v] - single[i + r][v]));
                                same &= Float.floatToRawIntBits(row[v]) == Float.floatToRawIntBits(single[i + r][v]);
                            }
                            differing += same ? 0 : 1;
                            rows++;
                            worst = Math.max(worst, w);
                        }
                    }
                }
                System.out.printf("blocks of %d: %d of %d rows differ from single steps, largest difference %.3g%n",
                        block, differing, rows, worst);
            }
            PaddedSteps padded = PaddedSteps.of(lm);
            System.out.println("padded (no step of one row; the service's fallback, PaddedSteps): " + StepInvariance.probe(padded));
            for (int[] bt : new int[][] {{2, 1}, {4, 1}, {8, 1}, {16, 1}, {4, 3}, {8, 6}, {16, 6}, {5, 7}}) {
                batches(lm, "unpadded", bt[0], bt[1], n);
                batches(padded, "padded", bt[0], bt[1], n);
            }
        }
    }

    /**
     * {@code sequences} sequences of {@code n} tokens decoded together, each step feeding every sequence a block of up
     * to {@code tokens} (staggered: sequence b starts with b % 3 tokens fed alone, so blocks end at different places),
     * against each sequence's tokens fed one at a time.
     */
    static void batches(CausalLm lm, String label, int sequences, int tokens, int n) {
        Random rnd = new Random(11L * sequences + tokens);
        int[][] seq = new int[sequences][n];
        for (int[] s : seq) {
            for (int i = 0; i < n; i++) {
                s[i] = 5 + rnd.nextInt(lm.shape().vocabSize() - 5);
            }
        }
        float[][][] single = new float[sequences][n][];
        for (int b = 0; b < sequences; b++) {
            try (KvCache c = lm.newCache()) {
                for (int i = 0; i < n; i++) {
                    single[b][i] = lm.forward(c, seq[b], i, 1).row(0);
                }
            }
        }
        int rows = 0;
        int differing = 0;
        float worst = 0;
        List<KvCache> caches = new ArrayList<>();
        try {
            for (int b = 0; b < sequences; b++) {
                caches.add(lm.newCache());
                for (int i = 0; i < b % 3; i++) {
                    lm.forward(caches.get(b), seq[b], i, 1);
                }
            }
            while (true) {
                List<Feed> feeds = new ArrayList<>();
                List<Integer> who = new ArrayList<>();
                for (int b = 0; b < sequences; b++) {
                    int at = caches.get(b).length();
                    int len = Math.min(tokens, n - at);
                    if (len > 0) {
                        feeds.add(new Feed(caches.get(b), seq[b], at, len));
                        who.add(b);
                    }
                }
                if (feeds.isEmpty()) {
                    break;
                }
                List<Logits> out = lm.forward(feeds);
                for (int f = 0; f < feeds.size(); f++) {
                    Feed fd = feeds.get(f);
                    for (int r = 0; r < fd.length(); r++) {
                        float[] row = out.get(f).row(r);
                        float[] ref = single[who.get(f)][fd.offset() + r];
                        float w = 0;
                        for (int v = 0; v < row.length; v++) {
                            w = Math.max(w, Math.abs(row[v] - ref[v]));
                        }
                        rows++;
                        differing += java.util.Arrays.equals(row, ref) ? 0 : 1;
                        worst = Math.max(worst, w);
                    }
                }
            }
        } finally {
            caches.forEach(KvCache::close);
        }
        System.out.printf("%s: %d sequences x blocks of %d: %d of %d rows differ from single steps, largest difference %.3g%n",
                label, sequences, tokens, differing, rows, worst);
    }
}
