package dev.tandem;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

/** The entry point runs on an older Java than the application's, to say that the application cannot. */
class MainTest {

    static int javaReleaseOf(Class<?> c) throws IOException {
        try (InputStream in = c.getResourceAsStream(c.getSimpleName() + ".class")) {
            DataInputStream d = new DataInputStream(in);
            d.readInt();            // magic
            d.readUnsignedShort();  // minor version
            return d.readUnsignedShort() - 44;  // major 61 is Java 17, 69 is Java 25
        }
    }

    @Test
    void theEntryPointIsCompiledForTheJavaOfQuarkusLauncher() throws IOException {
        assertEquals(17, javaReleaseOf(Main.class), "dev.tandem.Main must stay in src/main/launcher (compiled for Java 17)");
    }

    @Test
    void itChecksForTheReleaseTheApplicationIsCompiledFor() throws IOException {
        assertEquals(javaReleaseOf(dev.tandem.serving.TandemConfig.class), Main.REQUIRED_JAVA);
    }

    @Test
    void anOlderJavaIsToldWhatIsNeeded() {
        String m = Main.tooOld(17, "17.0.15", "/usr/lib/jvm/java-17-openjdk-amd64");
        assertTrue(m.contains("needs Java 25 or newer") && m.contains("Java 17.0.15")
                && m.contains("/usr/lib/jvm/java-17-openjdk-amd64"), m);
        assertNull(Main.tooOld(25, "25.0.1", "/opt/jdk-25"));
        assertNull(Main.tooOld(26, "26", "/opt/jdk-26"));
    }
}
