package dev.tandem.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Server-Sent Events as the OpenAI API streams them: {@code data: {json}} per event, {@code data: [DONE]} at the end. */
final class SseWriter {
    private final OutputStream out;
    private final ObjectMapper json;

    SseWriter(OutputStream out, ObjectMapper json) {
        this.out = out;
        this.json = json;
    }

    void event(Object body) throws IOException {
        out.write(("data: " + json.writeValueAsString(body) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    void done() throws IOException {
        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
        out.flush();
    }
}
