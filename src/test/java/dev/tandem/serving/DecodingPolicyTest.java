package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.DecodingMode;
import dev.tandem.testing.ShapeOnlyLm;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * {@link DecodingPolicy}, the one place that decides plain or assisted: its order of precedence
 * (request field, experiment arm, server default), the options an assisted request gets, and the
 * fields it refuses. Plain unit tests over a model that never decodes; the stateful-model rules are
 * in {@code AssistedUnavailableApiTest}, the HTTP side (headers, 400/422) in the API tests.
 */
class DecodingPolicyTest {
    static final ShapeOnlyLm LM = new ShapeOnlyLm(true);
    /** A target served with a draft model beside it. */
    static final ServedModel WITH_DRAFT = ShapeOnlyLm.served("kjv", "onnxruntime", true)
            .withAssistedDecoder(new AssistedDecoder(LM, new ShapeOnlyLm(true), null, List.of()));
    /** A target with no draft model: only prompt lookup can assist it. */
    static final ServedModel NO_DRAFT = ShapeOnlyLm.served("kjv", "onnxruntime", true)
            .withAssistedDecoder(new AssistedDecoder(LM, null, null, List.of()));

    record Fields(Boolean assisted, String assistant, Integer numAssistantTokens, String assistantSchedule,
                  Double assistantConfidenceThreshold, Integer promptLookupNgramSize) implements AssistFields {
        static final Fields NONE = new Fields(null, null, null, null, null, null);

        static Fields assisted(Boolean assisted) {
            return new Fields(assisted, null, null, null, null, null);
        }
    }

    /** The tandem.assisted.* settings: as application.properties ships them but for the two given. */
    static TandemConfig.Assisted defaults(boolean enabledByDefault, String assistant) {
        return new TandemConfig.Assisted() {
            public boolean enabledByDefault() { return enabledByDefault; }
            public Optional<String> assistant() { return Optional.ofNullable(assistant); }
            public int numAssistantTokens() { return 5; }
            public String schedule() { return "heuristic"; }
            public double confidenceThreshold() { return 0; }
            public int promptLookupNgramSize() { return 3; }
            public String policy() { return "auto"; }
        };
    }

    static final TandemConfig.Assisted OFF = defaults(false, null);
    static final TandemConfig.Assisted ON = defaults(true, null);

    static Experiment experiment(boolean enabled, double assistedShare) {
        TandemConfig.Experiment e = new TandemConfig.Experiment() {
            public boolean enabled() { return enabled; }
            public double assistedShare() { return assistedShare; }
            public int samples() { return 100; }
        };
        return new Experiment((TandemConfig) Proxy.newProxyInstance(TandemConfig.class.getClassLoader(),
                new Class<?>[] {TandemConfig.class}, (proxy, method, args) -> {
                    if (method.getName().equals("experiment")) {
                        return e;
                    }
                    throw new UnsupportedOperationException(method.getName());
                }));
    }

    static final Experiment NO_EXPERIMENT = experiment(false, 0.5);

    static DecodingPolicy.Decision decide(TandemConfig.Assisted defaults, Experiment experiment, AssistFields fields,
                                          ServedModel model, String key) {
        return new DecodingPolicy(defaults, experiment).decide(fields, model, key);
    }

    static AssistOptions options(DecodingPolicy.Decision d) {
        assertTrue(d.decoding() instanceof DecodingMode.Assisted, "assisted: " + d);
        return ((DecodingMode.Assisted) d.decoding()).options();
    }

    static void assertPlain(DecodingPolicy.Decision d, String arm, String what) {
        assertEquals(DecodingMode.PLAIN, d.decoding(), what);
        assertFalse(d.isAssisted(), what);
        assertEquals("plain", d.mode(), what);
        assertEquals(arm, d.arm(), what);
    }

    @Test
    void plainWhenNothingSaysOtherwise() {
        assertPlain(decide(OFF, NO_EXPERIMENT, Fields.NONE, WITH_DRAFT, "user-1"), Experiment.NONE, "default off");
    }

    @Test
    void theServerDefaultAppliesToARequestThatDoesNotSay() {
        DecodingPolicy.Decision d = decide(ON, NO_EXPERIMENT, Fields.NONE, WITH_DRAFT, null);
        assertEquals("assisted", d.mode());
        assertEquals(Experiment.NONE, d.arm());
        assertEquals(new AssistOptions(Assistant.DRAFT, 5, Schedule.HEURISTIC, 0, 3, false), options(d),
                "every option from tandem.assisted.*, the draft because one is loaded");
        assertEquals(Assistant.PROMPT_LOOKUP, options(decide(ON, NO_EXPERIMENT, Fields.NONE, NO_DRAFT, null)).assistant(),
                "no draft loaded: prompt lookup");
        assertEquals(Assistant.PROMPT_LOOKUP,
                options(decide(defaults(true, "prompt_lookup"), NO_EXPERIMENT, Fields.NONE, WITH_DRAFT, null)).assistant(),
                "the configured assistant wins over the loaded draft");
    }

    @Test
    void anExplicitFalseIsNeverSpeculatedWhateverTheDefaultAndTheExperimentSay() {
        for (TandemConfig.Assisted defaults : List.of(OFF, ON, defaults(true, "draft"))) {
            for (Experiment experiment : List.of(NO_EXPERIMENT, experiment(true, 1.0))) {
                for (String key : new String[] {null, "user-1"}) {
                    assertPlain(decide(defaults, experiment, Fields.assisted(false), WITH_DRAFT, key), Experiment.EXPLICIT,
                            "default " + defaults.enabledByDefault() + ", experiment " + experiment.enabled());
                }
            }
        }
    }

    @Test
    void anExplicitTrueIsAssistedOutsideTheExperiment() {
        DecodingPolicy.Decision d = decide(OFF, experiment(true, 0.0), Fields.assisted(true), WITH_DRAFT, "user-1");
        assertEquals(Experiment.EXPLICIT, d.arm());
        assertEquals(Assistant.DRAFT, options(d).assistant());
    }

    @Test
    void theExperimentArmDecidesARequestThatDoesNotSayOverTheServerDefault() {
        assertPlain(decide(ON, experiment(true, 0.0), Fields.NONE, WITH_DRAFT, "user-1"), Experiment.PLAIN,
                "share 0: every request in the plain arm, though the default is on");
        DecodingPolicy.Decision all = decide(OFF, experiment(true, 1.0), Fields.NONE, WITH_DRAFT, "user-1");
        assertEquals(Experiment.ASSISTED, all.arm(), "share 1: every request in the assisted arm, though the default is off");
        assertEquals("assisted", all.mode());

        Experiment half = experiment(true, 0.5);
        Set<String> arms = new TreeSet<>();
        for (int i = 0; i < 40; i++) {
            String key = "user-" + i;
            DecodingPolicy.Decision d = decide(OFF, half, Fields.NONE, WITH_DRAFT, key);
            boolean assisted = Experiment.unit(key) < 0.5;
            assertEquals(assisted ? Experiment.ASSISTED : Experiment.PLAIN, d.arm(), key);
            assertEquals(assisted, d.isAssisted(), key + ": the arm decides the mode");
            assertEquals(d, decide(OFF, half, Fields.NONE, WITH_DRAFT, key), key + ": the same key, the same arm");
            arms.add(d.arm());
        }
        assertEquals(Set.of(Experiment.ASSISTED, Experiment.PLAIN), arms);
    }

    @Test
    void theRequestsOwnOptionsAreHonoured() {
        var fields = new Fields(true, "prompt_lookup", 7, "constant", 0.4, 2);
        assertEquals(new AssistOptions(Assistant.PROMPT_LOOKUP, 7, Schedule.CONSTANT, 0.4, 2, true),
                options(decide(OFF, NO_EXPERIMENT, fields, WITH_DRAFT, null)),
                "lengthFixed: the request chose num_assistant_tokens, a load-aware policy keeps it");
        // the options apply in the experiment's assisted arm as well
        var k = new Fields(null, null, 12, null, null, null);
        AssistOptions o = options(decide(OFF, experiment(true, 1.0), k, WITH_DRAFT, "user-1"));
        assertEquals(12, o.numAssistantTokens());
        assertTrue(o.lengthFixed());
    }

    @Test
    void invalidFieldsAreRefusedNamingTheField() {
        Object[][] cases = {
                {new Fields(true, "oracle", null, null, null, null), "assistant",
                        "assistant must be 'draft' or 'prompt_lookup', got 'oracle'"},
                {new Fields(true, null, 0, null, null, null), "num_assistant_tokens",
                        "num_assistant_tokens must be in [1, 16], got 0"},
                {new Fields(true, null, 17, null, null, null), "num_assistant_tokens",
                        "num_assistant_tokens must be in [1, 16], got 17"},
                {new Fields(true, null, null, "sometimes", null, null), "assistant_schedule",
                        "assistant_schedule must be 'constant' or 'heuristic', got 'sometimes'"},
                {new Fields(true, null, null, null, 1.5, null), "assistant_confidence_threshold",
                        "assistant_confidence_threshold must be in [0, 1], got 1.5"},
                {new Fields(true, null, null, null, Double.NaN, null), "assistant_confidence_threshold",
                        "assistant_confidence_threshold must be in [0, 1], got NaN"},
                {new Fields(true, null, null, null, null, 9), "prompt_lookup_ngram_size",
                        "prompt_lookup_ngram_size must be in [1, 8], got 9"},
                // checked even when the request ends up plain
                {new Fields(false, null, 99, null, null, null), "num_assistant_tokens",
                        "num_assistant_tokens must be in [1, 16], got 99"},
                {new Fields(null, "oracle", null, null, null, null), "assistant",
                        "assistant must be 'draft' or 'prompt_lookup', got 'oracle'"}};
        for (Object[] c : cases) {
            var e = assertThrows(DecodingPolicy.InvalidField.class,
                    () -> decide(OFF, NO_EXPERIMENT, (Fields) c[0], WITH_DRAFT, null), c[2].toString());
            assertEquals(c[1], e.param());
            assertEquals(c[2], e.getMessage());
        }
    }

    @Test
    void theDraftIsRefusedWhenNoneIsLoaded() {
        var e = assertThrows(DecodingPolicy.InvalidField.class,
                () -> decide(OFF, NO_EXPERIMENT, new Fields(true, "draft", null, null, null, null), NO_DRAFT, null));
        assertEquals("assistant", e.param());
        assertEquals("assistant 'draft' needs a draft model, and none is configured (tandem.draft.model-dir);"
                + " use assistant 'prompt_lookup' or assisted=false", e.getMessage());
        // the same request is plain, and fine, when it says assisted=false
        assertPlain(decide(OFF, NO_EXPERIMENT, new Fields(false, "draft", null, null, null, null), NO_DRAFT, null),
                Experiment.EXPLICIT, "assisted=false with the draft named");
    }
}
