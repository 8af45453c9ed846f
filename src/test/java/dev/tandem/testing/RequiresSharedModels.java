package dev.tandem.testing;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Marks tests that need {@code ../shared/models/stories260K}. Without it they are skipped with the
 * reason shown; in CI ({@code CI=true}) its absence fails them instead.
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(SharedModelsCondition.class)
public @interface RequiresSharedModels {
}
