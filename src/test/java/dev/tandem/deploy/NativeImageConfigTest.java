package dev.tandem.deploy;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The native-image registration we ship (META-INF/native-image/dev.tandem/tandem) names classes and
 * resources that exist: a typo there would only surface in a native build, which cannot run here.
 */
class NativeImageConfigTest {
    static final String DIR = "META-INF/native-image/dev.tandem/tandem/";

    static JsonNode read(String name) throws IOException {
        try (InputStream in = NativeImageConfigTest.class.getClassLoader().getResourceAsStream(DIR + name)) {
            assertNotNull(in, name);
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    void jniClassesExist() throws IOException {
        JsonNode jni = read("jni-config.json");
        assertTrue(jni.size() > 20);
        for (JsonNode c : jni) {
            assertDoesNotThrow(() -> Class.forName(c.path("name").asText(), false, getClass().getClassLoader()),
                    c.path("name").asText());
        }
    }

    @Test
    void nativeLibrariesAreOnTheClasspathWhereTheResourcePatternsLook() throws IOException {
        read("resource-config.json");
        for (String r : List.of("ai/onnxruntime/native/linux-x64/libonnxruntime.so",
                "ai/onnxruntime/native/linux-x64/libonnxruntime4j_jni.so", "native/lib/linux-x86_64/cpu/libtokenizers.so",
                "native/lib/tokenizers.properties")) {
            assertNotNull(getClass().getClassLoader().getResource(r), r);
        }
    }
}
