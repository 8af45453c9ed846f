package dev.tandem.tools;

import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.StepInvariance;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * Whether a graph of a model directory is step-invariant on this processor with ONNX Runtime: what the service's
 * probe (StepInvariance) says, and, over a longer text, how many rows of blocks of 2-16 tokens differ from the same
 * tokens fed one at a time, and by how much (docs/benchmarks.md, "The 4-bit graph is not step-invariant here").
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
        }
    }
}
