package dev.tandem.testing;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/** Skips (or, in CI, fails) tests that need the shared test models when they are absent. */
public class SharedModelsCondition implements ExecutionCondition {
    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        if (SharedModels.available()) {
            return ConditionEvaluationResult.enabled("shared test models found at " + SharedModels.stories260kHf());
        }
        String reason = "shared test models not found at " + SharedModels.stories260kHf()
                + " (they live in ../shared beside the project)";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) {
            throw new IllegalStateException("CI=true but " + reason);
        }
        // Surefire's console shows only a count of skipped tests, not JUnit's reason: say why, once per class
        if (REPORTED.add(context.getRequiredTestClass().getName())) {
            System.err.println("SKIPPED " + context.getRequiredTestClass().getSimpleName() + ": " + reason);
        }
        return ConditionEvaluationResult.disabled("SKIPPED: " + reason);
    }

    private static final java.util.Set<String> REPORTED = java.util.concurrent.ConcurrentHashMap.newKeySet();
}
