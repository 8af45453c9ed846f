package dev.tandem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.ModelDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A graph whose weights live in an external data file (src/test/resources/models/slots-tiny-external: the
 * slots-tiny fixture re-saved as model.onnx + model.onnx_data) is inventoried and planned as the in-file graph,
 * its weights' bytes counted from the data file; a SHA256SUMS manifest must cover that file.
 */
class ExternalDataInventoryTest {
    static final Path IN_FILE = Path.of("src/test/resources/models/slots-tiny");
    static final Path EXTERNAL = Path.of("src/test/resources/models/slots-tiny-external");

    @Test
    void inventoryOfTheExternalCopyIsTheInFileGraphs() throws IOException {
        WeightInventory in = WeightInventory.read(IN_FILE.resolve("model.onnx"), true);
        WeightInventory ex = WeightInventory.read(EXTERNAL.resolve("model.onnx"), true);
        assertTrue(in.parameters() > 100_000, "the fixture's weights are counted: " + in);
        assertEquals(in.parameters(), ex.parameters());
        assertEquals(in.parameterBytes(), ex.parameterBytes());
        assertEquals(in.parametersByDtype(), ex.parametersByDtype());
        assertEquals(in.overheadBytes(), ex.overheadBytes());
        assertEquals(in.tiedCopyElements(), ex.tiedCopyElements());
        assertEquals(in.tiedCopyBytes(), ex.tiedCopyBytes());
        assertEquals(in.constantBytes(), ex.constantBytes());
        assertEquals(in.initializerBytes(), ex.initializerBytes());
        assertEquals(in.notes(), ex.notes());
        assertEquals(List.of(), in.dataFiles());
        Path data = EXTERNAL.resolve("model.onnx_data").toAbsolutePath().normalize();
        assertEquals(List.of(data), ex.dataFiles());
        // every initializer went out (size_threshold 0): their bytes are the data file's
        assertEquals(Files.size(data), ex.initializerBytes());
    }

    @Test
    void planCountsTheDataFileOnDisk() throws IOException {
        MemoryPlan.Weights w = MemoryPlanTest.plan(EXTERNAL, MemoryBudget.UNLIMITED).weights();
        MemoryPlan.Weights in = MemoryPlanTest.plan(IN_FILE, MemoryBudget.UNLIMITED).weights();
        assertEquals(in.parameters(), w.parameters());
        assertEquals(in.parameterBytes(), w.parameterBytes());
        assertEquals(Files.size(EXTERNAL.resolve("model.onnx")) + Files.size(EXTERNAL.resolve("model.onnx_data")),
                w.graphFileBytes());
    }

    /** Start-up names the tensor and the data file, whichever engine would serve the model. */
    @Test
    void truncatedOrMissingDataFileFailsTheModelDirectory(@TempDir Path tmp) throws IOException {
        Path d = copyWithManifest(tmp, "model.onnx");
        Files.delete(d.resolve(ModelDirectory.MANIFEST));
        byte[] data = Files.readAllBytes(d.resolve("model.onnx_data"));
        Files.write(d.resolve("model.onnx_data"), java.util.Arrays.copyOf(data, data.length - 100));
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(d));
        assertTrue(e.getMessage().startsWith(d.toAbsolutePath().normalize().resolve("model.onnx") + ": tensor '")
                && e.getMessage().contains("of 'model.onnx_data', which holds " + (data.length - 100) + " bytes (truncated?)"),
                e.getMessage());
        Files.delete(d.resolve("model.onnx_data"));
        e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(d));
        assertTrue(e.getMessage().contains("cannot read its external data file 'model.onnx_data': missing"), e.getMessage());
    }

    /** A graph naming a data file outside its directory fails start-up before any engine (or file) opens it. */
    @Test
    void hostileLocationFailsTheModelDirectory(@TempDir Path tmp) throws IOException {
        Path d = copyWithManifest(Files.createDirectory(tmp.resolve("m")), "model.onnx");
        Files.delete(d.resolve(ModelDirectory.MANIFEST));
        Files.write(tmp.resolve("secret.bin"), new byte[8]);
        for (String location : List.of("../secret.bin", tmp.resolve("secret.bin").toString())) {
            var graph = new dev.tandem.onnx.OnnxFileTest.Proto().message(1, new dev.tandem.onnx.OnnxFileTest.Proto()
                    .string(1, "x").string(1, "w").string(2, "y").string(4, "MatMul"))
                    .message(5, dev.tandem.onnx.OnnxFileTest.externalTensor("w", new long[] {2}, location, null, null));
            Files.write(d.resolve("model.onnx"), new dev.tandem.onnx.OnnxFileTest.Proto().varint(1, 8).message(7, graph).toBytes());
            var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(d));
            assertTrue(e.getMessage().contains("model.onnx: tensor 'w': external data location '" + location + "' is refused: "),
                    e.getMessage());
        }
    }

    /** A copy of the external fixture in {@code to}, with a manifest listing {@code listed}. */
    static Path copyWithManifest(Path to, String... listed) throws IOException {
        try (Stream<Path> files = Files.list(EXTERNAL)) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
        StringBuilder manifest = new StringBuilder();
        for (String name : listed) {
            manifest.append(sha256(to.resolve(name))).append("  ").append(name).append('\n');
        }
        Files.writeString(to.resolve(ModelDirectory.MANIFEST), manifest);
        return to;
    }

    @Test
    void manifestMustCoverTheDataFile(@TempDir Path tmp) throws IOException {
        Path partial = copyWithManifest(Files.createDirectory(tmp.resolve("partial")), "model.onnx", "config.json");
        var e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(partial));
        assertEquals(partial.toAbsolutePath().normalize().resolve("SHA256SUMS") + ": does not list model.onnx_data, which"
                + " the model loads: add its sha256 (sha256sum model.onnx_data)", e.getMessage());

        Path full = copyWithManifest(Files.createDirectory(tmp.resolve("full")), "model.onnx", "model.onnx_data");
        ModelDirectory.open(full);  // covered: loads
        byte[] data = Files.readAllBytes(full.resolve("model.onnx_data"));
        data[data.length / 2] ^= 1;
        Files.write(full.resolve("model.onnx_data"), data);
        e = assertThrows(IllegalArgumentException.class, () -> ModelDirectory.open(full));
        assertTrue(e.getMessage().contains("model.onnx_data: checksum mismatch"), e.getMessage());
    }

    static String sha256(Path file) throws IOException {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(Files.readAllBytes(file)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
