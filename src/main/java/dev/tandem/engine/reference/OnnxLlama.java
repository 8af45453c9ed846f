package dev.tandem.engine.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.onnx.OnnxFile;
import dev.tandem.onnx.OnnxFile.Node;
import dev.tandem.onnx.OnnxFile.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

/**
 * Reads a Llama decoder's weights out of an ONNX graph in the Hugging Face Optimum layout (as
 * {@code torch.onnx.export} of a {@code LlamaForCausalLM} writes it), float32 or quantised by
 * {@code tools/models/quantize.py}; sizes and constants come from {@code config.json}.
 *
 * <p>How each weight is found:
 * <ul>
 *   <li>Projections: every {@code MatMul} whose second input is a constant 2-D tensor, and every
 *   {@code MatMulInteger} with a constant weight. The exporter's initializer names are often
 *   anonymous ({@code onnx::MatMul_1216}), but the node names keep the module path
 *   ({@code /model/layers.0/self_attn/q_proj/MatMul}, or {@code m_layers.0_self_attn_q_proj_MatMul_...}
 *   after quantisation), which says the layer and the projection. The one such product outside
 *   the layers is the classifier ({@code lm_head}; a tied classifier is exported as its own
 *   transposed copy). ONNX stores a MatMul weight as {@code [in][out]} (y = x W): it is transposed
 *   to {@code [out][in]} here.</li>
 *   <li>int8 products ({@code MatMulInteger}): uint8 weight {@code [in][out]}, per-column zero point
 *   (the node's fourth input) and scale (the constant of the second {@code Mul} after the
 *   {@code Cast}); the activation side must be quantize.py's per-token scheme (zero point 128,
 *   scale from {@code Abs/ReduceMax/Max/Div}), which {@link Matrix.U8} emulates.</li>
 *   <li>Embedding: the {@code Gather} on {@code input_ids} of a constant [vocab, dim] table; when
 *   the table is uint8, the per-row zero point and scale are the constants gathered for the
 *   {@code Sub} and {@code Mul} that follow its {@code Cast}.</li>
 *   <li>RMSNorm weights: the initializers named {@code ...layers.N.input_layernorm.weight},
 *   {@code ...layers.N.post_attention_layernorm.weight} and {@code ...norm.weight} (parameter
 *   names survive export because they are used as they are), or {@code Identity} nodes of that name
 *   (the exporter keeps one initializer of several equal weights).</li>
 *   <li>The slots layout ({@code tandem.kv_layout=slots}) has the same weights under the same names; its
 *   rotary cos/sin tables (constants gathered by position_ids) are not read: the engine computes rotary
 *   itself, with the same formula.</li>
 *   <li>Rotary: the Hugging Face half rotation ({@code rotate_half}: a {@code Neg} of a sliced
 *   half); a graph without it is refused.</li>
 *   <li>Optimum's merged decoder (an If on {@code use_cache_branch}) and float16 weights are refused at load, named
 *   as such with the engine that serves them (ONNX Runtime); a graph without {@code position_ids} is read as any
 *   other (OptimumVariantsOtherEnginesTest).</li>
 * </ul>
 */
public final class OnnxLlama {
    private static final Pattern LAYER = Pattern.compile(
            "layers[._/](\\d+)[._/](?:self_attn|mlp)[._/](q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)[._/]");
    private static final List<String> PROJECTIONS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");

    private OnnxLlama() {
    }

    public static LlamaWeights load(Path graph, Path configJson) {
        LlamaConfig c = config(configJson);
        OnnxFile onnx = OnnxFile.read(graph);
        try {
            return new OnnxLlama.Reader(onnx, c).parts().weights();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(graph + ": " + e.getMessage(), e);
        }
    }

    /**
     * The same weights for the offload mode ({@link LayeredWeights}): the graph is parsed from a
     * mapping of the file (raw_data is not read), each weight is remembered by its byte range, and a
     * layer, the head or an embedding row is mapped from the file each time it is used, its products
     * computed from the stored bytes in place ({@link Matrix.U8InOut}, {@link Matrix.F32InOut}), the
     * small tensors decoded by the same code as {@link #load}. Every piece is mapped once here, one at
     * a time, to check its shapes.
     */
    public static LayeredWeights offload(Path graph, Path configJson) {
        LlamaConfig c = config(configJson);
        Parts parts;
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            parts = new OnnxLlama.Reader(OnnxFile.map(graph, arena), c).parts();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(graph + ": " + e.getMessage(), e);
        }
        return parts.layered(graph).validated();
    }

    private static LlamaConfig config(Path configJson) {
        JsonNode cfg;
        try {
            cfg = new ObjectMapper().readTree(configJson.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(configJson + ": cannot read: " + e.getMessage(), e);
        }
        return config(cfg, configJson);
    }

    /**
     * A value computed from some tensors of the graph: decoded to the heap ({@code build}), or, for
     * the offload mode, built over the tensors' bytes in a mapping of the file ({@code inPlace}; the
     * same as {@code build} for the small tensors). {@code bind} gives each tensor its bytes (identity
     * in the normal mode).
     */
    record Part<T>(List<Tensor> tensors, Function<List<Tensor>, T> build, Function<List<Tensor>, T> inPlace) {
        Part(List<Tensor> tensors, Function<List<Tensor>, T> build) {
            this(tensors, build, build);
        }

        T build(UnaryOperator<Tensor> bind, boolean mapped) {
            return (mapped ? inPlace : build).apply(tensors.stream().map(bind).toList());
        }
    }

    /** One decoder layer's parts (w1 = gate_proj, w2 = down_proj, w3 = up_proj). */
    record LayerParts(Part<float[]> attnNorm, Part<Matrix> wq, Part<Matrix> wk, Part<Matrix> wv, Part<Matrix> wo,
                      Part<float[]> ffnNorm, Part<Matrix> w1, Part<Matrix> w2, Part<Matrix> w3) {
        List<Tensor> tensors() {
            return java.util.stream.Stream.of(attnNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3)
                    .flatMap(p -> p.tensors().stream()).toList();
        }

        LlamaWeights.Layer build(UnaryOperator<Tensor> bind, boolean mapped) {
            return new LlamaWeights.Layer(attnNorm.build(bind, mapped), wq.build(bind, mapped), wk.build(bind, mapped),
                    wv.build(bind, mapped), wo.build(bind, mapped), ffnNorm.build(bind, mapped), w1.build(bind, mapped),
                    w2.build(bind, mapped), w3.build(bind, mapped));
        }
    }

    /**
     * The embedding table (float32, or uint8 with a zero point and scale per row, which are read at
     * once: 2 x vocab floats).
     */
    record EmbeddingPart(Tensor table, float[] zeroPoint, float[] scale, int vocab, int dim) {
        Embedding build() {
            return table.dataType() == OnnxFile.FLOAT ? new Embedding.F32(table.floats(), vocab, dim)
                    : new Embedding.U8(table.bytes(), scale, zeroPoint, vocab, dim);
        }

        /** Token {@code token}'s row alone, as a one-row embedding (same arithmetic as the whole table's). */
        LayeredWeights.Piece<Embedding> row(int token) {
            boolean f32 = table.dataType() == OnnxFile.FLOAT;
            long width = (f32 ? 4L : 1L) * dim;
            long start = table.rawOffset() + token * width;
            Path file = table.dataFile();  // null: the graph file; else its external data file
            return new LayeredWeights.Piece<>(List.of(new LayeredWeights.Span(file, start, start + width)), w -> {
                ByteBuffer b = w.bytes(file, start, width);
                if (f32) {
                    float[] row = new float[dim];
                    b.asFloatBuffer().get(row);
                    return new Embedding.F32(row, 1, dim);
                }
                byte[] row = new byte[dim];
                b.get(row);
                return new Embedding.U8(row, new float[] {scale[token]}, new float[] {zeroPoint[token]}, 1, dim);
            });
        }
    }

    /** Every weight of the graph, not yet decoded. */
    record Parts(LlamaConfig config, EmbeddingPart embedding, List<LayerParts> layers, Part<float[]> finalNorm,
                 Part<Matrix> classifier) {
        LlamaWeights weights() {
            UnaryOperator<Tensor> asIs = UnaryOperator.identity();
            return new LlamaWeights(config, embedding.build(),
                    layers.stream().map(l -> l.build(asIs, false)).toArray(LlamaWeights.Layer[]::new),
                    finalNorm.build(asIs, false), classifier.build(asIs, false));
        }

        LayeredWeights layered(Path file) {
            if (embedding.table().rawOffset() < 0) {
                throw new IllegalArgumentException(file + ": the embedding table is not stored as raw_data: the offload mode"
                        + " reads its rows from the file");
            }
            List<LayeredWeights.Piece<LlamaWeights.Layer>> pieces = layers.stream()
                    .map(l -> LayeredWeights.Piece.over(l.tensors(), w -> l.build(w::bind, true))).toList();
            List<Tensor> headTensors = new ArrayList<>(finalNorm.tensors());
            headTensors.addAll(classifier.tensors());
            LayeredWeights.Piece<LayeredWeights.Head> head = LayeredWeights.Piece.over(headTensors,
                    w -> new LayeredWeights.Head(finalNorm.build(w::bind, true), classifier.build(w::bind, true)));
            return new LayeredWeights(config, file, pieces, head, embedding::row);
        }
    }

    static LlamaConfig config(JsonNode cfg, Path file) {
        int dim = required(cfg, "hidden_size", file);
        int heads = required(cfg, "num_attention_heads", file);
        return new LlamaConfig(dim, required(cfg, "intermediate_size", file), required(cfg, "num_hidden_layers", file),
                heads, cfg.path("num_key_value_heads").asInt(heads), cfg.path("head_dim").asInt(dim / heads),
                required(cfg, "vocab_size", file), required(cfg, "max_position_embeddings", file),
                (float) cfg.path("rms_norm_eps").asDouble(1e-6), (float) cfg.path("rope_theta").asDouble(10000.0),
                LlamaConfig.Rotary.HALF);
    }

    private static int required(JsonNode cfg, String key, Path file) {
        int v = cfg.path(key).asInt(0);
        if (v <= 0) {
            throw new IllegalArgumentException(file + ": " + key + " is missing or not positive");
        }
        return v;
    }

    /** One pass over one graph. */
    private static final class Reader {
        /** ONNX's data type number of float16. */
        private static final int FLOAT16 = 10;

        private final OnnxFile onnx;
        private final LlamaConfig c;
        private final Map<String, Node> producer = new HashMap<>();
        private final Map<String, List<Node>> consumers = new HashMap<>();

        Reader(OnnxFile onnx, LlamaConfig c) {
            this.onnx = onnx;
            this.c = c;
            for (Node n : onnx.nodes()) {
                n.outputs().forEach(o -> producer.put(o, n));
                n.inputs().forEach(i -> consumers.computeIfAbsent(i, k -> new ArrayList<>()).add(n));
            }
        }

        /**
         * Two Optimum export variants this reader does not understand, named as such (else they would fail later on a
         * symptom: no classifier product, no rotate_half): the merged decoder, whose layers sit inside the two branches
         * of an If, and float16 weights (this engine computes from float32 or int8 weights). ONNX Runtime serves both.
         */
        private void refuseOptimumVariantsItCannotRead() {
            if (onnx.nodes().stream().anyMatch(n -> n.opType().equals("If"))) {
                throw new IllegalArgumentException("is a merged decoder (an If choosing between a with-past and a"
                        + " without-past graph, as decoder_model_merged.onnx with use_cache_branch), which the reference engine"
                        + " does not read: serve it with engine=onnxruntime or engine=openvino, or export the decoder with past"
                        + " alone (model.onnx, what a recent optimum-cli writes for text-generation-with-past)");
            }
            if (onnx.initializers().values().stream().anyMatch(t -> t.dataType() == FLOAT16 && t.dims().length >= 2)) {
                throw new IllegalArgumentException("has float16 weights, which the reference engine does not read (it reads"
                        + " float32 and int8 graphs): serve it with engine=onnxruntime, or export it in float32");
            }
        }

        Parts parts() {
            refuseOptimumVariantsItCannotRead();
            if (onnx.nodes().stream().noneMatch(n -> n.opType().equals("Neg"))) {
                throw new IllegalArgumentException("no rotate_half (Neg) in the graph: only the Hugging Face rotary layout is"
                        + " understood");
            }
            @SuppressWarnings("unchecked")
            Part<Matrix>[][] proj = new Part[c.layers()][PROJECTIONS.size()];
            Part<Matrix> classifier = null;
            for (Node n : onnx.nodes()) {
                Part<Matrix> m = switch (n.opType()) {
                    case "MatMul" -> floatProduct(n);
                    case "MatMulInteger" -> int8Product(n);
                    default -> null;
                };
                if (m == null) {
                    continue;
                }
                Matcher where = LAYER.matcher(n.name() + "/");
                if (where.find()) {
                    int l = Integer.parseInt(where.group(1));
                    int p = PROJECTIONS.indexOf(where.group(2));
                    if (l >= c.layers() || proj[l][p] != null) {
                        throw new IllegalArgumentException("node '" + n.name() + "': layer " + l + " " + where.group(2)
                                + (l >= c.layers() ? " is beyond num_hidden_layers=" + c.layers() : " appears twice"));
                    }
                    proj[l][p] = m;
                } else if (classifier == null) {
                    classifier = m;
                } else {
                    throw new IllegalArgumentException("two weight products outside the decoder layers ('" + n.name()
                            + "' and an earlier one): cannot tell which is the classifier");
                }
            }
            if (classifier == null) {
                throw new IllegalArgumentException("no classifier (lm_head) product with a constant weight");
            }
            List<LayerParts> layers = new ArrayList<>();
            for (int l = 0; l < c.layers(); l++) {
                for (int p = 0; p < PROJECTIONS.size(); p++) {
                    if (proj[l][p] == null) {
                        throw new IllegalArgumentException("no " + PROJECTIONS.get(p) + " product found for layer " + l);
                    }
                }
                layers.add(new LayerParts(norm("layers." + l + ".input_layernorm.weight"),
                        proj[l][0], proj[l][1], proj[l][2], proj[l][3],
                        norm("layers." + l + ".post_attention_layernorm.weight"),
                        proj[l][4], proj[l][6], proj[l][5]));
            }
            return new Parts(c, embedding(), List.copyOf(layers), norm("norm.weight"), classifier);
        }

        /** A float32 MatMul by a constant [in][out] weight, or null if the weight is computed (attention). */
        private Part<Matrix> floatProduct(Node n) {
            Tensor b = onnx.constant(n.input(1));
            if (b == null || b.dims().length != 2 || b.dataType() != OnnxFile.FLOAT) {
                return null;
            }
            int in = (int) b.dims()[0];
            int out = (int) b.dims()[1];
            return new Part<>(List.of(b), t -> Matrix.F32.fromInOut(t.get(0).floats(), in, out),
                    t -> t.get(0).raw() == null ? Matrix.F32.fromInOut(t.get(0).floats(), in, out)
                            : new Matrix.F32InOut(java.lang.foreign.MemorySegment.ofBuffer(t.get(0).raw()), in, out));
        }

        /** tandem's int8 product: MatMulInteger(xq, Wq, 128, Wzp) -> Cast -> Mul(xs) -> Mul(Wscale). */
        private Part<Matrix> int8Product(Node n) {
            Tensor b = onnx.constant(n.input(1));
            if (b == null || b.dims().length != 2) {
                return null;
            }
            require(b.dataType() == OnnxFile.UINT8, n, "weight is not uint8");
            int in = (int) b.dims()[0];
            int out = (int) b.dims()[1];
            Tensor xZero = onnx.constant(n.input(2));
            require(xZero != null && xZero.size() == 1 && xZero.longs()[0] == 128, n,
                    "activation zero point is not the constant 128 of the per-token scheme");
            requirePerTokenQuantisation(n);
            Tensor wZero = onnx.constant(n.input(3));
            require(wZero != null && wZero.size() == out && wZero.dataType() == OnnxFile.UINT8, n,
                    "weight zero point is not a constant uint8 per output column");
            Node cast = only(n.outputs().get(0), "Cast", n);
            Node mulX = only(cast.outputs().get(0), "Mul", n);
            Node mulW = only(mulX.outputs().get(0), "Mul", n);
            String scaleName = mulW.input(0).equals(mulX.outputs().get(0)) ? mulW.input(1) : mulW.input(0);
            Tensor scale = onnx.constant(scaleName);
            require(scale != null && scale.size() == out && scale.dataType() == OnnxFile.FLOAT, n,
                    "no constant float scale per output column after the Cast and the activation-scale Mul");
            return new Part<>(List.of(b, wZero, scale),
                    t -> Matrix.U8.fromInOut(t.get(0).bytes(), t.get(1).bytes(), t.get(2).floats(), in, out),
                    t -> t.get(0).raw() == null ? Matrix.U8.fromInOut(t.get(0).bytes(), t.get(1).bytes(), t.get(2).floats(), in, out)
                            : new Matrix.U8InOut(java.lang.foreign.MemorySegment.ofBuffer(t.get(0).raw()),
                                    Matrix.U8.zeroPoints(t.get(1).bytes()), t.get(2).floats(), in, out));
        }

        /** xq = Cast(Clip(Add(Round(Div(x, xs)), 128))) with xs = Div(Max(ReduceMax(Abs(x)), eps), 127). */
        private void requirePerTokenQuantisation(Node n) {
            Node cast = producerOf(n.input(0), "Cast", n);
            Node clip = producerOf(cast.input(0), "Clip", n);
            Node add = producerOf(clip.input(0), "Add", n);
            Node round = producerOf(add.input(0), "Round", n);
            Node div = producerOf(round.input(0), "Div", n);
            Node scale = producerOf(div.input(1), "Div", n);
            Node max = producerOf(scale.input(0), "Max", n);
            Node reduce = producerOf(max.input(0), "ReduceMax", n);
            Node abs = producerOf(reduce.input(0), "Abs", n);
            require(abs.input(0).equals(div.input(0)), n, "the activation scale is not taken from the quantised input");
            require(constantValue(scale.input(1)) == 127f && constantValue(max.input(1)) == 1e-8f
                    && constantValue(add.input(1)) == 128f && constantValue(clip.input(1)) == 0f
                    && constantValue(clip.input(2)) == 255f, n, "activation quantisation constants differ from quantize.py's"
                    + " (127, 1e-8, 128, 0, 255)");
        }

        private float constantValue(String name) {
            Tensor t = onnx.constant(name);
            return t != null && t.size() == 1 && t.dataType() == OnnxFile.FLOAT ? t.floats()[0] : Float.NaN;
        }

        private Node producerOf(String value, String op, Node user) {
            Node p = producer.get(value);
            require(p != null && p.opType().equals(op), user, "activation quantisation is not tandem's per-token scheme"
                    + " (expected " + op + " producing '" + value + "', found " + (p == null ? "none" : p.opType()) + ")");
            return p;
        }

        private Node only(String value, String op, Node user) {
            List<Node> users = consumers.getOrDefault(value, List.of());
            require(users.size() == 1 && users.get(0).opType().equals(op), user, "expected one " + op + " after '" + value
                    + "', found " + users.stream().map(Node::opType).toList());
            return users.get(0);
        }

        private EmbeddingPart embedding() {
            for (Node n : onnx.nodes()) {
                if (!n.opType().equals("Gather") || !n.input(1).equals("input_ids")) {
                    continue;
                }
                Tensor t = onnx.constant(n.input(0));
                if (t == null || t.dims().length != 2 || t.dims()[1] != c.dim()) {
                    continue;
                }
                int vocab = (int) t.dims()[0];
                if (t.dataType() == OnnxFile.FLOAT) {
                    return new EmbeddingPart(t, null, null, vocab, c.dim());
                }
                if (t.dataType() == OnnxFile.UINT8) {
                    // Cast -> Sub(zero point gathered per row) -> Mul(scale gathered per row)
                    Node cast = only(n.outputs().get(0), "Cast", n);
                    Node sub = only(cast.outputs().get(0), "Sub", n);
                    Node mul = only(sub.outputs().get(0), "Mul", n);
                    float[] zp = gatheredRows(sub.input(1), vocab, n);
                    float[] scale = gatheredRows(mul.input(0).equals(sub.outputs().get(0)) ? mul.input(1) : mul.input(0),
                            vocab, n);
                    return new EmbeddingPart(t, zp, scale, vocab, c.dim());
                }
            }
            throw new IllegalArgumentException("no embedding: no Gather of a constant [vocab, " + c.dim() + "] table by input_ids");
        }

        /** The constant [vocab, 1] table that {@code value} is gathered from by input_ids. */
        private float[] gatheredRows(String value, int vocab, Node user) {
            Node g = producer.get(value);
            require(g != null && g.opType().equals("Gather") && g.input(1).equals("input_ids"), user,
                    "quantised embedding: '" + value + "' is not gathered by input_ids");
            Tensor t = onnx.constant(g.input(0));
            require(t != null && t.size() == vocab && t.dataType() == OnnxFile.FLOAT, user,
                    "quantised embedding: '" + g.input(0) + "' is not a float per row");
            return t.floats();
        }

        private Part<float[]> norm(String suffix) {
            java.util.function.Predicate<String> named = name -> name.endsWith(suffix)
                    && (suffix.startsWith("layers.") || !name.contains("layers."));
            List<Tensor> found = onnx.initializers().values().stream().filter(t -> named.test(t.name())).toList();
            if (found.isEmpty()) {
                // torch.onnx.export keeps one initializer of equal weights (e.g. the all-ones norms of a freshly
                // initialised model, as in the slots-tiny fixture) and names the others as Identity nodes of it
                found = onnx.nodes().stream()
                        .filter(n -> n.opType().equals("Identity") && named.test(n.outputs().get(0)))
                        .map(n -> onnx.constant(n.input(0)))
                        .filter(java.util.Objects::nonNull)
                        .toList();
            }
            if (found.size() != 1) {
                throw new IllegalArgumentException(found.isEmpty() ? "no initializer named '*" + suffix + "'"
                        : "several initializers end with '" + suffix + "': " + found.stream().map(Tensor::name).toList());
            }
            return new Part<>(List.of(found.get(0)), t -> t.get(0).floats());
        }

        private static void require(boolean ok, Node n, String message) {
            if (!ok) {
                throw new IllegalArgumentException("node '" + n.name() + "' (" + n.opType() + "): " + message);
            }
        }
    }
}
