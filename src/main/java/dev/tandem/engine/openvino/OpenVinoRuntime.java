package dev.tandem.engine.openvino;

import dev.tandem.engine.EngineException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * A loaded OpenVINO C runtime ({@code libopenvino_c.so}) and its {@code ov_core_t}.
 *
 * <p>{@link #load()} searches, in order: the system property {@value #LIBRARY_PROPERTY} (the file or
 * its directory), {@code $OPENVINO_HOME/runtime/lib/intel64} and {@code $OPENVINO_HOME/lib}, every
 * directory of {@code LD_LIBRARY_PATH}, {@code /opt/intel/openvino*}{@code /runtime/lib/intel64}
 * (newest name first), {@code /usr/lib/x86_64-linux-gnu}, {@code /usr/local/lib}, {@code /usr/lib}.
 * In each directory {@code libopenvino_c.so} is preferred, else the highest
 * {@code libopenvino_c.so.<version>} (the APT runtime packages ship only versioned names).
 *
 * <p>The library stays mapped for the life of the process (global arena): unloading it under live
 * method handles is unsafe. {@link #close} frees the core; close every model opened with this
 * runtime before.
 */
public final class OpenVinoRuntime implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(OpenVinoRuntime.class);

    public static final String LIBRARY_PROPERTY = "openvino.library.path";
    public static final String HOME_ENV = "OPENVINO_HOME";
    static final String LIBRARY_NAME = "libopenvino_c.so";

    private final Path library;
    private final OvApi api;
    private final String buildNumber;
    private final String description;
    private MemorySegment core;
    private boolean closed;

    private OpenVinoRuntime(Path library, OvApi api) {
        this.library = library;
        this.api = api;
        String[] version = api.version();
        this.buildNumber = version[0];
        this.description = version[1];
    }

    /** OpenVINO is not installed where this process can find it (see the message for where it looked). */
    public static final class NotAvailableException extends EngineException {
        NotAvailableException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The filesystem and environment discovery consults, injectable so the order is testable. */
    record Environment(Function<String, String> property, Function<String, String> env,
                       Predicate<Path> isFile, Function<Path, List<Path>> list) {

        static Environment system() {
            return new Environment(System::getProperty, System::getenv, Files::isRegularFile, dir -> {
                try (Stream<Path> s = Files.list(dir)) {
                    return s.toList();
                } catch (IOException | RuntimeException e) {
                    return List.of();
                }
            });
        }
    }

    /** Loads OpenVINO from the first place of the search order that holds it. */
    public static OpenVinoRuntime load() {
        return load(locate(Environment.system()));
    }

    /** Loads the C library at {@code library}. */
    public static OpenVinoRuntime load(Path library) {
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(library, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new NotAvailableException("cannot load " + library + " (" + e.getMessage() + "); if a dependency such as"
                    + " libopenvino.so or TBB is missing, add OpenVINO's runtime/lib/intel64 and runtime/3rdparty/tbb/lib to"
                    + " LD_LIBRARY_PATH (source setupvars.sh)", e);
        }
        OpenVinoRuntime rt = new OpenVinoRuntime(library, new OvApi(lookup));
        LOG.infof("OpenVINO %s (%s) from %s", rt.buildNumber, rt.description, library);
        return rt;
    }

    /**
     * The ordered search path: each entry maps a candidate directory (or file) to where it came from.
     * Pure: everything it reads comes from {@code e}.
     */
    static LinkedHashMap<Path, String> searchPath(Environment e) {
        LinkedHashMap<Path, String> out = new LinkedHashMap<>();
        String prop = e.property().apply(LIBRARY_PROPERTY);
        if (prop != null && !prop.isBlank()) {
            out.putIfAbsent(Path.of(prop.strip()), "system property " + LIBRARY_PROPERTY);
        }
        String home = e.env().apply(HOME_ENV);
        if (home != null && !home.isBlank()) {
            out.putIfAbsent(Path.of(home.strip(), "runtime", "lib", "intel64"), HOME_ENV);
            out.putIfAbsent(Path.of(home.strip(), "lib"), HOME_ENV);
        }
        String ld = e.env().apply("LD_LIBRARY_PATH");
        if (ld != null) {
            for (String dir : ld.split(":")) {
                if (!dir.isBlank()) {
                    out.putIfAbsent(Path.of(dir.strip()), "LD_LIBRARY_PATH");
                }
            }
        }
        e.list().apply(Path.of("/opt/intel")).stream()
                .filter(p -> p.getFileName() != null && p.getFileName().toString().startsWith("openvino"))
                .sorted(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed())
                .forEach(p -> out.putIfAbsent(p.resolve("runtime/lib/intel64"), "standard location"));
        for (String dir : List.of("/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/usr/lib")) {
            out.putIfAbsent(Path.of(dir), "standard location");
        }
        return out;
    }

    /** The library file in {@code candidate} (a file, or a directory searched for the library). */
    static Optional<Path> libraryIn(Path candidate, Environment e) {
        if (candidate.getFileName() != null && candidate.getFileName().toString().startsWith(LIBRARY_NAME)
                && e.isFile().test(candidate)) {
            return Optional.of(candidate);
        }
        Path plain = candidate.resolve(LIBRARY_NAME);
        if (e.isFile().test(plain)) {
            return Optional.of(plain);
        }
        return e.list().apply(candidate).stream()
                .filter(p -> p.getFileName() != null && p.getFileName().toString().startsWith(LIBRARY_NAME + "."))
                .filter(e.isFile())
                .max(Comparator.comparing((Path p) -> p.getFileName().toString()));
    }

    /** The first library on the search path, or a {@link NotAvailableException} listing every place looked at. */
    static Path locate(Environment e) {
        LinkedHashMap<Path, String> path = searchPath(e);
        for (Path candidate : path.keySet()) {
            Optional<Path> found = libraryIn(candidate, e);
            if (found.isPresent()) {
                return found.get();
            }
        }
        throw new NotAvailableException(notFoundMessage(path), null);
    }

    static String notFoundMessage(Map<Path, String> searched) {
        StringBuilder sb = new StringBuilder("OpenVINO runtime not found: no " + LIBRARY_NAME + " in any of\n");
        for (Map.Entry<Path, String> p : searched.entrySet()) {
            sb.append("  ").append(p.getKey()).append("  (").append(p.getValue()).append(")\n");
        }
        sb.append("""
                Install OpenVINO 2024.2 or newer, then point this service at it:
                  - APT (Ubuntu/Debian): add Intel's repository https://apt.repos.intel.com/openvino/2024 and \
                `apt install openvino`
                  - YUM (RHEL/Fedora): add https://yum.repos.intel.com/openvino/2024 and `yum install openvino`
                  - or unpack the archive from the OpenVINO download page \
                (https://www.intel.com/content/www/us/en/developer/tools/openvino-toolkit/download.html) \
                and set OPENVINO_HOME to its directory
                Or set -D""").append(LIBRARY_PROPERTY).append("=/path/to/").append(LIBRARY_NAME)
                .append(", or add its directory to LD_LIBRARY_PATH.");
        return sb.toString();
    }

    OvApi api() {
        return api;
    }

    /** The process's {@code ov_core_t}, created on first use (it reads the plugin configuration). */
    synchronized MemorySegment core() {
        if (closed) {
            throw new IllegalStateException("OpenVINO runtime is closed");
        }
        if (core == null) {
            core = api.coreCreate();
        }
        return core;
    }

    /** The library file that was loaded. */
    public Path library() {
        return library;
    }

    /** {@code ov_version_t.buildNumber}, e.g. {@code 2024.2.0-15519-5c0f38f83f6-releases/2024/2}. */
    public String version() {
        return buildNumber;
    }

    /** {@code ov_version_t.description}, e.g. {@code OpenVINO Runtime}. */
    public String description() {
        return description;
    }

    /** Frees the core. Models compiled by it must be closed first. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            if (core != null) {
                api.coreFree(core);
                core = null;
            }
        }
    }

    @Override
    public String toString() {
        return "OpenVINO " + buildNumber + " (" + library + ")";
    }

    /** Exported property keys by symbol name, for {@link OpenVinoOptions#compileProperties}. */
    Function<String, Optional<String>> propertyKeys() {
        return api::exportedString;
    }
}
