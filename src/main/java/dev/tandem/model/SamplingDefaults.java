package dev.tandem.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The sampling defaults a model's creators recommend, for the fields of a request that leaves them out (what vLLM
 * applies with {@code --generation-config auto}, its default). Read from {@code generation_config.json}
 * ({@link #fromGenerationConfig}) or, in an ONNX Runtime GenAI directory, from {@code genai_config.json}'s
 * {@code search} ({@link #fromGenAiSearch}). A value that is out of range fails start-up naming the file and key, like
 * every other config error: served anyway, it would turn every request that leaves the field out into an error
 * about a field the client never sent.
 *
 * @param temperature       null when the model does not set it (so for every field)
 * @param topP              in (0, 1]
 * @param topK              0 is off (a file's -1, vLLM's and Hugging Face's other "off", is stored as 0)
 * @param minP              in [0, 1]
 * @param repetitionPenalty in [{@link #MIN_REPETITION_PENALTY}, {@link #MAX_REPETITION_PENALTY}]
 * @param maxTokens         the file's {@code max_new_tokens}: tokens to generate, the prompt not counted
 * @param source            the file they come from, for the log ("generation_config.json")
 */
public record SamplingDefaults(Double temperature, Double topP, Integer topK, Double minP, Double repetitionPenalty,
                               Integer maxTokens, String source) {

    /** No defaults: a request's absent fields get the OpenAI API's. */
    public static final SamplingDefaults NONE = new SamplingDefaults(null, null, null, null, null, null, "none");

    /**
     * The repetition penalty divides (or multiplies) the float logits of seen tokens. vLLM only asks for a finite
     * p &gt; 0, but a tiny p is 0 or denormal as a float and the division overflows to infinity. Outside [0.01, 100] a
     * seen token is as good as banned (or forced) already, so the bounds cost nothing useful (1 is off, 1.1 to 1.3 is
     * the usual range). The same bounds hold for a request's own value, so a model default is always one a request
     * could have sent.
     */
    public static final double MIN_REPETITION_PENALTY = 0.01;
    public static final double MAX_REPETITION_PENALTY = 100;

    /**
     * The keys vLLM reads from {@code generation_config.json} (its {@code get_diff_sampling_param}); {@code do_sample}
     * is not among them, as in vLLM: a request is greedy only when its temperature is 0. Every key the file has is the
     * creators' choice: Hugging Face's {@code save_pretrained} writes only the values that differ from its defaults.
     */
    static SamplingDefaults fromGenerationConfig(Path file, JsonNode generation) {
        return new SamplingDefaults(temperature(file, generation, ""), topP(file, generation, ""),
                topK(file, generation, ""), minP(file, generation, ""), repetitionPenalty(file, generation, ""),
                maxNewTokens(file, generation), file.getFileName().toString());
    }

    /**
     * What ONNX Runtime GenAI's builder ({@code onnxruntime_genai.models.builder}) writes into {@code search} when the
     * model's generation_config.json does not set a key: it writes every key, these values filling the gaps, and
     * earlier builders wrote top_k 1 for every model. They are not the creators' choice, so they are not applied
     * (top_k 50 or 1 would otherwise cut every request's sampling to 50 or 1 tokens). temperature, top_p and
     * repetition_penalty 1 change nothing; they are left out so the log and /v1/models show only real overrides.
     */
    private static final Map<String, Set<Number>> GENAI_FILL_INS = Map.of(
            "temperature", Set.of(1.0), "top_p", Set.of(1.0), "repetition_penalty", Set.of(1.0), "top_k", Set.of(50, 1));

    /**
     * From {@code genai_config.json}'s {@code search}: temperature, top_p, top_k and repetition_penalty, each unless it
     * is the builder's fill-in ({@link #GENAI_FILL_INS}). Its {@code max_length} is not a default max_tokens: it counts
     * the prompt too (the builder writes the context length), and {@code do_sample} is ignored as with
     * generation_config.json.
     */
    static SamplingDefaults fromGenAiSearch(Path file, JsonNode genai) {
        JsonNode search = genai.path("search");
        if (search.isMissingNode() || search.isNull()) {
            return new SamplingDefaults(null, null, null, null, null, null, file.getFileName().toString());
        }
        if (!search.isObject()) {
            throw new IllegalArgumentException(file + ": search must be an object");
        }
        return new SamplingDefaults(unlessFillIn("temperature", temperature(file, search, "search.")),
                unlessFillIn("top_p", topP(file, search, "search.")),
                unlessFillIn("top_k", topK(file, search, "search.")), null,
                unlessFillIn("repetition_penalty", repetitionPenalty(file, search, "search.")), null,
                file.getFileName().toString());
    }

    private static <T extends Number> T unlessFillIn(String key, T value) {
        if (value == null) {
            return null;
        }
        boolean fillIn = GENAI_FILL_INS.get(key).stream().anyMatch(f -> f.doubleValue() == value.doubleValue());
        return fillIn ? null : value;
    }

    /** True when the model sets none of the fields. */
    public boolean isEmpty() {
        return asMap().isEmpty();
    }

    /**
     * The fields the model sets, named as a request names them (max_new_tokens as max_tokens), in a fixed order: for
     * the start-up log and {@code GET /v1/models/{id}}.
     */
    public Map<String, Number> asMap() {
        Map<String, Number> m = new LinkedHashMap<>();
        put(m, "temperature", temperature);
        put(m, "top_p", topP);
        put(m, "top_k", topK);
        put(m, "min_p", minP);
        put(m, "repetition_penalty", repetitionPenalty);
        put(m, "max_tokens", maxTokens);
        return m;
    }

    /** "temperature=0.6, top_p=0.9", or "" when empty. */
    public String describe() {
        StringBuilder s = new StringBuilder();
        asMap().forEach((k, v) -> s.append(s.isEmpty() ? "" : ", ").append(k).append('=').append(v));
        return s.toString();
    }

    private static void put(Map<String, Number> m, String key, Number value) {
        if (value != null) {
            m.put(key, value);
        }
    }

    private static Double temperature(Path file, JsonNode n, String prefix) {
        Double t = number(file, n, prefix, "temperature");
        if (t != null && t < 0) {
            throw invalid(file, prefix, "temperature", "must be >= 0 (0 is greedy)", n);
        }
        return t;
    }

    private static Double topP(Path file, JsonNode n, String prefix) {
        Double p = number(file, n, prefix, "top_p");
        if (p != null && !(p > 0 && p <= 1)) {
            throw invalid(file, prefix, "top_p", "must be in (0, 1]", n);
        }
        return p;
    }

    private static Integer topK(Path file, JsonNode n, String prefix) {
        Integer k = integer(file, n, prefix, "top_k");
        if (k != null && k < -1) {
            throw invalid(file, prefix, "top_k", "must be at least 1, or 0 or -1 (off)", n);
        }
        return k == null ? null : Math.max(k, 0);
    }

    private static Double minP(Path file, JsonNode n, String prefix) {
        Double p = number(file, n, prefix, "min_p");
        if (p != null && !(p >= 0 && p <= 1)) {
            throw invalid(file, prefix, "min_p", "must be in [0, 1]", n);
        }
        return p;
    }

    private static Double repetitionPenalty(Path file, JsonNode n, String prefix) {
        Double p = number(file, n, prefix, "repetition_penalty");
        if (p != null && !(p >= MIN_REPETITION_PENALTY && p <= MAX_REPETITION_PENALTY)) {
            throw invalid(file, prefix, "repetition_penalty", "must be in [" + MIN_REPETITION_PENALTY + ", "
                    + MAX_REPETITION_PENALTY + "] (1 is off)", n);
        }
        return p;
    }

    private static Integer maxNewTokens(Path file, JsonNode n) {
        Integer max = integer(file, n, "", "max_new_tokens");
        if (max != null && max < 1) {
            throw invalid(file, "", "max_new_tokens", "must be at least 1", n);
        }
        return max;
    }

    /** A finite JSON number, or null when the key is absent or null (Hugging Face writes null for "not set"). */
    private static Double number(Path file, JsonNode n, String prefix, String key) {
        JsonNode v = n.path(key);
        if (v.isMissingNode() || v.isNull()) {
            return null;
        }
        if (!v.isNumber() || !Double.isFinite(v.doubleValue())) {
            throw invalid(file, prefix, key, "must be a number", n);
        }
        return v.doubleValue();
    }

    private static Integer integer(Path file, JsonNode n, String prefix, String key) {
        JsonNode v = n.path(key);
        if (v.isMissingNode() || v.isNull()) {
            return null;
        }
        if (!v.isIntegralNumber()) {
            throw invalid(file, prefix, key, "must be an integer", n);
        }
        if (!v.canConvertToInt()) {
            throw invalid(file, prefix, key, "must be at most " + Integer.MAX_VALUE, n);
        }
        return v.intValue();
    }

    private static IllegalArgumentException invalid(Path file, String prefix, String key, String rule, JsonNode n) {
        return new IllegalArgumentException(file + ": " + prefix + key + " " + rule + ", is " + n.path(key));
    }
}
