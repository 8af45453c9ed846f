package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.testing.ShapeOnlyLm;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** What start-up does with models that cannot roll their KV cache back (stateful OpenVINO models). */
class StatefulModelStartupTest {
    static final ServedModel STATEFUL = ShapeOnlyLm.served("kjv-stateful", "openvino 2024.2.0-stub (CPU)", false);
    static final ServedModel STATELESS = ShapeOnlyLm.served("kjv", "onnxruntime", true);

    @Test
    void aDraftThatCannotRollBackFailsStartUp() {
        var e = assertThrows(IllegalArgumentException.class, () -> ModelRegistry.checkDraftCanRollBack(STATEFUL));
        String m = e.getMessage();
        assertTrue(m.startsWith("draft model 'kjv-stateful' (openvino 2024.2.0-stub (CPU)) is a stateful model"), m);
        assertTrue(m.contains("rolled back every round"), m);
        assertTrue(m.contains("--disable-stateful"), m);
        ModelRegistry.checkDraftCanRollBack(STATELESS);  // fine
    }

    @Test
    void aPlainOnlyTargetWarnsWhenTheDefaultOrTheExperimentAskForAssisted() {
        assertEquals(Optional.empty(), ModelRegistry.plainOnlyWarning(STATEFUL, false, false, false),
                "nothing asks for assisted decoding: nothing to warn about");
        assertEquals(Optional.empty(), ModelRegistry.plainOnlyWarning(STATELESS, true, true, true));

        String byDefault = ModelRegistry.plainOnlyWarning(STATEFUL, false, true, false).orElseThrow();
        assertTrue(byDefault.contains("'kjv-stateful'") && byDefault.contains("stateful model"), byDefault);
        assertTrue(byDefault.contains("tandem.assisted.enabled-by-default=true does not apply"), byDefault);
        assertTrue(!byDefault.contains("tandem.experiment.enabled"), byDefault);

        String experiment = ModelRegistry.plainOnlyWarning(STATEFUL, false, false, true).orElseThrow();
        assertTrue(experiment.contains("tandem.experiment.enabled=true does not apply"), experiment);
        assertTrue(experiment.contains("the experiment's assisted arm cannot exist"), experiment);

        String draft = ModelRegistry.plainOnlyWarning(STATEFUL, true, false, false).orElseThrow();
        assertTrue(draft.contains("draft model is loaded but cannot be used"), draft);
    }
}
