package dev.tandem.memory;

import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * The memory the KV caches of running requests may hold together ({@code tandem.memory.budget}).
 *
 * <ul>
 *   <li>a size ({@code 384M}, {@code 2G}, {@code 1073741824}, {@code 512Mi}): that many bytes;</li>
 *   <li>{@code auto} (the default): half of what the machine (or the container's memory limit, which
 *       the JVM reads) leaves beside the JVM's maximum heap. KV caches live in native memory, outside
 *       the heap; the other half is left to the runtime's own native memory (model weights in ONNX
 *       Runtime, its arenas, metaspace, thread stacks);</li>
 *   <li>{@code unlimited}: no KV limit (only {@code tandem.serving.max-concurrent} bounds the work).</li>
 * </ul>
 *
 * @param bytes  the budget; {@link Long#MAX_VALUE} when unlimited
 * @param source how it was set, for the operator ("tandem.memory.budget=384M", "auto: ...")
 */
public record MemoryBudget(long bytes, String source) {

    public static final MemoryBudget UNLIMITED = new MemoryBudget(Long.MAX_VALUE, "unlimited");

    public boolean limited() {
        return bytes != Long.MAX_VALUE;
    }

    /** The budget {@code setting} means; IllegalArgumentException naming the key when it means nothing. */
    public static MemoryBudget resolve(String setting) {
        String s = setting == null ? "auto" : setting.trim().toLowerCase(Locale.ROOT);
        if (s.equals("unlimited") || s.equals("none")) {
            return UNLIMITED;
        }
        if (s.equals("auto")) {
            long total = totalMemory();
            long heap = Runtime.getRuntime().maxMemory();
            if (total <= 0 || heap == Long.MAX_VALUE) {
                return new MemoryBudget(Long.MAX_VALUE, "auto: unlimited (the JVM reports no memory size or no heap limit)");
            }
            long free = Math.max(0, total - heap);
            return new MemoryBudget(free / 2, "auto: (" + ByteSize.human(total) + " memory - " + ByteSize.human(heap)
                    + " max heap) / 2");
        }
        long bytes;
        try {
            bytes = ByteSize.parse(setting);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tandem.memory.budget (TANDEM_MEMORY_BUDGET): " + e.getMessage()
                    + "; or auto, or unlimited", e);
        }
        return new MemoryBudget(bytes, "tandem.memory.budget=" + setting.trim());
    }

    /** Physical memory, or the container's limit (the JVM is container-aware); 0 when unknown. */
    static long totalMemory() {
        try {
            if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
                return os.getTotalMemorySize();
            }
        } catch (RuntimeException | LinkageError e) {
            // fall through: unknown
        }
        return 0;
    }

    /** Whole sequences of {@code bytesEach} that fit; null when unlimited. */
    public Long fits(long bytesEach) {
        if (!limited() || bytesEach <= 0) {
            return null;
        }
        return bytes / bytesEach;
    }

    @Override
    public String toString() {
        return limited() ? bytes + " bytes (" + ByteSize.human(bytes) + ", " + source + ")" : source;
    }
}
