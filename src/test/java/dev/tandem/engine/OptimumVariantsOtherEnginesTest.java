package dev.tandem.engine;

import static dev.tandem.testing.TestArrays.argmax;
import static dev.tandem.testing.TestArrays.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.openvino.OpenVinoRuntime;
import dev.tandem.model.ModelDirectory;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Optimum variant fixtures (src/test/resources/models/optimum-tiny-*, see OrtOptimumVariantsTest, which runs the
 * whole contract on ONNX Runtime) on the other engines: what they serve reproduces the torch greedy ids; what they
 * cannot read fails at load naming the variant and the engine that serves it (never later, on a symptom).
 * OpenVINO is skipped where its runtime is missing.
 */
class OptimumVariantsOtherEnginesTest {
    static final Path MODELS = Path.of("src/test/resources/models");

    static Stream<Arguments> served() {
        return Stream.of(Arguments.of("reference", "optimum-tiny-nopos"), Arguments.of("reference-offload", "optimum-tiny-nopos"),
                Arguments.of("openvino", "optimum-tiny-nopos"), Arguments.of("openvino", "optimum-tiny-merged"),
                Arguments.of("openvino", "optimum-tiny-fp16"));
    }

    static Stream<Arguments> refused() {
        return Stream.of(Arguments.of("reference", "optimum-tiny-merged", "merged decoder"),
                Arguments.of("reference-offload", "optimum-tiny-merged", "merged decoder"),
                Arguments.of("reference", "optimum-tiny-fp16", "float16 weights"),
                Arguments.of("reference-offload", "optimum-tiny-fp16", "float16 weights"));
    }

    static CausalLm open(String engine, ModelDirectory dir) {
        Function<ModelDirectory, CausalLm> opener = EngineContractTest.ENGINES.get(engine);
        try {
            return opener.apply(dir);
        } catch (OpenVinoRuntime.NotAvailableException missing) {
            Assumptions.abort(engine + " runtime not available here: " + missing.getMessage());
            throw missing;
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("served")
    void greedyMatchesTheTorchReference(String engine, String fixture) throws IOException {
        ModelDirectory dir = ModelDirectory.open(MODELS.resolve(fixture));
        JsonNode ref = new ObjectMapper().readTree(dir.dir().resolve("reference.json").toFile());
        Set<Integer> eos = new HashSet<>(dir.config().eosTokenIds());
        try (CausalLm lm = open(engine, dir)) {
            for (JsonNode p : ref.get("prompts")) {
                int[] expected = ints(p.get("greedy_ids"));
                int[] got = new int[expected.length];
                try (KvCache cache = lm.newCache()) {
                    Logits l = lm.forward(cache, ints(p.get("prompt_ids")));
                    for (int i = 0; i < got.length; i++) {
                        got[i] = argmax(l.row(l.rows() - 1));
                        if (i + 1 < got.length) {
                            assertFalse(eos.contains(got[i]), "an EOS before the reference's end");
                            l = lm.forward(cache, got[i]);
                        }
                    }
                }
                assertArrayEquals(expected, got, engine + " " + fixture + " '" + p.get("prompt").asText() + "' got "
                        + Arrays.toString(got));
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("refused")
    void refusesAtLoadNamingTheVariantAndTheEngineThatServesIt(String engine, String fixture, String variant) {
        ModelDirectory dir = ModelDirectory.open(MODELS.resolve(fixture));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(engine, dir).close());
        assertTrue(e.getMessage().contains(variant) && e.getMessage().contains("engine=onnxruntime"), e.getMessage());
        assertFalse(e.getMessage().matches("(?s).*\\b(java|dev\\.tandem|Exception)\\b.*"), e.getMessage());
    }
}
