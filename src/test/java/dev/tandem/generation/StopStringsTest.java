package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopStringsTest {
    @Test
    void findsAStopStringSpanningPieces() {
        StopStrings s = new StopStrings(List.of("END", "\n\n"));
        StringBuilder text = new StringBuilder("hello E");
        assertEquals(-1, s.find(text, 6));
        int before = text.length();
        text.append("ND more");
        assertEquals(6, s.find(text, before));
    }

    @Test
    void earliestStopWins() {
        StopStrings s = new StopStrings(List.of("b", "a"));
        assertEquals(0, s.find("xab".substring(1), 0));
    }

    @Test
    void noStops() {
        assertEquals(-1, new StopStrings(List.of()).find("anything", 0));
    }
}
