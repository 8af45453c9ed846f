package dev.tandem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class MemoryBudgetTest {

    @Test
    void sizesAutoAndUnlimited() {
        assertEquals(2L << 30, MemoryBudget.resolve("2G").bytes());
        assertEquals(512L << 20, MemoryBudget.resolve(" 512Mi ").bytes());
        assertFalse(MemoryBudget.resolve("unlimited").limited());
        assertTrue(MemoryBudget.resolve("auto").source().startsWith("auto"));
    }

    /** The operator sees which setting is wrong, under both of its names, and what it accepts. */
    @ParameterizedTest
    @ValueSource(strings = {"lots", "500MB", "-1G", "1.5G", ""})
    void anInvalidBudgetNamesTheKey(String value) {
        var e = assertThrows(IllegalArgumentException.class, () -> MemoryBudget.resolve(value));
        assertTrue(e.getMessage().contains("tandem.memory.budget") && e.getMessage().contains("TANDEM_MEMORY_BUDGET")
                && e.getMessage().contains("'" + value + "'") && e.getMessage().contains("auto"), e.getMessage());
    }
}
