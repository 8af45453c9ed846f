package dev.tandem.engine.openvino;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.openvino.OvApi.ElementType;
import dev.tandem.engine.openvino.OvApi.Status;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Layouts and enum values against the OpenVINO C headers; no runtime needed. */
class OvApiTest {

    @Test
    void structLayoutsMatchTheHeaders() {
        // ov_shape.h: { int64_t rank; int64_t* dims; }
        assertEquals(16, OvApi.SHAPE.byteSize());
        assertEquals(0, OvApi.SHAPE_RANK);
        assertEquals(8, OvApi.SHAPE_DIMS);
        // ov_dimension.h: { int64_t min; int64_t max; }
        assertEquals(16, OvApi.DIMENSION.byteSize());
        assertEquals(0, OvApi.DIM_MIN);
        assertEquals(8, OvApi.DIM_MAX);
        // ov_partial_shape.h: { ov_rank_t rank; ov_dimension_t* dims; }, ov_rank_t = ov_dimension_t
        assertEquals(24, OvApi.PARTIAL_SHAPE.byteSize());
        assertEquals(0, OvApi.PSHAPE_RANK);
        assertEquals(16, OvApi.PSHAPE_DIMS);
        // ov_core.h: { const char* buildNumber; const char* description; }
        assertEquals(16, OvApi.VERSION.byteSize());
        assertEquals(0, OvApi.VERSION_BUILD);
        assertEquals(8, OvApi.VERSION_DESCRIPTION);
    }

    @Test
    void statusCodesMatchOvCommonH() {
        Map<String, Integer> header = new LinkedHashMap<>();
        String[] names = {"OK", "GENERAL_ERROR", "NOT_IMPLEMENTED", "NETWORK_NOT_LOADED", "PARAMETER_MISMATCH",
                "NOT_FOUND", "OUT_OF_BOUNDS", "UNEXPECTED", "REQUEST_BUSY", "RESULT_NOT_READY", "NOT_ALLOCATED",
                "INFER_NOT_STARTED", "NETWORK_NOT_READ", "INFER_CANCELLED", "INVALID_C_PARAM", "UNKNOWN_C_ERROR",
                "NOT_IMPLEMENT_C_METHOD", "UNKNOW_EXCEPTION"};
        for (int i = 0; i < names.length; i++) {
            header.put(names[i], -i);  // OK = 0, GENERAL_ERROR = -1, ... UNKNOW_EXCEPTION = -17
        }
        assertEquals(header.size(), Status.values().length);
        for (Status s : Status.values()) {
            assertEquals(header.get(s.name()), s.code, s.name());
        }
        assertEquals("INVALID_C_PARAM", Status.nameOf(-14));
        assertEquals("unknown status", Status.nameOf(-99));
    }

    @Test
    void elementTypesMatchOvCommonH() {
        // implicit numbering from UNDEFINED = 0U, in header order
        String[] header = {"UNDEFINED", "DYNAMIC", "BOOLEAN", "BF16", "F16", "F32", "F64", "I4", "I8", "I16", "I32", "I64", "U1"};
        assertEquals(header.length, ElementType.values().length);
        for (int i = 0; i < header.length; i++) {
            assertEquals(i, ElementType.valueOf(header[i]).code, header[i]);
        }
        assertEquals(2, ElementType.BOOLEAN.code);
        assertEquals(4, ElementType.F16.code);
        assertEquals(5, ElementType.F32.code);
        assertEquals(11, ElementType.I64.code);
        assertEquals(1, ElementType.BOOLEAN.bytes);
        assertEquals(2, ElementType.F16.bytes);
        assertEquals(4, ElementType.F32.bytes);
        assertEquals(8, ElementType.I64.bytes);
        assertEquals("element type #17", ElementType.nameOf(17));
    }

    @Test
    void exceptionCarriesStatusAndMessage() {
        OpenVinoException e = new OpenVinoException("ov_core_read_model", -1, "Exception from src/frontends/onnx: bad\n");
        assertEquals("GENERAL_ERROR", e.statusName());
        assertEquals(-1, e.statusCode());
        assertEquals("ov_core_read_model failed with GENERAL_ERROR (-1): Exception from src/frontends/onnx: bad", e.getMessage());
        assertTrue(e instanceof dev.tandem.engine.EngineException);
    }

    @Test
    void partialShapeDecoding() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dims = arena.allocate(OvApi.DIMENSION, 4);
            long[][] values = {{1, 1}, {4, 4}, {0, -1}, {8, 8}};  // [1, 4, ?, 8]
            for (int i = 0; i < 4; i++) {
                dims.set(JAVA_LONG, i * 16L, values[i][0]);
                dims.set(JAVA_LONG, i * 16L + 8, values[i][1]);
            }
            MemorySegment ps = arena.allocate(OvApi.PARTIAL_SHAPE);
            ps.set(JAVA_LONG, 0, 4);
            ps.set(JAVA_LONG, 8, 4);
            ps.set(ADDRESS, 16, dims);
            assertArrayEquals(new long[] {1, 4, -1, 8}, OvApi.partialShapeDims(ps));
            // an interval dimension (1..10) is dynamic too
            dims.set(JAVA_LONG, 0, 1);
            dims.set(JAVA_LONG, 8, 10);
            assertArrayEquals(new long[] {-1, 4, -1, 8}, OvApi.partialShapeDims(ps));
            ps.set(JAVA_LONG, 0, -1);
            ps.set(JAVA_LONG, 8, -1);
            assertNull(OvApi.partialShapeDims(ps));
        }
    }

    @Test
    void shapeStructPointsAtItsDims() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = OvApi.shape(arena, 1, 4, 0, 8);
            assertEquals(4, s.get(JAVA_LONG, 0));
            assertArrayEquals(new long[] {1, 4, 0, 8}, s.get(ADDRESS, 8).reinterpret(32).toArray(JAVA_LONG));
        }
    }

    @Test
    void compileModelIsLinkedWithVariadicPropertyPairs() {
        var d = OvApi.compileModelDescriptor(4);
        assertEquals(9, d.argumentLayouts().size());  // core, model, device, size_t, out, then 2 pairs
        assertEquals(JAVA_LONG, d.argumentLayouts().get(3));
        assertTrue(d.argumentLayouts().subList(5, 9).stream().allMatch(l -> l.equals(ADDRESS)));
    }
}
