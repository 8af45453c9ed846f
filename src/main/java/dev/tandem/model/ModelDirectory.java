package dev.tandem.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.tandem.engine.Llama2cHeader;
import dev.tandem.engine.ModelFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A model directory in the Hugging Face Optimum export layout:
 * {@code model.onnx} (or {@code decoder_model_merged.onnx}, or optimum-intel's OpenVINO IR
 * {@code openvino_model.xml} + {@code .bin}, which only the OpenVINO engine reads), {@code config.json},
 * {@code generation_config.json}, {@code tokenizer.json}, {@code tokenizer_config.json}, and
 * optionally a {@code SHA256SUMS} manifest that is verified before anything is loaded. A directory may also
 * carry graphs only some engines read (ONNX Runtime's {@code model_optimized.onnx}); the engine says which it
 * prefers ({@link #open(Path, List, Optional)}). An ONNX Runtime GenAI
 * directory has {@code genai_config.json} instead of the two configs; it names the graph file
 * ({@link ModelConfig#readGenAi}). A llama2.c directory has a checkpoint ({@code .bin}, run.c's legacy format) and its
 * {@code tokenizer.bin} and nothing else: the checkpoint's header is its config ({@link ModelConfig#llama2c}), and
 * only the reference engine runs it.
 *
 * <p>Every problem is reported as an {@link IllegalArgumentException} whose message names the file
 * and what is wrong with it, so a failed start-up says exactly what to fix.
 */
public record ModelDirectory(Path dir, Path graph, ModelConfig config, JsonNode tokenizerConfig, Path tokenizerFile) {

    public static final List<String> GRAPH_NAMES = List.of("model.onnx", "decoder_model_merged.onnx", "openvino_model.xml");
    public static final String MANIFEST = "SHA256SUMS";
    /** ONNX Runtime GenAI's config: when present it describes the graph (and config.json, if any, is not read). */
    public static final String GENAI_CONFIG = "genai_config.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The directory with its portable graph: the first of {@link #GRAPH_NAMES} it has (or genai_config.json's). */
    public static ModelDirectory open(Path dir) {
        return open(dir, List.of(), Optional.empty());
    }

    /**
     * The directory with the graph an engine runs: {@code graphFile} when given (a file name in the directory,
     * {@code tandem.target.graph}), else the first of {@code preferred} the directory has (the engine's own
     * graphs, e.g. ONNX Runtime's {@code model_optimized.onnx}), else its portable graph.
     *
     * @throws IllegalArgumentException when {@code graphFile} is not a plain file name of a file in the directory
     */
    public static ModelDirectory open(Path dir, List<String> preferred, Optional<String> graphFile) {
        Path d = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(d)) {
            throw new IllegalArgumentException(d + ": model directory does not exist");
        }
        Set<Path> verified = verifyManifest(d);
        Path genaiJson = d.resolve(GENAI_CONFIG);
        JsonNode genai = Files.isRegularFile(genaiJson) ? readJson(genaiJson) : null;
        Path graph;
        if (graphFile.isPresent()) {
            graph = configuredGraph(d, graphFile.get());
        } else {
            Optional<Path> portable = genai != null ? Optional.of(required(d, ModelConfig.genAiGraphName(genaiJson, genai)))
                    : GRAPH_NAMES.stream().map(d::resolve).filter(Files::isRegularFile).findFirst();
            graph = portable.isEmpty() ? llama2cCheckpoint(d)
                    : preferred.stream().map(d::resolve).filter(Files::isRegularFile).findFirst().orElse(portable.get());
        }
        if (isLlama2c(graph)) {
            Llama2cHeader header = Llama2cHeader.read(graph);
            Path tokenizer = llama2cTokenizer(d, graph, header.vocabSize());
            if (verified != null) {
                requireCovered(d, graph, List.of(), verified);
            }
            return new ModelDirectory(d, graph, ModelConfig.llama2c(graph, header), MissingNode.getInstance(), tokenizer);
        }
        List<Path> dataFiles = graph.getFileName().toString().endsWith(".onnx") ? externalData(graph) : List.of();
        if (verified != null) {
            requireCovered(d, graph, dataFiles, verified);
        }
        if (graph.getFileName().toString().endsWith(".xml")) {
            required(d, "openvino_model.bin");
        }
        ModelConfig config;
        if (genai != null) {
            config = ModelConfig.readGenAi(genaiJson, genai);
        } else {
            Path configJson = required(d, "config.json");
            Path genPath = d.resolve("generation_config.json");
            JsonNode generation = Files.isRegularFile(genPath) ? readJson(genPath) : MissingNode.getInstance();
            config = ModelConfig.read(configJson, readJson(configJson), genPath, generation);
        }
        Path tokenizer = required(d, "tokenizer.json");
        Path tokCfgPath = d.resolve("tokenizer_config.json");
        JsonNode tokenizerConfig = Files.isRegularFile(tokCfgPath) ? readJson(tokCfgPath) : MissingNode.getInstance();
        return new ModelDirectory(d, graph, config, tokenizerConfig, tokenizer);
    }

    /**
     * What an engine needs to open this model: the graph, its config file (config.json, or genai_config.json in an
     * ONNX Runtime GenAI directory) and the sizes it declares.
     */
    public ModelFiles files() {
        Path genai = dir.resolve(GENAI_CONFIG);
        Path configFile = isLlama2c() ? graph : Files.isRegularFile(genai) ? genai : dir.resolve("config.json");
        return new ModelFiles(graph, configFile, config.shape());
    }

    /** Whether the model is a llama2.c checkpoint (its {@link #graph()}), with llama2.c's tokenizer. */
    public boolean isLlama2c() {
        return isLlama2c(graph);
    }

    private static boolean isLlama2c(Path graph) {
        return graph.getFileName().toString().endsWith(".bin");
    }

    /**
     * How the graph's weights are stored, from the operators it uses: "int4 (MatMulNBits)" or "int8 (MatMulNBits)",
     * "int8 (MatMulInteger)", "int8 (QDQ)", or the dtype config.json states ("float32", "float16") or, without one, the
     * initializers' (genai_config.json states none); for an
     * OpenVINO IR, from the element types of its constants ("int4 (OpenVINO IR)", "int8 (OpenVINO IR)").
     */
    public String quantization() {
        if (isLlama2c()) {
            return config.torchDtype();  // the legacy format is float32 (its int8 successor is refused)
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(graph);
        } catch (IOException e) {
            throw new IllegalArgumentException(graph + ": cannot read: " + e.getMessage(), e);
        }
        if (graph.getFileName().toString().endsWith(".xml")) {  // IR: weight compression shows in the constants' types
            if (contains(bytes, "element_type=\"u4\"") || contains(bytes, "element_type=\"i4\"")) {
                return "int4 (OpenVINO IR)";
            }
            if (contains(bytes, "element_type=\"u8\"") || contains(bytes, "element_type=\"i8\"")) {
                return "int8 (OpenVINO IR)";
            }
            return contains(bytes, "element_type=\"f16\"") ? "float16" : "float32";
        }
        if (contains(bytes, "MatMulNBits")) {  // 4 bits unless the nodes say otherwise (ONNX Runtime GenAI writes 4 or 8)
            return "int" + matMulNBits() + " (MatMulNBits)";
        }
        if (contains(bytes, "MatMulInteger")) {
            return "int8 (MatMulInteger)";
        }
        if (contains(bytes, "DequantizeLinear")) {
            return "int8 (QDQ)";
        }
        return "unknown".equals(config.torchDtype()) ? floatWeights() : config.torchDtype();
    }

    /**
     * "float16" when most of the graph's initializer bytes are float16, else "float32": for a directory whose config
     * states no dtype (genai_config.json has none; the model builder's {@code -p fp16} graphs are float16).
     */
    private String floatWeights() {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            long half = 0;
            long single = 0;
            for (dev.tandem.onnx.OnnxFile.Tensor t : dev.tandem.onnx.OnnxFile.map(graph, arena).initializers().values()) {
                if (t.dataType() == 10) {  // TensorProto.FLOAT16
                    half += 2 * t.size();
                } else if (t.dataType() == 1) {  // TensorProto.FLOAT
                    single += 4 * t.size();
                }
            }
            return half > single ? "float16" : "float32";
        }
    }

    /** The {@code bits} of the graph's MatMulNBits nodes (4 when absent, the operator's default), e.g. "8" or "4/8". */
    private String matMulNBits() {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            java.util.SortedSet<Long> bits = new java.util.TreeSet<>();
            for (dev.tandem.onnx.OnnxFile.Node n : dev.tandem.onnx.OnnxFile.map(graph, arena).nodes()) {
                if (n.opType().equals("MatMulNBits")) {
                    dev.tandem.onnx.OnnxFile.Attribute b = n.attributes().get("bits");
                    bits.add(b == null ? 4 : b.i());
                }
            }
            return bits.isEmpty() ? "4" : String.join("/", bits.stream().map(String::valueOf).toList());
        }
    }

    private static boolean contains(byte[] haystack, String needle) {
        byte[] n = needle.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        outer:
        for (int i = 0; i + n.length <= haystack.length; i++) {
            for (int j = 0; j < n.length; j++) {
                if (haystack[i + j] != n[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }

    /** The directory's name, the default id the model is served under. */
    public String name() {
        return dir.getFileName().toString();
    }

    /** Larger files are not read to see whether they are a llama2.c tokenizer (Llama 2's 32000 pieces take 424 KiB). */
    private static final long MAX_TOKENIZER_BYTES = 64L << 20;

    /**
     * The llama2.c checkpoint of a directory without an ONNX graph, an IR or genai_config.json: its one {@code .bin}
     * file whose size is exactly what its header says ({@link Llama2cHeader}).
     *
     * @throws IllegalArgumentException when there is none (naming what a model directory holds, and any llama2.c file
     *                                  of a format not read) or several (name one with the graph setting)
     */
    private static Path llama2cCheckpoint(Path dir) {
        List<Path> checkpoints = new java.util.ArrayList<>();
        List<String> unreadable = new java.util.ArrayList<>();
        for (Path bin : binFiles(dir)) {
            try {
                Llama2cHeader.read(bin);
                checkpoints.add(bin);
            } catch (Llama2cHeader.UnreadableCheckpoint e) {
                unreadable.add(e.getMessage());
            } catch (IllegalArgumentException e) {
                // some other .bin: not a checkpoint
            }
        }
        if (checkpoints.size() == 1) {
            return checkpoints.getFirst();
        }
        if (checkpoints.isEmpty()) {
            throw new IllegalArgumentException(dir + ": no model graph: expected one of " + GRAPH_NAMES + ", an ONNX Runtime"
                    + " GenAI " + GENAI_CONFIG + ", or a llama2.c checkpoint (.bin) with its tokenizer (.bin)"
                    + (unreadable.isEmpty() ? "" : "; " + String.join("; ", unreadable)));
        }
        throw new IllegalArgumentException(dir + ": holds " + checkpoints.size() + " llama2.c checkpoints ("
                + String.join(", ", checkpoints.stream().map(p -> p.getFileName().toString()).toList())
                + "): name the one to serve with the model's graph setting (tandem.target.graph, tandem.draft.graph)");
    }

    /**
     * The llama2.c tokenizer beside {@code checkpoint}: the {@code .bin} file that is a tokenizer of exactly its
     * vocabulary's size ({@code tokenizer.bin} when several are).
     */
    private static Path llama2cTokenizer(Path dir, Path checkpoint, int vocabSize) {
        List<Path> found = new java.util.ArrayList<>();
        for (Path bin : binFiles(dir)) {
            try {
                if (!bin.equals(checkpoint) && Files.size(bin) <= MAX_TOKENIZER_BYTES
                        && Llama2cTokenizer.isTokenizer(Files.readAllBytes(bin), vocabSize)) {
                    found.add(bin);
                }
            } catch (IOException e) {
                throw new IllegalArgumentException(bin + ": cannot read: " + e.getMessage(), e);
            }
        }
        Path named = dir.resolve("tokenizer.bin");
        if (found.size() == 1 || found.contains(named)) {
            return found.size() == 1 ? found.getFirst() : named;
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException(checkpoint + ": no llama2.c tokenizer of its " + vocabSize + " tokens beside it"
                    + " in " + dir + ": add the tokenizer.bin the model was trained with (llama2.c ships Llama 2's"
                    + " 32000-token one; tokenizer.py --tokenizer-model=... writes one for another vocabulary)");
        }
        throw new IllegalArgumentException(dir + ": holds " + found.size() + " llama2.c tokenizers of " + vocabSize
                + " tokens (" + String.join(", ", found.stream().map(p -> p.getFileName().toString()).toList())
                + "): keep the one the model was trained with, or name it tokenizer.bin");
    }

    private static List<Path> binFiles(Path dir) {
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".bin") && Files.isRegularFile(p)).sorted().toList();
        } catch (IOException e) {
            throw new IllegalArgumentException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    /** A configured graph: a plain file name (no directory part: nothing outside the model is read) that exists. */
    private static Path configuredGraph(Path dir, String name) {
        if (name.isBlank() || name.equals(".") || name.equals("..") || name.contains("/") || name.contains("\\")) {
            throw new IllegalArgumentException("graph '" + name + "' must be the name of a file in " + dir
                    + " (no directory part)");
        }
        Path p = dir.resolve(name);
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException("graph '" + name + "': " + p + " does not exist");
        }
        return p;
    }

    private static Path required(Path dir, String name) {
        Path p = dir.resolve(name);
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException(p + ": required file is missing");
        }
        return p;
    }

    private static JsonNode readJson(Path p) {
        try {
            JsonNode n = JSON.readTree(p.toFile());
            if (n == null || !n.isObject()) {
                throw new IllegalArgumentException(p + ": not a JSON object");
            }
            return n;
        } catch (IOException e) {
            throw new IllegalArgumentException(p + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    /**
     * Checks every line of {@code SHA256SUMS} ("hex  name", as sha256sum writes it), if present.
     *
     * @return the files it verified (absolute, normalised), or null when the directory has no manifest
     */
    static Set<Path> verifyManifest(Path dir) {
        Path manifest = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(manifest)) {
            return null;
        }
        Set<Path> verified = new java.util.HashSet<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(manifest);
        } catch (IOException e) {
            throw new IllegalArgumentException(manifest + ": cannot read: " + e.getMessage(), e);
        }
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            String[] parts = line.trim().split("\\s+\\*?", 2);
            if (parts.length != 2 || parts[0].length() != 64) {
                throw new IllegalArgumentException(manifest + ": malformed line '" + line + "'");
            }
            Path file = dir.resolve(parts[1]).normalize();
            if (!file.startsWith(dir) || !Files.isRegularFile(file)) {
                throw new IllegalArgumentException(file + ": listed in " + MANIFEST + " but missing");
            }
            String actual = sha256(file);
            if (!actual.equalsIgnoreCase(parts[0])) {
                throw new IllegalArgumentException(file + ": checksum mismatch (corrupted?): " + MANIFEST + " says "
                        + parts[0] + ", file has " + actual);
            }
            verified.add(file);
        }
        return verified;
    }

    /**
     * The external data files an ONNX graph's tensors are stored in (model.onnx_data, ...), checked before any
     * engine opens the graph: a location outside the model's directory, a missing or truncated data file fails
     * start-up here with a message naming the tensor and the file, whichever engine serves the model. Other
     * problems of the graph are left to the engine that loads it (it reports them in its own terms).
     */
    static List<Path> externalData(Path graph) {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            return dev.tandem.onnx.OnnxFile.map(graph, arena).dataFiles();
        } catch (IllegalArgumentException e) {
            if (e.getCause() instanceof dev.tandem.onnx.OnnxFile.ExternalDataException) {
                throw e;
            }
            return List.of();
        }
    }

    /**
     * A manifest vouches for the model only if it lists what is loaded: the graph file, and for an ONNX graph
     * whose weights are kept outside it (external data, e.g. {@code model.onnx_data}) every data file its tensors
     * name; an OpenVINO IR's {@code openvino_model.bin} likewise. Otherwise the weights would be loaded unchecked
     * beside a manifest that seems to cover them.
     */
    static void requireCovered(Path dir, Path graph, List<Path> dataFiles, Set<Path> verified) {
        List<Path> loaded = new java.util.ArrayList<>(List.of(graph));
        if (graph.getFileName().toString().endsWith(".xml")) {
            loaded.add(dir.resolve("openvino_model.bin"));
        }
        loaded.addAll(dataFiles);
        for (Path p : loaded) {
            if (!verified.contains(p.toAbsolutePath().normalize())) {
                throw new IllegalArgumentException(dir.resolve(MANIFEST) + ": does not list " + dir.relativize(p)
                        + ", which the model loads: add its sha256 (sha256sum " + dir.relativize(p) + ")");
            }
        }
    }

    static String sha256(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
