package dev.tandem.engine.openvino;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tandem.engine.openvino.OpenVinoRuntime.Environment;
import dev.tandem.engine.openvino.OpenVinoRuntime.NotAvailableException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Library discovery, with the environment injected; no runtime needed. */
class OpenVinoRuntimeTest {
    @TempDir
    Path tmp;

    /** An environment whose filesystem is the real one under {@code tmp} and empty elsewhere. */
    Environment env(Map<String, String> props, Map<String, String> env) {
        return new Environment(props::get, env::get, p -> p.startsWith(tmp) && Files.isRegularFile(p), dir -> {
            if (!dir.startsWith(tmp) || !Files.isDirectory(dir)) {
                return List.of();
            }
            try (Stream<Path> s = Files.list(dir)) {
                return s.toList();
            } catch (IOException e) {
                return List.of();
            }
        });
    }

    @Test
    void searchOrderIsPropertyHomeLdPathThenStandardPrefixes() {
        Path home = tmp.resolve("ov");
        var order = new ArrayList<>(OpenVinoRuntime.searchPath(env(
                Map.of("openvino.library.path", "/custom/libopenvino_c.so"),
                Map.of("OPENVINO_HOME", home.toString(), "LD_LIBRARY_PATH", "/a::/b"))).keySet());
        assertEquals(List.of(Path.of("/custom/libopenvino_c.so"),
                home.resolve("runtime/lib/intel64"), home.resolve("lib"),
                Path.of("/a"), Path.of("/b"),
                Path.of("/usr/lib/x86_64-linux-gnu"), Path.of("/usr/local/lib"), Path.of("/usr/lib")), order);
    }

    @Test
    void optIntelInstallationsAreSearchedNewestFirst() {
        Environment base = env(Map.of(), Map.of());
        Environment e = new Environment(base.property(), base.env(), base.isFile(), dir -> dir.equals(Path.of("/opt/intel"))
                ? List.of(Path.of("/opt/intel/openvino_2024.2.0"), Path.of("/opt/intel/other"), Path.of("/opt/intel/openvino_2025.0.0"))
                : List.of());
        var order = new ArrayList<>(OpenVinoRuntime.searchPath(e).keySet());
        assertEquals(Path.of("/opt/intel/openvino_2025.0.0/runtime/lib/intel64"), order.get(0));
        assertEquals(Path.of("/opt/intel/openvino_2024.2.0/runtime/lib/intel64"), order.get(1));
        assertEquals(5, order.size());
    }

    @Test
    void findsTheFirstLibraryInOrder() throws IOException {
        Path home = Files.createDirectories(tmp.resolve("home/runtime/lib/intel64"));
        Path ld = Files.createDirectories(tmp.resolve("ld"));
        Files.createFile(ld.resolve("libopenvino_c.so"));
        Files.createFile(home.resolve("libopenvino_c.so"));
        var e = env(Map.of(), Map.of("OPENVINO_HOME", tmp.resolve("home").toString(), "LD_LIBRARY_PATH", ld.toString()));
        assertEquals(home.resolve("libopenvino_c.so"), OpenVinoRuntime.locate(e));
        // the system property wins, as a directory too
        var withProp = env(Map.of("openvino.library.path", ld.toString()), Map.of("OPENVINO_HOME", tmp.resolve("home").toString()));
        assertEquals(ld.resolve("libopenvino_c.so"), OpenVinoRuntime.locate(withProp));
    }

    @Test
    void acceptsVersionedLibraryNames() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("apt"));
        Files.createFile(dir.resolve("libopenvino_c.so.2420"));
        Files.createFile(dir.resolve("libopenvino_c.so.2024.2.0"));
        var e = env(Map.of(), Map.of("LD_LIBRARY_PATH", dir.toString()));
        assertEquals(dir.resolve("libopenvino_c.so.2420"), OpenVinoRuntime.locate(e));
    }

    @Test
    void notFoundMessageListsEveryPlaceAndHowToInstall() {
        Path home = tmp.resolve("nowhere");
        var e = env(Map.of("openvino.library.path", "/x/libopenvino_c.so"), Map.of("OPENVINO_HOME", home.toString(), "LD_LIBRARY_PATH", "/ld1"));
        var ex = assertThrows(NotAvailableException.class, () -> OpenVinoRuntime.locate(e));
        String m = ex.getMessage();
        for (Path p : OpenVinoRuntime.searchPath(e).keySet()) {
            assertTrue(m.contains(p.toString()), p + " missing from: " + m);
        }
        assertTrue(m.contains("(system property openvino.library.path)"), m);
        assertTrue(m.contains("(OPENVINO_HOME)"), m);
        assertTrue(m.contains("(LD_LIBRARY_PATH)"), m);
        assertTrue(m.contains("apt.repos.intel.com"), m);
        assertTrue(m.contains("yum.repos.intel.com"), m);
        assertTrue(m.contains("download"), m);
        assertTrue(m.contains("set OPENVINO_HOME"), m);
    }

    /**
     * On this machine: the runtime the build points at (OPENVINO_HOME = ../shared/openvino, see the
     * pom) loads through the ordinary discovery; where there is none, loading fails saying where it
     * looked. CI has the shared runtime, so there it must load.
     */
    @Test
    void loadsTheRuntimeOnThisMachineOrSaysWhereItLooked() {
        boolean installed;
        try {
            OpenVinoRuntime.locate(Environment.system());
            installed = true;
        } catch (NotAvailableException e) {
            installed = false;
        }
        if (installed) {
            try (OpenVinoRuntime rt = OpenVinoRuntime.load()) {
                assertTrue(rt.version().matches("\\d{4}\\.\\d+\\.\\d+.*"), rt.version());
                assertTrue(rt.library().getFileName().toString().startsWith("libopenvino_c.so"), rt.library().toString());
            }
            return;
        }
        assertTrue(!"true".equalsIgnoreCase(System.getenv("CI")), "CI=true but no OpenVINO runtime at OPENVINO_HOME="
                + System.getenv("OPENVINO_HOME"));
        var e = assertThrows(NotAvailableException.class, OpenVinoRuntime::load);
        assertTrue(e.getMessage().startsWith("OpenVINO runtime not found: no libopenvino_c.so in any of"), e.getMessage());
        assertTrue(e.getMessage().contains("/usr/lib/x86_64-linux-gnu"), e.getMessage());
    }
}
