package dev.tandem.memory;

import dev.tandem.engine.Llama2cHeader;
import dev.tandem.onnx.OnnxFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The weights an ONNX graph holds, read from its initializers (names, dtypes, dims, bytes; through
 * the hand-written protobuf reader {@link OnnxFile}), sorted into four kinds:
 *
 * <ul>
 *   <li><b>parameters</b>: the model's weights, each counted once, in the precision stored (an int8
 *       weight matrix counts its elements, like its float original). A {@code MatMulNBits} weight
 *       counts N x K from its attributes, as "int4" (4 bits) or "uint8" (8 bits).</li>
 *   <li><b>quantisation overhead</b>: scales and zero points: inputs 2 and 3 of {@code MatMulInteger},
 *       1 and 2 of {@code DequantizeLinear}/{@code QuantizeLinear}, 2.. of {@code MatMulNBits} and
 *       {@code GatherBlockQuantized}, and the constants a dequantisation chain ({@code Cast}, {@code Sub},
 *       {@code Mul}, {@code Div}) applies to the output of a {@code MatMulInteger} or of a {@code Gather}
 *       over an 8/4-bit table, up to and including the first {@code Mul} by a constant (the scale),
 *       as {@code tools/models/quantize.py} writes them.</li>
 *   <li><b>tied copy</b>: the output layer's weight when it is a second copy of the token embedding
 *       (an export of a tied model stores the embedding once for {@code Gather} and once, transposed,
 *       for the {@code MatMul} producing {@code logits}): it is one when both are float and hold the
 *       same values (transposed or not), or when they are quantised and {@code config.json} says
 *       {@code tie_word_embeddings} with element counts equal. Not counted as parameters.</li>
 *   <li><b>constants</b>: scalars, and tensors of index types (int32, int64, bool): shapes, axes,
 *       the quantiser's fixed numbers; and the cos/sin tables of {@code RotaryEmbedding} and
 *       {@code GroupQueryAttention} (functions of the position, not learnt).</li>
 * </ul>
 *
 * Tensors held by {@code Constant} nodes (rather than initializers) are not weights here; their
 * elements are reported as constants. Tensors kept in external data files ({@code model.onnx_data}) are
 * counted as those in the graph file: their bytes are their ranges in the data file.
 *
 * @param parameters        model parameters (see above)
 * @param parameterBytes    bytes the parameters take as stored
 * @param parametersByDtype parameters per stored dtype ("float32", "uint8", "int4", ...)
 * @param overheadBytes     quantisation scales and zero points, as stored
 * @param tiedCopyElements  elements of the tied copy of the embedding (0 when none)
 * @param tiedCopyBytes     its bytes as stored
 * @param constantBytes     constants' bytes (initializers and Constant nodes)
 * @param initializerBytes  every initializer's bytes: parameters + overhead + tied copy + initializer constants
 * @param notes             what a reader of the figures should know (e.g. the tied copy found)
 * @param dataFiles         the external data files the graph's tensors are stored in (none for a self-contained graph)
 */
public record WeightInventory(long parameters, long parameterBytes, Map<String, Long> parametersByDtype, long overheadBytes,
                              long tiedCopyElements, long tiedCopyBytes, long constantBytes, long initializerBytes,
                              List<String> notes, List<Path> dataFiles) {

    private static final Set<String> DEQUANT_CHAIN = Set.of("Cast", "Sub", "Mul", "Div");

    /** Reads {@code graph} ({@code tieWordEmbeddings}: config.json's flag, used only for quantised copies). */
    public static WeightInventory read(Path graph, boolean tieWordEmbeddings) {
        // mapped, not read: only the tied-copy comparison touches weight values (external data may be gigabytes)
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            return of(OnnxFile.map(graph, arena), tieWordEmbeddings);
        }
    }

    /**
     * The weights of a llama2.c checkpoint, from its header: every float32 after it is a parameter but the
     * precomputed rotary tables (constants here, as a graph's cos/sin caches are); a shared classifier is stored once.
     */
    public static WeightInventory llama2c(Llama2cHeader h) {
        long parameters = h.parameters();
        long rotaryBytes = 4 * h.rotaryFloats();
        return new WeightInventory(parameters, 4 * parameters, Map.of("float32", parameters), 0, 0, 0, rotaryBytes,
                4 * h.floats(), List.of("llama2.c checkpoint: float32 weights after a " + Llama2cHeader.BYTES
                + "-byte header; its rotary tables (" + rotaryBytes + " bytes) count as constants"
                + (h.sharedClassifier() ? "; the classifier is the token embedding, stored once" : "")), List.of());
    }

    static WeightInventory of(OnnxFile f, boolean tieWordEmbeddings) {
        Map<String, OnnxFile.Tensor> inits = f.initializers();
        Map<String, OnnxFile.Node> producer = new HashMap<>();
        Map<String, List<OnnxFile.Node>> consumers = new HashMap<>();
        for (OnnxFile.Node n : f.nodes()) {
            n.outputs().forEach(o -> producer.put(o, n));
            n.inputs().forEach(i -> consumers.computeIfAbsent(i, k -> new ArrayList<>()).add(n));
        }
        Set<String> overhead = new HashSet<>();
        Map<String, Long> packedElements = new HashMap<>();  // MatMulNBits weights: N x K
        Map<String, Long> packedBits = new HashMap<>();      // ... and their bits (4 unless the node says)
        Set<String> tables = new HashSet<>();  // rotary cos/sin caches: position tables, not weights
        List<String> seeds = new ArrayList<>();
        for (OnnxFile.Node n : f.nodes()) {
            switch (n.opType()) {
                case "MatMulInteger" -> {
                    addInits(overhead, inits, n, 2, 3);
                    seeds.add(n.outputs().getFirst());
                }
                case "DequantizeLinear", "QuantizeLinear" -> addInits(overhead, inits, n, 1, 2);
                case "QLinearMatMul" -> addInits(overhead, inits, n, 1, 2, 4, 5, 6, 7);
                case "GatherBlockQuantized" -> addInits(overhead, inits, n, 2, 3);
                case "MatMulNBits" -> {
                    addInits(overhead, inits, n, 2, 3, 4, 5);
                    var nAttr = n.attributes().get("N");
                    var kAttr = n.attributes().get("K");
                    if (nAttr != null && kAttr != null && inits.containsKey(n.input(1))) {
                        packedElements.put(n.input(1), nAttr.i() * kAttr.i());
                        var bits = n.attributes().get("bits");
                        packedBits.put(n.input(1), bits == null ? 4 : bits.i());
                    }
                }
                case "RotaryEmbedding" -> addInits(tables, inits, n, 2, 3);
                case "GroupQueryAttention" -> addInits(tables, inits, n, 7, 8);
                case "Gather" -> {
                    OnnxFile.Tensor data = inits.get(n.input(0));
                    if (data != null && Dtypes.isLowBitInteger(data.dataType()) && data.dims().length >= 2) {
                        seeds.add(n.outputs().getFirst());
                    }
                }
                default -> {
                }
            }
        }
        for (String seed : seeds) {
            dequantChain(seed, 0, inits, producer, consumers, overhead);
        }

        List<String> notes = new ArrayList<>();
        String embedding = embeddingTable(f, inits);
        String lmHead = lmHeadWeight(f, inits, producer);
        String tiedCopy = null;
        if (embedding != null && lmHead != null && !embedding.equals(lmHead)) {
            OnnxFile.Tensor e = inits.get(embedding);
            OnnxFile.Tensor l = inits.get(lmHead);
            long le = packedElements.getOrDefault(lmHead, l.size());
            boolean bothFloat = e.dataType() == OnnxFile.FLOAT && l.dataType() == OnnxFile.FLOAT;
            if (e.size() == le && bothFloat && sameValues(e, l)) {
                tiedCopy = lmHead;
                notes.add("the output layer '" + lmHead + "' holds the token embedding '" + embedding
                        + "' again (same values" + (e.dims().length == 2 && e.dims()[0] != l.dims()[0] ? ", transposed" : "")
                        + "): a tied copy, not counted as parameters");
            } else if (e.size() == le && !bothFloat && tieWordEmbeddings) {
                tiedCopy = lmHead;
                notes.add("the output layer '" + lmHead + "' is a quantised copy of the token embedding '" + embedding
                        + "' (config.json: tie_word_embeddings): a tied copy, not counted as parameters");
            } else if (tieWordEmbeddings && bothFloat && e.size() == le) {
                notes.add("config.json says tie_word_embeddings, but the output layer '" + lmHead
                        + "' differs from the token embedding '" + embedding + "': both counted as parameters");
            }
        }

        long parameters = 0;
        long parameterBytes = 0;
        long overheadBytes = 0;
        long tiedElements = 0;
        long tiedBytes = 0;
        long constantBytes = 0;
        long initializerBytes = 0;
        Map<String, Long> byDtype = new TreeMap<>();
        for (OnnxFile.Tensor t : inits.values()) {
            long bytes = Dtypes.storedBytes(t);
            initializerBytes += bytes;
            if (t.name().equals(tiedCopy)) {
                tiedElements = packedElements.getOrDefault(t.name(), t.size());
                tiedBytes += bytes;
            } else if (overhead.contains(t.name())) {
                overheadBytes += bytes;
            } else if (t.size() <= 1 || !Dtypes.isWeight(t.dataType()) || tables.contains(t.name())) {
                constantBytes += bytes;
            } else {
                long n = packedElements.getOrDefault(t.name(), t.size());
                parameters += n;
                parameterBytes += bytes;
                Long bits = packedBits.get(t.name());
                byDtype.merge(bits == null ? Dtypes.name(t.dataType()) : bits == 4 ? "int4" : "uint" + bits, n, Long::sum);
            }
        }
        for (OnnxFile.Node n : f.nodes()) {
            if (n.opType().equals("Constant") && n.attributes().containsKey("value") && n.attributes().get("value").t() != null) {
                constantBytes += Dtypes.storedBytes(n.attributes().get("value").t());
            }
        }
        return new WeightInventory(parameters, parameterBytes, java.util.Collections.unmodifiableMap(byDtype), overheadBytes, tiedElements, tiedBytes,
                constantBytes, initializerBytes, List.copyOf(notes), f.dataFiles());
    }

    private static void addInits(Set<String> into, Map<String, OnnxFile.Tensor> inits, OnnxFile.Node n, int... at) {
        for (int k : at) {
            String name = n.input(k);
            if (inits.containsKey(name)) {
                into.add(name);
            }
        }
    }

    /** Follows a quantised op's output through Cast/Sub/Mul/Div, marking constant operands, up to the first Mul by one. */
    private static void dequantChain(String value, int depth, Map<String, OnnxFile.Tensor> inits,
                                     Map<String, OnnxFile.Node> producer, Map<String, List<OnnxFile.Node>> consumers,
                                     Set<String> overhead) {
        if (depth > 4) {
            return;
        }
        for (OnnxFile.Node c : consumers.getOrDefault(value, List.of())) {
            if (!DEQUANT_CHAIN.contains(c.opType())) {
                continue;
            }
            boolean scaled = false;
            for (String in : c.inputs()) {
                if (in.equals(value)) {
                    continue;
                }
                Set<String> sources = new HashSet<>();
                constantSources(in, 0, inits, producer, sources);
                for (String s : sources) {
                    if (inits.get(s).size() > 1) {
                        overhead.add(s);
                        scaled |= c.opType().equals("Mul");
                    }
                }
            }
            if (!scaled) {
                dequantChain(c.outputs().getFirst(), depth + 1, inits, producer, consumers, overhead);
            }
        }
    }

    /** The initializers a value is computed from by gathering, reshaping or scaling constants (within three steps). */
    private static void constantSources(String value, int depth, Map<String, OnnxFile.Tensor> inits,
                                        Map<String, OnnxFile.Node> producer, Set<String> into) {
        if (inits.containsKey(value)) {
            into.add(value);
            return;
        }
        OnnxFile.Node p = producer.get(value);
        if (p == null || depth >= 3) {
            return;
        }
        switch (p.opType()) {
            case "Gather", "Unsqueeze", "Reshape", "Cast", "Squeeze", "Transpose" -> constantSources(p.input(0), depth + 1, inits, producer, into);
            case "Mul" -> p.inputs().forEach(i -> constantSources(i, depth + 1, inits, producer, into));
            default -> {
            }
        }
    }

    /** The table the token ids index: the data of the Gather fed by the graph input input_ids. */
    private static String embeddingTable(OnnxFile f, Map<String, OnnxFile.Tensor> inits) {
        for (OnnxFile.Node n : f.nodes()) {
            if (n.opType().equals("Gather") && n.input(1).equals("input_ids") && inits.containsKey(n.input(0))) {
                return n.input(0);
            }
        }
        return null;
    }

    /** The weight of the matrix product that produces the graph output logits (through a dequantisation chain). */
    private static String lmHeadWeight(OnnxFile f, Map<String, OnnxFile.Tensor> inits, Map<String, OnnxFile.Node> producer) {
        String value = f.outputs().contains("logits") ? "logits" : f.outputs().isEmpty() ? null : f.outputs().getFirst();
        for (int hop = 0; value != null && hop < 8; hop++) {
            OnnxFile.Node p = producer.get(value);
            if (p == null) {
                return null;
            }
            switch (p.opType()) {
                case "MatMul", "Gemm", "MatMulInteger", "MatMulNBits" -> {
                    Set<String> sources = new HashSet<>();
                    constantSources(p.input(1), 0, inits, producer, sources);
                    if (p.opType().equals("MatMul") && !inits.containsKey(p.input(1))) {  // DequantizeLinear(W) -> MatMul
                        OnnxFile.Node dq = producer.get(p.input(1));
                        if (dq != null && dq.opType().equals("DequantizeLinear") && inits.containsKey(dq.input(0))) {
                            return dq.input(0);
                        }
                    }
                    return sources.size() == 1 ? sources.iterator().next() : null;
                }
                case "Cast", "Mul", "Add", "Reshape", "Identity" -> value = p.input(0);
                default -> {
                    return null;
                }
            }
        }
        return null;
    }

    /** Float tensors with the same values, as stored or one the transpose of the other (2-D). */
    private static boolean sameValues(OnnxFile.Tensor a, OnnxFile.Tensor b) {
        float[] x = a.floats();
        float[] y = b.floats();
        if (java.util.Arrays.equals(x, y)) {
            return true;
        }
        if (a.dims().length != 2 || b.dims().length != 2 || a.dims()[0] != b.dims()[1] || a.dims()[1] != b.dims()[0]) {
            return false;
        }
        int rows = (int) a.dims()[0];
        int cols = (int) a.dims()[1];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                if (Float.floatToRawIntBits(x[r * cols + c]) != Float.floatToRawIntBits(y[c * rows + r])) {
                    return false;
                }
            }
        }
        return true;
    }

    /** ONNX TensorProto.DataType facts. */
    static final class Dtypes {
        private Dtypes() {
        }

        static String name(int t) {
            return switch (t) {
                case 1 -> "float32";
                case 2 -> "uint8";
                case 3 -> "int8";
                case 4 -> "uint16";
                case 5 -> "int16";
                case 6 -> "int32";
                case 7 -> "int64";
                case 9 -> "bool";
                case 10 -> "float16";
                case 11 -> "float64";
                case 16 -> "bfloat16";
                case 17, 18, 19, 20 -> "float8";
                case 21 -> "uint4";
                case 22 -> "int4";
                case 23 -> "float4";
                default -> "dtype" + t;
            };
        }

        /** Bits per element. */
        static int bits(int t) {
            int bits = OnnxFile.bits(t);
            return bits == 0 ? 8 : bits;
        }

        /** Dtypes model weights are stored in (floats and 8/4-bit integers), as opposed to index types. */
        static boolean isWeight(int t) {
            return t == 1 || t == 2 || t == 3 || t == 10 || t == 11 || (t >= 16 && t <= 23);
        }

        static boolean isLowBitInteger(int t) {
            return t == 2 || t == 3 || t == 21 || t == 22;
        }

        /** Bytes of the tensor's data: raw_data's length when present, else elements x dtype width. */
        static long storedBytes(OnnxFile.Tensor t) {
            if (t.raw() != null) {
                return t.raw().remaining();
            }
            return (t.size() * bits(t.dataType()) + 7) / 8;
        }
    }
}
