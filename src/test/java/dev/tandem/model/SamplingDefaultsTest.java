package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A model's sampling defaults ({@link ModelConfig#samplingDefaults()}): vLLM's keys from generation_config.json, the
 * creators' choices from an ONNX Runtime GenAI builder's {@code search}, and a bad value fails naming file and key.
 */
class SamplingDefaultsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path CONFIG = Path.of("models/kjv-draft/config.json");
    private static final Path GENERATION = Path.of("/m/generation_config.json");
    private static final Path GENAI = Path.of("/m/genai_config.json");

    private static JsonNode json(String text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static SamplingDefaults fromGeneration(String generation) throws IOException {
        return ModelConfig.read(CONFIG, JSON.readTree(CONFIG.toFile()), GENERATION, json(generation)).samplingDefaults();
    }

    /** A realistic builder file: the genai-tiny fixture's genai_config.json, with {@code search} replaced. */
    private static SamplingDefaults fromGenAi(String search) throws IOException {
        ObjectNode genai = (ObjectNode) JSON.readTree(Path.of("src/test/resources/models/genai-tiny-int4/genai_config.json").toFile());
        genai.set("search", json(search));
        return ModelConfig.readGenAi(GENAI, genai).samplingDefaults();
    }

    @Test
    void generationConfigSetsVllmsSixKeys() throws IOException {
        SamplingDefaults d = fromGeneration("""
                {"bos_token_id": 1, "eos_token_id": 2, "do_sample": true, "temperature": 0.6, "top_p": 0.9, "top_k": 20,
                 "min_p": 0.05, "repetition_penalty": 1.1, "max_new_tokens": 5, "num_beams": 1}""");
        Map<String, Number> expected = new LinkedHashMap<>();
        expected.put("temperature", 0.6);
        expected.put("top_p", 0.9);
        expected.put("top_k", 20);
        expected.put("min_p", 0.05);
        expected.put("repetition_penalty", 1.1);
        expected.put("max_tokens", 5);  // the file's max_new_tokens, named as a request names it
        assertEquals(expected, d.asMap());
        assertEquals("temperature=0.6, top_p=0.9, top_k=20, min_p=0.05, repetition_penalty=1.1, max_tokens=5", d.describe());
        assertEquals("generation_config.json", d.source());
    }

    /** Greedy is temperature 0 (an integer in JSON); do_sample does not count, null is "not set", -1 is top_k off. */
    @Test
    void doSampleIsIgnoredNullIsAbsentAndMinusOneIsOff() throws IOException {
        SamplingDefaults d = fromGeneration("{\"do_sample\": false, \"temperature\": 0, \"top_p\": null, \"top_k\": -1}");
        assertEquals(Map.of("temperature", 0.0, "top_k", 0), d.asMap());
        assertTrue(fromGeneration("{\"do_sample\": false}").isEmpty());
    }

    /** The bundled models set no sampling key: their requests keep the OpenAI defaults. */
    @Test
    void theBundledModelsSetNone() {
        for (String m : List.of("models/kjv-target", "models/kjv-draft")) {
            SamplingDefaults d = ModelDirectory.open(Path.of(m)).config().samplingDefaults();
            assertTrue(d.isEmpty(), m + ": " + d);
        }
        assertTrue(ModelConfig.read(CONFIG, json("{\"num_hidden_layers\": 1, \"max_position_embeddings\": 8}"), GENERATION,
                MissingNode.getInstance()).samplingDefaults().isEmpty(), "no generation_config.json");
    }

    @Test
    void badValuesFailNamingFileAndKey() {
        Map<String, String> bad = new LinkedHashMap<>();
        bad.put("temperature", "-0.1");
        bad.put("top_p", "0");
        bad.put("min_p", "1.5");
        bad.put("top_k", "-2");
        bad.put("repetition_penalty", "0");
        bad.put("max_new_tokens", "0");
        List<String> wrongTypes = List.of("\"0.6\"", "true", "[1]", "{}");
        for (Map.Entry<String, String> e : bad.entrySet()) {
            assertNamed(e.getKey(), "{\"" + e.getKey() + "\": " + e.getValue() + "}");
            for (String type : wrongTypes) {
                assertNamed(e.getKey(), "{\"" + e.getKey() + "\": " + type + "}");
            }
        }
        assertNamed("top_p", "{\"top_p\": 1.01}");
        assertNamed("repetition_penalty", "{\"repetition_penalty\": -1.2}");
        assertNamed("top_k", "{\"top_k\": 5.5}");
        assertNamed("max_new_tokens", "{\"max_new_tokens\": 2.5}");
        assertNamed("max_new_tokens", "{\"max_new_tokens\": 4294967296}");
    }

    private static void assertNamed(String key, String generation) {
        var e = assertThrows(IllegalArgumentException.class, () -> fromGeneration(generation), generation);
        assertTrue(e.getMessage().contains(GENERATION.toString()) && e.getMessage().contains(": " + key + " "), e.getMessage());
    }

    /**
     * What the builder writes for a model whose generation_config.json sets nothing (every key, filled with its own
     * values: top_k 50, or 1 as earlier builders and the genai-tiny fixtures have it) is no default at all; max_length
     * is the context, not max_tokens.
     */
    @Test
    void theBuildersFillInsAreNotDefaults() throws IOException {
        for (int topK : new int[] {50, 1}) {
            SamplingDefaults d = fromGenAi("""
                    {"diversity_penalty": 0.0, "do_sample": false, "early_stopping": true, "length_penalty": 1.0,
                     "max_length": 256, "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
                     "num_return_sequences": 1, "past_present_share_buffer": true, "repetition_penalty": 1.0,
                     "temperature": 1.0, "top_k": %d, "top_p": 1.0}""".formatted(topK));
            assertTrue(d.isEmpty(), d.toString());
        }
        assertTrue(ModelDirectory.open(Path.of("src/test/resources/models/genai-tiny-int4")).config().samplingDefaults().isEmpty());
    }

    /**
     * A model with recommended settings (Llama 3.1's generation_config.json: do_sample, temperature 0.6, top_p 0.9) as
     * the builder carries them into search: those two apply, the builder's top_k 50 does not; a top_k of its own does.
     */
    @Test
    void theCreatorsChoicesInSearchApply() throws IOException {
        SamplingDefaults d = fromGenAi("""
                {"diversity_penalty": 0.0, "do_sample": true, "early_stopping": true, "length_penalty": 1.0,
                 "max_length": 131072, "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
                 "num_return_sequences": 1, "past_present_share_buffer": true, "repetition_penalty": 1.0,
                 "temperature": 0.6, "top_k": 50, "top_p": 0.9}""");
        assertEquals(Map.of("temperature", 0.6, "top_p", 0.9), d.asMap());
        assertEquals("genai_config.json", d.source());
        assertEquals(Map.of("top_k", 20, "repetition_penalty", 1.05),
                fromGenAi("{\"top_k\": 20, \"repetition_penalty\": 1.05, \"temperature\": 1.0}").asMap());
        assertEquals(Map.of("temperature", 0.0), fromGenAi("{\"temperature\": 0}").asMap());
    }

    @Test
    void badValuesInSearchFailNamingFileAndKey() {
        for (String search : List.of("{\"temperature\": -1}", "{\"top_p\": 2}", "{\"top_k\": -5}", "{\"repetition_penalty\": 0}",
                "{\"temperature\": \"hot\"}")) {
            String key = search.substring(2, search.indexOf('"', 2));
            var e = assertThrows(IllegalArgumentException.class, () -> fromGenAi(search), search);
            assertTrue(e.getMessage().contains(GENAI.toString()) && e.getMessage().contains("search." + key), e.getMessage());
        }
        var e = assertThrows(IllegalArgumentException.class, () -> fromGenAi("[]"));
        assertTrue(e.getMessage().contains("search must be an object"), e.getMessage());
    }

    @Test
    void aBadValueFailsOpeningTheModelDirectory(@org.junit.jupiter.api.io.TempDir Path tmp) throws IOException {
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx")) {
            Files.copy(Path.of("models/kjv-draft").resolve(f), tmp.resolve(f));
        }
        Files.writeString(tmp.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": 2, \"temperature\": -3}");
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(tmp));
        assertTrue(e.getMessage().contains(tmp.resolve("generation_config.json").toString())
                && e.getMessage().contains("temperature must be >= 0"), e.getMessage());
    }
}
