package dev.tandem.engine;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * A large native region that takes physical memory only where it is written, and can give pages
 * back: the slot pools (ONNX Runtime's and OpenVINO's) reserve room for many sequences up front (so that a sequence joining never
 * moves the others) but must only cost what the sequences in it use.
 *
 * <p>On Linux and macOS this is an anonymous private {@code mmap} (pages are committed on first
 * write, read as zeros before) and {@code madvise(MADV_DONTNEED)} returns a vacated range to the
 * system. {@code Arena.allocate} cannot do this: it zeroes, and so commits, all of it. Elsewhere the
 * region falls back to an ordinary (committed) allocation and {@link #discard} does nothing.
 */
public final class ReservedMemory implements AutoCloseable {
    private static final long PAGE = 4096;
    private static final boolean LINUX = os().contains("linux");
    private static final boolean MAC = os().contains("mac");
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MADVISE;

    static {
        MethodHandle mmap = null;
        MethodHandle munmap = null;
        MethodHandle madvise = null;
        if (LINUX || MAC) {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            mmap = libc.find("mmap").map(a -> linker.downcallHandle(a, FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG))).orElse(null);
            munmap = libc.find("munmap").map(a -> linker.downcallHandle(a, FunctionDescriptor.of(JAVA_INT, ADDRESS,
                    JAVA_LONG))).orElse(null);
            madvise = libc.find("madvise").map(a -> linker.downcallHandle(a, FunctionDescriptor.of(JAVA_INT, ADDRESS,
                    JAVA_LONG, JAVA_INT))).orElse(null);
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
    }

    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE = 0x02;
    /** MAP_ANONYMOUS (0x20) | MAP_NORESERVE (0x4000) on Linux; MAP_ANON on macOS (which does not reserve swap). */
    private static final int MAP_ANON_NORESERVE = LINUX ? 0x20 | 0x4000 : 0x1000;
    private static final int MADV_DONTNEED = 4;

    private final MemorySegment segment;
    private final Arena fallback;
    private boolean closed;

    /** Reserves {@code bytes} (page-aligned start). */
    public ReservedMemory(long bytes) {
        MemorySegment mapped = null;
        if (MMAP != null && MUNMAP != null) {
            try {
                MemorySegment at = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE,
                        MAP_PRIVATE | MAP_ANON_NORESERVE, -1, 0L);
                if (at.address() != -1L && at.address() != 0L) {
                    mapped = at.reinterpret(bytes);
                }
            } catch (Throwable e) {
                throw new IllegalStateException("cannot reserve " + bytes + " bytes for the KV slot pool", e);
            }
            if (mapped == null) {
                throw new OutOfMemoryError("cannot reserve " + bytes + " bytes of address space for the KV slot pool");
            }
        }
        if (mapped != null) {
            segment = mapped;
            fallback = null;
        } else {
            fallback = Arena.ofShared();
            segment = fallback.allocate(bytes, PAGE);
        }
    }

    public MemorySegment segment() {
        return segment;
    }

    /** Whether written pages can be given back ({@link #discard} works) and unwritten ones cost nothing. */
    public boolean lazy() {
        return fallback == null;
    }

    /**
     * Gives the whole pages inside {@code [offset, offset + length)} back to the system; they read as
     * zeros afterwards. The caller no longer needs their contents.
     */
    public void discard(long offset, long length) {
        if (fallback != null || MADVISE == null) {
            return;
        }
        long start = segment.address() + offset;
        long from = (start + PAGE - 1) / PAGE * PAGE;
        long to = (start + length) / PAGE * PAGE;
        if (to <= from) {
            return;
        }
        try {
            int rc = (int) MADVISE.invokeExact(MemorySegment.ofAddress(from), to - from, MADV_DONTNEED);
            assert rc == 0 : "madvise failed";
        } catch (Throwable e) {
            throw new IllegalStateException("madvise failed", e);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (fallback != null) {
            fallback.close();
            return;
        }
        try {
            int rc = (int) MUNMAP.invokeExact(segment, segment.byteSize());
            assert rc == 0 : "munmap failed";
        } catch (Throwable e) {
            throw new IllegalStateException("munmap failed", e);
        }
    }

    private static String os() {
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    }
}
