package dev.tandem.api;

import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.ext.Provider;
import jakarta.ws.rs.ext.ReaderInterceptor;
import jakarta.ws.rs.ext.ReaderInterceptorContext;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Refuses a request body that is not well-formed UTF-8 (RFC 3629) before JSON parsing, with a 400
 * (422 on the TGI routes) naming the byte offset. Jackson rejects bytes that can never start a
 * character, but it decodes overlong forms ({@code C0 AF} and {@code E0 80 AF} become '/', a
 * classic filter bypass) and sequences beyond U+10FFFF into some other character. The JDK's UTF-8
 * decoder rejects those, UTF-8-encoded surrogates ({@code ED A0 80}) and truncated sequences too.
 * Bodies are small (see {@code tandem.limits.max-body-bytes}) and already buffered, so reading them
 * once more costs little.
 */
@Provider
public class StrictUtf8 implements ReaderInterceptor {

    @Override
    public Object aroundReadFrom(ReaderInterceptorContext context) throws IOException, WebApplicationException {
        byte[] body = context.getInputStream().readAllBytes();
        int bad = firstInvalidByte(body);
        if (bad >= 0) {
            throw new ApiException(400, "invalid_request_error", null, "invalid_json", "request body is not valid JSON:"
                    + " it is not well-formed UTF-8 (an invalid, overlong or out-of-range byte sequence at byte " + bad + ")");
        }
        context.setInputStream(new ByteArrayInputStream(body));
        return context.proceed();
    }

    /** The offset of the first byte that is not part of a well-formed UTF-8 sequence, or -1 when all are. */
    static int firstInvalidByte(byte[] bytes) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(4096);
        while (true) {
            CoderResult r = decoder.decode(in, out, true);
            if (r.isError()) {
                return in.position();
            }
            if (r.isUnderflow()) {
                return -1;
            }
            out.clear();  // overflow: the decoded characters are not needed, only the verdict
        }
    }
}
