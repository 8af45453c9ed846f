package dev.tandem.tools;

import dev.tandem.engine.ModelShape;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.Sequence;
import dev.tandem.memory.ByteSize;
import dev.tandem.memory.KvFootprint;
import dev.tandem.memory.MemoryBudget;
import dev.tandem.memory.MemoryPlan;
import dev.tandem.model.ModelDirectory;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Prints a model directory's memory plan (the figures {@code GET /v1/models/{id}} serves as
 * {@code memory}), for sizing pods before deploying:
 *
 * <pre>
 * tools/plan.sh MODEL_DIR [--budget 384M] [--draft DRAFT_DIR] [--context N] [--max-batched-tokens N] [--policy auto|fixed]
 * </pre>
 *
 * An ONNX graph is opened in ONNX Runtime to read the cache geometry exactly as the service does (layers,
 * KV heads, head size, float32/float16 cache) and where ONNX Runtime keeps its caches: KvBuffers for an
 * Optimum-layout graph, one slot-pool row per sequence for a graph marked {@code tandem.kv_layout=slots};
 * an OpenVINO IR directory is planned from config.json (a stateful IR's cache lives inside OpenVINO:
 * theoretical bytes only).
 * Without {@code --budget} no sequence counts are printed ({@code auto} would size this machine, not the pod).
 * {@code --context N} plans sequences of N tokens instead of the model's full context.
 * {@code --max-batched-tokens} and {@code --policy} are the service's {@code tandem.scheduler.max-batched-tokens}
 * (default 64) and {@code tandem.assisted.policy} (default auto): the prompt is fed in chunks of the former, which
 * bound the step buffers; under auto the draft may catch up on a whole sequence in one feed, so its feeds are not
 * bounded by the chunk.
 */
public final class MemoryPlanner {
    /** Worst-case rows an assisted step feeds, as the service plans with. */
    static final int MAX_STEP_FEED = MemoryPlan.maxStepFeed(AssistOptions.MAX_ASSISTANT_TOKENS);
    /** The service's default {@code tandem.scheduler.max-batched-tokens}. */
    static final int DEFAULT_MAX_BATCHED_TOKENS = 64;

    private MemoryPlanner() {
    }

    public static void main(String[] args) {
        int status = run(args, System.out, System.err);
        if (status != 0) {
            System.exit(status);
        }
    }

    /** Runs the CLI; 0 on success, 2 on a usage error, 1 when a model cannot be planned. */
    static int run(String[] args, PrintStream out, PrintStream err) {
        Path target = null;
        Path draft = null;
        String budgetText = null;
        Integer context = null;
        int maxBatchedTokens = DEFAULT_MAX_BATCHED_TOKENS;
        String policy = "auto";
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--budget" -> budgetText = value(args, ++i, "--budget");
                    case "--draft" -> draft = Path.of(value(args, ++i, "--draft"));
                    case "--context" -> context = Integer.parseInt(value(args, ++i, "--context"));
                    case "--max-batched-tokens" -> maxBatchedTokens = Integer.parseInt(value(args, ++i, "--max-batched-tokens"));
                    case "--policy" -> policy = value(args, ++i, "--policy");
                    case "-h", "--help" -> {
                        out.println(USAGE);
                        return 0;
                    }
                    default -> {
                        if (args[i].startsWith("--") || target != null) {
                            throw new IllegalArgumentException("unexpected argument '" + args[i] + "'");
                        }
                        target = Path.of(args[i]);
                    }
                }
            }
            if (target == null) {
                throw new IllegalArgumentException("no model directory given");
            }
            if (maxBatchedTokens < 1) {
                throw new IllegalArgumentException("--max-batched-tokens must be at least 1");
            }
            if (!policy.equals("auto") && !policy.equals("fixed")) {
                throw new IllegalArgumentException("--policy must be auto or fixed");
            }
        } catch (IllegalArgumentException e) {
            err.println("plan: " + e.getMessage());
            err.println(USAGE);
            return 2;
        }
        try {
            MemoryBudget budget = budgetText == null ? MemoryBudget.UNLIMITED : MemoryBudget.resolve(budgetText);
            Loaded t = load(target);
            Loaded d = draft == null ? null : load(draft);
            int ctx = context == null ? t.shape.maxContext() : context;
            int chunk = Sequence.largestPrefillChunk(maxBatchedTokens);
            int draftChunk = policy.equals("auto") ? KvFootprint.UNCHUNKED : chunk;  // auto: the draft may lag, then catch up
            KvFootprint draftWorst = d == null ? null
                    : KvFootprint.worst(d.layout, d.shape, Math.min(ctx, d.shape.maxContext()), MAX_STEP_FEED, draftChunk)
                    .footprint();
            MemoryPlan tp = MemoryPlan.of(t.dir, t.shape, t.source, ctx, t.layout, MAX_STEP_FEED, chunk, budget, draftWorst);
            MemoryPlan dp = d == null ? null
                    : MemoryPlan.of(d.dir, d.shape, d.source, Math.min(ctx, d.shape.maxContext()), d.layout,
                    MAX_STEP_FEED, draftChunk, budget, null);
            print(out, t, tp, d, dp, budgetText != null);
            return 0;
        } catch (RuntimeException e) {
            err.println("plan: " + e.getMessage());
            return 1;
        }
    }

    static final String USAGE = "usage: tools/plan.sh MODEL_DIR [--budget SIZE (384M, 2G, 512Mi, bytes)] [--draft DRAFT_DIR]"
            + " [--context TOKENS] [--max-batched-tokens TOKENS (64)] [--policy auto|fixed]";

    private static String value(String[] args, int i, String flag) {
        if (i >= args.length) {
            throw new IllegalArgumentException(flag + " needs a value");
        }
        return args[i];
    }

    private record Loaded(ModelDirectory dir, ModelShape shape, String source, String quantization, KvFootprint.Layout layout) {
    }

    /** The directory, and its cache geometry read by ONNX Runtime (an ONNX graph) or from config.json (an IR). */
    private static Loaded load(Path path) {
        // the graph the service runs on its default engine (model_optimized.onnx when the directory has one)
        ModelDirectory dir = ModelDirectory.open(path, dev.tandem.engine.onnxruntime.OnnxRuntimeEngine.PREFERRED_GRAPHS,
                java.util.Optional.empty());
        if (dir.graph().getFileName().toString().endsWith(".onnx")) {
            try (OrtCausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(),
                    new OnnxRuntimeOptions(1, false, false, "basic"))) {
                return new Loaded(dir, lm.shape(), "engine", dir.quantization(), KvFootprint.Layout.forStorage(lm.cacheStorage()));
            }
        }
        // an IR: stateful (beam_idx input, the cache inside OpenVINO) or stateless (KvBuffers, as ONNX)
        boolean stateful;
        try {
            stateful = java.nio.file.Files.readString(dir.graph()).contains("\"beam_idx\"");
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(dir.graph() + ": cannot read: " + e.getMessage(), e);
        }
        return new Loaded(dir, dir.config().shape(), dir.files().configJson().getFileName().toString(), dir.quantization(),
                stateful ? KvFootprint.Layout.RUNTIME_STATE : KvFootprint.Layout.KV_BUFFERS);
    }

    private static void print(PrintStream out, Loaded t, MemoryPlan tp, Loaded d, MemoryPlan dp, boolean withBudget) {
        List<String[]> rows = new ArrayList<>();
        rows.add(row("model", t.dir.dir().toString(), d == null ? null : d.dir.dir().toString()));
        rows.add(row("graph", t.dir.graph().getFileName() + ", " + t.quantization,
                d == null ? null : d.dir.graph().getFileName() + ", " + d.quantization));
        add(rows, "graph file bytes", tp, dp, p -> n(p.weights().graphFileBytes()));
        add(rows, "parameters", tp, dp, p -> n(p.weights().parameters()));
        add(rows, "parameters (config.json)", tp, dp, p -> n(p.weights().parametersFromConfig()));
        add(rows, "parameters by dtype", tp, dp, p -> p.weights().parametersByDtype() == null ? "-"
                : p.weights().parametersByDtype().toString().replaceAll("[{}]", ""));
        add(rows, "parameter bytes as stored", tp, dp, p -> b(p.weights().parameterBytes()));
        add(rows, "quantisation overhead bytes", tp, dp, p -> b(p.weights().quantizationOverheadBytes()));
        add(rows, "tied copy bytes", tp, dp, p -> b(p.weights().tiedCopyBytes()));
        add(rows, "constant bytes", tp, dp, p -> b(p.weights().constantBytes()));
        add(rows, "all initializer bytes", tp, dp, p -> b(p.weights().initializerBytes()));
        add(rows, "weights fp32", tp, dp, p -> p.weights().byPrecision() == null ? "-" : b(p.weights().byPrecision().fp32()));
        add(rows, "weights fp16", tp, dp, p -> p.weights().byPrecision() == null ? "-" : b(p.weights().byPrecision().fp16()));
        add(rows, "weights int8", tp, dp, p -> p.weights().byPrecision() == null ? "-" : b(p.weights().byPrecision().int8()));
        add(rows, "weights int4", tp, dp, p -> p.weights().byPrecision() == null ? "-" : b(p.weights().byPrecision().int4()));
        add(rows, "KV cache", tp, dp, p -> p.kvCache().dtype() + ", " + p.kvCache().layers() + " layers x "
                + p.kvCache().kvHeads() + " kv heads x " + p.kvCache().headDim() + " (" + p.kvCache().shapeSource() + ")");
        add(rows, "KV bytes per token", tp, dp, p -> b(p.kvCache().bytesPerToken()));
        add(rows, "context tokens", tp, dp, p -> n((long) p.kvCache().contextTokens()));
        add(rows, "KV bytes per full context", tp, dp, p -> b(p.kvCache().bytesPerFullContext()));
        add(rows, "allocated per sequence (worst)", tp, dp, p -> b(p.kvCache().allocatedBytesPerFullContext()));
        add(rows, "  of which KV regions", tp, dp, p -> b(p.kvCache().allocatedKvBufferBytes()));
        add(rows, "  of which step buffers", tp, dp, p -> b(p.kvCache().allocatedStepBufferBytes()));
        add(rows, "  at a prompt of (tokens)", tp, dp, p -> n(p.kvCache().worstCasePromptTokens() == null ? null
                : (long) p.kvCache().worstCasePromptTokens()));
        if (withBudget) {
            add(rows, "budget", tp, dp, p -> b(p.budget().bytes()));
            add(rows, "full-context sequences", tp, dp, p -> n(p.budget().maxFullContextSequences()));
            add(rows, "  counting theoretical bytes", tp, dp, p -> n(p.budget().maxFullContextSequencesTheoretical()));
            if (d != null) {
                rows.add(row("  target with draft", n(tp.budget().maxFullContextSequencesWithDraft()), null));
            }
        }
        int w0 = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0);
        int w1 = rows.stream().mapToInt(r -> r[1].length()).max().orElse(0);
        for (String[] r : rows) {
            String line = pad(r[0], w0) + "  " + (d == null ? r[1] : pad(r[1], w1) + "  " + (r[2] == null ? "" : r[2]));
            out.println(line.stripTrailing());
        }
        for (Loaded m : d == null ? List.of(t) : List.of(t, d)) {
            MemoryPlan p = m == t ? tp : dp;
            String name = m.dir.name();
            p.notes().forEach(s -> out.println("note (" + name + "): " + s));
            p.unavailable().forEach(s -> out.println("unavailable (" + name + "): " + s));
        }
        out.println("allocation: " + tp.kvCache().allocation());
        out.println("counting: " + MemoryPlan.COUNTING_RULE);
    }

    private static void add(List<String[]> rows, String label, MemoryPlan t, MemoryPlan d, Function<MemoryPlan, String> f) {
        rows.add(row(label, f.apply(t), d == null ? null : f.apply(d)));
    }

    private static String[] row(String label, String a, String b) {
        return new String[] {label, a, b};
    }

    private static String pad(String s, int w) {
        return s + " ".repeat(Math.max(0, w - s.length()));
    }

    private static String n(Long v) {
        return v == null ? "-" : String.format(Locale.ROOT, "%,d", v);
    }

    private static String b(Long v) {
        return v == null ? "-" : String.format(Locale.ROOT, "%,d (%s)", v, ByteSize.human(v));
    }
}
