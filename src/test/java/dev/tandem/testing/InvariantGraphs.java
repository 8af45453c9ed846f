package dev.tandem.testing;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.StepInvariance;
import org.junit.jupiter.api.Assumptions;

/**
 * For the tests that ask a bundled model's graph to reproduce plain decoding bit for bit: the target as the service
 * serves it (ModelRegistry.openInvariant, through {@link StepInvariance#choose}): as opened where it is step-invariant
 * on this processor, padded to two rows a step where that makes it invariant (the bundled target's 4-bit
 * {@code model_optimized.onnx} on an AVX2-only machine), and where neither holds the service serves model.onnx instead
 * of {@code model_optimized.onnx}, so such a test is skipped with the probe's finding on the console
 * (InvariantGraphChoiceTest checks that fallback). The portable {@code model.onnx} is never excused.
 */
public final class InvariantGraphs {
    private InvariantGraphs() {
    }

    /**
     * {@code target} (opened on {@code graph}) as the service serves it; closes it and skips the test when the service
     * would not serve that graph.
     */
    public static CausalLm served(CausalLm target, String graph) {
        StepInvariance.Choice c = StepInvariance.choose(target);
        if (c.isPadded()) {
            System.out.println(graph + " is " + c.probe() + " on this processor; served padded to two rows a step, it is "
                    + c.padded());
        }
        if (c.holds() || !graph.equals("model_optimized.onnx")) {
            return c.holds() ? c.invariant() : target;
        }
        target.close();
        String why = graph + " is " + c.probe() + (c.padded() == null ? "" : ", padded " + c.padded()) + " on this"
                + " processor: the service serves model.onnx instead (ModelRegistry.openInvariant), so bit-exact equality"
                + " is not asked of it here";
        System.out.println("SKIPPED: " + why);
        Assumptions.abort(why);
        throw new AssertionError("unreachable");
    }
}
