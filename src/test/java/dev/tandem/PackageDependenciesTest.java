package dev.tandem;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The package structure of src/main/java/dev/tandem, read from the sources (imports and fully
 * qualified names in code; comments and string literals do not count):
 *
 * <pre>
 *   api ──> serving ──> generation ──> model ──> engine, onnx   tools ──> (all but api, serving)
 *              └──> memory ──> model, engine, onnx             engine/&lt;name&gt; ──> engine, onnx
 * </pre>
 *
 * A layer may use any layer below it, never one above: {@code engine} is the bottom and imports no
 * other Tandem package, so an engine can be built and tested on its own; {@code model} (the files of a
 * model directory: config, tokenizer, chat template) sits just above it and hands the engines the
 * declared {@link dev.tandem.engine.ModelShape}. Serving, generation, memory and model see only the
 * engine contract ({@code dev.tandem.engine}), never one engine's folder: engines are reached through
 * their {@code EngineProvider}, so adding one touches its own folder (and its config group and the
 * contract test), nothing in serving. Engine folders do not use each other; what two of them share
 * (the ONNX file reader) lives in {@code onnx}, which uses nothing else; {@code model} reads a graph's external data
 * locations through it, to check a directory's files before any engine opens them.
 *
 * <p>Why a test: a cycle between packages (model and engine, memory and generation) grows back one
 * innocent import at a time, and once there the packages can only be understood, changed and tested
 * together.
 */
class PackageDependenciesTest {
    static final Path ROOT = Path.of("src/main/java/dev/tandem");

    /**
     * Which packages each package may use (top-level packages under dev.tandem; {@code engine.*} is
     * any one engine's folder, which may also use its own sub-packages).
     */
    static final Map<String, Set<String>> ALLOWED = Map.of(
            "api", Set.of("serving", "generation", "memory", "model", "engine"),
            "tools", Set.of("generation", "memory", "model", "engine", "engine.*", "onnx"),
            "serving", Set.of("generation", "memory", "model", "engine"),
            "generation", Set.of("model", "engine"),
            "memory", Set.of("model", "engine", "onnx"),
            "model", Set.of("engine", "onnx"),
            "engine", Set.of(),
            "engine.*", Set.of("engine", "onnx"),
            "onnx", Set.of());

    private static final Pattern PACKAGE = Pattern.compile("^package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    /** dev.tandem.x.y.Type: the package is the part before the first capitalised name. */
    private static final Pattern REFERENCE = Pattern.compile("\\bdev\\.tandem((?:\\.[a-z_][\\w]*)+)\\.[A-Z]");

    /** Package (relative to dev.tandem, e.g. "engine.reference") -> packages it uses -> where. */
    static Map<String, Map<String, Set<String>>> dependencies() {
        Map<String, Map<String, Set<String>>> deps = new TreeMap<>();
        try (Stream<Path> files = Files.walk(ROOT)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String code = codeOnly(Files.readString(f));
                Matcher pm = PACKAGE.matcher(code);
                assertTrue(pm.find(), f + " has no package declaration");
                String from = pm.group(1).replaceFirst("^dev\\.tandem\\.?", "");
                Map<String, Set<String>> mine = deps.computeIfAbsent(from, k -> new TreeMap<>());
                Matcher m = REFERENCE.matcher(code);
                while (m.find()) {
                    String to = m.group(1).substring(1);
                    if (!to.equals(from)) {
                        mine.computeIfAbsent(to, k -> new TreeSet<>()).add(f.getFileName().toString());
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return deps;
    }

    /** The source without comments and string, text-block and char literals (a javadoc link is no dependency). */
    static String codeOnly(String s) {
        StringBuilder out = new StringBuilder(s.length());
        int i = 0;
        while (i < s.length()) {
            if (s.startsWith("//", i)) {
                i = s.indexOf('\n', i) < 0 ? s.length() : s.indexOf('\n', i);
            } else if (s.startsWith("/*", i)) {
                int end = s.indexOf("*/", i + 2);
                i = end < 0 ? s.length() : end + 2;
                out.append(' ');
            } else if (s.startsWith("\"\"\"", i)) {
                int end = s.indexOf("\"\"\"", i + 3);
                i = end < 0 ? s.length() : end + 3;
                out.append("\"\"");
            } else if (s.charAt(i) == '"' || s.charAt(i) == '\'') {
                char q = s.charAt(i++);
                while (i < s.length() && s.charAt(i) != q && s.charAt(i) != '\n') {
                    i += s.charAt(i) == '\\' ? 2 : 1;
                }
                i++;
                out.append(q).append(q);
            } else {
                out.append(s.charAt(i++));
            }
        }
        return out.toString();
    }

    /** The rule's name for a package: its top-level package, or "engine.*" for one engine's folder. */
    static String layer(String pkg) {
        return pkg.startsWith("engine.") ? "engine.*" : pkg.contains(".") ? pkg.substring(0, pkg.indexOf('.')) : pkg;
    }

    static String topLevel(String pkg) {
        return pkg.contains(".") ? pkg.substring(0, pkg.indexOf('.')) : pkg;
    }

    @Test
    void everyPackageUsesOnlyThePackagesBelowIt() {
        List<String> violations = new ArrayList<>();
        dependencies().forEach((from, uses) -> {
            Set<String> allowed = ALLOWED.get(layer(from));
            if (allowed == null) {
                violations.add("dev.tandem." + from + " is a new package: add it to " + getClass().getSimpleName()
                        + ".ALLOWED, below the packages that use it");
                return;
            }
            uses.forEach((to, where) -> {
                boolean ownEngineFolder = layer(from).equals("engine.*") && to.startsWith(engineFolder(from) + ".");
                if (!ownEngineFolder && !allowed.contains(layer(to))) {
                    violations.add(from + " -> " + to + " (" + String.join(", ", where) + ")");
                }
            });
        });
        assertEquals(List.of(), violations, "package dependencies against the rule in " + getClass().getSimpleName());
    }

    /** engine.reference.x -> engine.reference */
    static String engineFolder(String pkg) {
        String[] p = pkg.split("\\.");
        return p[0] + "." + p[1];
    }

    @Test
    void topLevelPackagesFormNoCycle() {
        Map<String, Set<String>> graph = new TreeMap<>();
        dependencies().forEach((from, uses) -> uses.keySet().forEach(to -> {
            if (!topLevel(from).equals(topLevel(to))) {
                graph.computeIfAbsent(topLevel(from), k -> new TreeSet<>()).add(topLevel(to));
            }
        }));
        Set<String> cycles = new LinkedHashSet<>();
        for (String start : graph.keySet()) {
            findCycles(start, new ArrayList<>(List.of(start)), graph, cycles);
        }
        assertEquals(Set.of(), cycles, "cycles between packages (engine includes its engines' folders)");
    }

    /** Every path from {@code path}'s last package that comes back to its first, written a -> b -> a. */
    private static void findCycles(String start, List<String> path, Map<String, Set<String>> graph, Set<String> into) {
        for (String next : graph.getOrDefault(path.getLast(), Set.of())) {
            if (next.equals(start)) {
                into.add(String.join(" -> ", path) + " -> " + start);
            } else if (!path.contains(next) && next.compareTo(start) > 0) {  // each cycle once, from its smallest package
                path.add(next);
                findCycles(start, path, graph, into);
                path.removeLast();
            }
        }
    }

    @Test
    void theReaderSeesImportsAndQualifiedNamesButNotCommentsOrStrings() {
        String code = codeOnly("""
                package dev.tandem.x;
                import dev.tandem.engine.CausalLm;
                /** {@link dev.tandem.api.ApiException} */
                class A { String s = "dev.tandem.serving.ModelRegistry"; // dev.tandem.tools.Foo
                  Object o = dev.tandem.generation.AssistOptions.Assistant.DRAFT; }
                """);
        List<String> found = new ArrayList<>();
        Matcher m = REFERENCE.matcher(code);
        while (m.find()) {
            found.add(m.group(1).substring(1));
        }
        assertEquals(List.of("engine", "generation"), found);
    }
}
