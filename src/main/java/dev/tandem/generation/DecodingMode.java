package dev.tandem.generation;

import java.util.Objects;

/**
 * How one sequence is decoded: {@link #PLAIN}, or {@link Assisted} with its {@link AssistOptions}.
 * Plain is a value, not a null, so every signature that carries a request's decoding from the
 * HTTP routes down to {@link Sequence} says which it is. Who decides it for a request is
 * {@code dev.tandem.serving.DecodingPolicy}.
 */
public sealed interface DecodingMode permits DecodingMode.Plain, DecodingMode.Assisted {
    /** One token per step from the target alone. */
    Plain PLAIN = new Plain();

    static Assisted assisted(AssistOptions options) {
        return new Assisted(options);
    }

    /** "plain" or "assisted": what the {@code X-Decoding-Mode} response header says. */
    String label();

    default boolean isAssisted() {
        return this instanceof Assisted;
    }

    /** Whether candidates come from the draft model, whose KV cache the request then needs as well. */
    default boolean usesDraft() {
        return this instanceof Assisted a && a.options().assistant() == AssistOptions.Assistant.DRAFT;
    }

    /** Plain decoding; use {@link #PLAIN}. */
    record Plain() implements DecodingMode {
        @Override
        public String label() {
            return "plain";
        }
    }

    /** Assisted (speculative) decoding as {@code options} say. */
    record Assisted(AssistOptions options) implements DecodingMode {
        public Assisted {
            Objects.requireNonNull(options, "options");
        }

        @Override
        public String label() {
            return "assisted";
        }
    }
}
