package dev.tandem.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Which byte sequences are well-formed UTF-8 (RFC 3629, Table 3-7 of the Unicode standard). */
class StrictUtf8Test {

    static byte[] hex(String h) {
        String[] parts = h.trim().split("\\s+");
        byte[] b = new byte[parts.length];
        for (int i = 0; i < parts.length; i++) {
            b[i] = (byte) Integer.parseInt(parts[i], 16);
        }
        return b;
    }

    @ParameterizedTest(name = "{0}: {2}")
    @CsvSource(delimiter = '|', textBlock = """
            41 2F                | -1 | ASCII
            C3 A9                | -1 | é
            E2 82 AC             | -1 | €
            F0 9F 98 80          | -1 | an emoji (4 bytes)
            F4 8F BF BF          | -1 | U+10FFFF, the last code point
            EF BB BF 7B 7D       | -1 | a byte-order mark
            41 C0 AF             |  1 | overlong '/' in 2 bytes
            C1 BF                |  0 | overlong in 2 bytes
            E0 80 AF             |  0 | overlong '/' in 3 bytes
            F0 80 80 AF          |  0 | overlong '/' in 4 bytes
            ED A0 80             |  0 | a surrogate (U+D800) encoded in UTF-8
            ED BF BF             |  0 | a surrogate (U+DFFF) encoded in UTF-8
            F4 90 80 80          |  0 | beyond U+10FFFF
            F5 80 80 80          |  0 | beyond U+10FFFF (lead byte F5)
            FF FE                |  0 | bytes that never occur
            41 42 E2 82          |  2 | a truncated sequence at the end
            80                   |  0 | a lone continuation byte
            """)
    void firstInvalidByte(String bytes, int expected, String what) {
        assertEquals(expected, StrictUtf8.firstInvalidByte(hex(bytes)), what);
    }

    @org.junit.jupiter.api.Test
    void aLongValidBodyIsValid() {
        byte[] body = "{\"prompt\":\"naïve café ✓ 😀\"}".repeat(2000).getBytes(StandardCharsets.UTF_8);
        assertEquals(-1, StrictUtf8.firstInvalidByte(body));
    }
}
