package dev.tandem.engine;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Float16 values a runtime wrote, made float32 for the rest of Tandem (which reads logits as float32). */
public final class HalfFloats {
    private HalfFloats() {
    }

    /**
     * Turns the {@code n} float16 values at the start of {@code segment} into {@code n} float32 values filling it,
     * in place: from the last value down, each float32 (bytes 4i..4i+3) overwrites only float16 values after the
     * i-th (bytes 2i..), which have been widened already. Saves a second logits buffer per cache: an engine binds
     * the float32 logits buffer as the graph's float16 output, then widens it after the run.
     */
    public static void widenInPlace(MemorySegment segment, long n) {
        for (long i = n - 1; i >= 0; i--) {
            short half = segment.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i);
            segment.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * i, Float.float16ToFloat(half));
        }
    }
}
