package dev.tandem.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.DecodingMode;
import dev.tandem.serving.AssistFields;
import dev.tandem.serving.DecodingPolicy;
import dev.tandem.serving.Experiment;
import dev.tandem.serving.ServedModel;
import dev.tandem.serving.TandemConfig;
import dev.tandem.testing.ShapeOnlyLm;
import java.lang.reflect.Proxy;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * Assisted decoding on a target that cannot roll its KV cache back (a stateful OpenVINO model),
 * decided where every generation route decides it (DecodingPolicy, asked through GenerationRoutes.decide by
 * /v1/completions, /v1/chat/completions and the TGI routes; ApiException 400 becomes TGI's 422 in ErrorMappers):
 * an explicit {@code assisted: true} is refused, everything else is decoded plainly, whatever the
 * server default and the experiment say. Plain unit tests: no Quarkus, no OpenVINO.
 */
class AssistedUnavailableApiTest {
    static final ServedModel STATEFUL = ShapeOnlyLm.served("kjv-stateful", "openvino 2024.2.0-stub (CPU)", false);
    static final ServedModel STATELESS = ShapeOnlyLm.served("kjv", "onnxruntime", true);

    record Fields(Boolean assisted, String assistant, Integer numAssistantTokens, String assistantSchedule,
                  Double assistantConfidenceThreshold, Integer promptLookupNgramSize) implements AssistFields {
        static Fields assisted(Boolean assisted, String assistant) {
            return new Fields(assisted, assistant, null, null, null, null);
        }
    }

    static TandemConfig.Assisted defaults(boolean enabledByDefault) {
        return new TandemConfig.Assisted() {
            public boolean enabledByDefault() { return enabledByDefault; }
            public Optional<String> assistant() { return Optional.empty(); }
            public int numAssistantTokens() { return 5; }
            public String schedule() { return "constant"; }
            public double confidenceThreshold() { return 0; }
            public int promptLookupNgramSize() { return 3; }
            public String policy() { return "auto"; }
        };
    }

    /** An experiment that, when on, would put every request in the assisted arm. */
    static Experiment experiment(boolean enabled) {
        TandemConfig.Experiment e = new TandemConfig.Experiment() {
            public boolean enabled() { return enabled; }
            public double assistedShare() { return 1.0; }
            public int samples() { return 100; }
        };
        TandemConfig config = (TandemConfig) Proxy.newProxyInstance(TandemConfig.class.getClassLoader(),
                new Class<?>[] {TandemConfig.class}, (proxy, method, args) -> {
                    if (method.getName().equals("experiment")) {
                        return e;
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
        return new Experiment(config);
    }

    /** Decides as the routes do: the policy, its refusals turned into the API's 400. */
    static DecodingPolicy.Decision decide(AssistFields fields, ServedModel model, TandemConfig.Assisted defaults,
                                          Experiment experiment, String key) {
        return new GenerationRoutes(null, null, null, null, new DecodingPolicy(defaults, experiment))
                .decide(fields, model, key);
    }

    @Test
    void anExplicitAssistedRequestIsA400SayingWhyAndWhatToDo() {
        for (String assistant : new String[] {null, "draft", "prompt_lookup"}) {
            for (boolean byDefault : new boolean[] {false, true}) {
                for (boolean exp : new boolean[] {false, true}) {
                    var e = assertThrows(ApiException.class, () -> decide(Fields.assisted(true, assistant),
                            STATEFUL, defaults(byDefault), experiment(exp), "user-1"), "assistant " + assistant);
                    assertEquals(400, e.status(), "rendered as 422 on the TGI routes");
                    assertEquals("invalid_request_error", e.type());
                    assertEquals("assisted", e.param());
                    assertEquals("invalid_value", e.code());
                    String m = e.getMessage();
                    assertTrue(m.startsWith("assisted decoding is unavailable: model 'kjv-stateful'"), m);
                    assertTrue(m.contains("is a stateful model"), m);
                    assertTrue(m.contains("optimum-cli export openvino --disable-stateful"), m);
                    assertTrue(m.contains("as ONNX"), m);
                    assertTrue(m.contains("without \"assisted\" (or with assisted=false) for plain decoding"), m);
                }
            }
        }
    }

    @Test
    void absentOrFalseIsPlainWhateverTheDefaultAndTheExperimentSay() {
        for (boolean byDefault : new boolean[] {false, true}) {
            for (boolean exp : new boolean[] {false, true}) {
                String when = "default " + byDefault + ", experiment " + exp;
                var absent = decide(Fields.assisted(null, null), STATEFUL, defaults(byDefault), experiment(exp),
                        "user-1");
                assertEquals(DecodingMode.PLAIN, absent.decoding(), when);
                assertEquals("plain", absent.mode(), when);
                assertEquals(Experiment.NONE, absent.arm(), "not in the experiment: it has no assisted arm (" + when + ")");
                var off = decide(Fields.assisted(false, null), STATEFUL, defaults(byDefault), experiment(exp),
                        "user-1");
                assertEquals(DecodingMode.PLAIN, off.decoding(), when);
                assertEquals(Experiment.EXPLICIT, off.arm(), when);
            }
        }
    }

    @Test
    void theSameSettingsOnATargetThatRollsBackAreAssisted() {
        var byDefault = decide(Fields.assisted(null, null), STATELESS, defaults(true), experiment(false), null);
        assertEquals(Assistant.PROMPT_LOOKUP, ((DecodingMode.Assisted) byDefault.decoding()).options().assistant());
        var arm = decide(Fields.assisted(null, null), STATELESS, defaults(false), experiment(true), "user-1");
        assertEquals(Experiment.ASSISTED, arm.arm());
        assertTrue(arm.isAssisted());
        assertTrue(decide(Fields.assisted(true, "prompt_lookup"), STATELESS, defaults(false),
                experiment(false), null).isAssisted());
    }

    @Test
    void fieldsAreStillValidatedOnAPlainOnlyTarget() {
        var bad = new Fields(null, null, 99, null, null, null);
        var e = assertThrows(ApiException.class,
                () -> decide(bad, STATEFUL, defaults(true), experiment(true), null));
        assertEquals("num_assistant_tokens", e.param());
    }

    @Test
    void modelsSayWhetherAssistedDecodingIsAvailable() throws Exception {
        ObjectMapper json = new ObjectMapper();
        new JsonSetup().customize(json);
        JsonNode stateful = json.valueToTree(ModelsResource.card(STATEFUL, null));
        assertFalse(stateful.get("assisted_decoding").asBoolean(true));
        String why = stateful.get("assisted_decoding_unavailable").asText();
        assertTrue(why.contains("'kjv-stateful'") && why.contains("stateful model") && why.contains("--disable-stateful"), why);

        JsonNode stateless = json.valueToTree(ModelsResource.card(STATELESS, null));
        assertTrue(stateless.get("assisted_decoding").asBoolean(false));
        assertTrue(stateless.get("assisted_decoding_unavailable").isNull());
    }
}
