package dev.tandem.engine.openvino;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.ModelShape;
import dev.tandem.engine.openvino.OvApi.ElementType;
import dev.tandem.engine.openvino.OvApi.PortInfo;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What open() derives from a graph's ports, checked without a runtime. */
class OpenVinoCausalLmPlanTest {
    static final Path GRAPH = Path.of("/models/stories/model.onnx");
    static final ModelShape CONFIG = new ModelShape(512, 256, 2, 4, 8, 4);
    static final int I64 = ElementType.I64.code;
    static final int F32 = ElementType.F32.code;

    static Map<String, PortInfo> ports(Object... nameTypeDims) {
        Map<String, PortInfo> m = new LinkedHashMap<>();
        for (int i = 0; i < nameTypeDims.length; i += 3) {
            m.put((String) nameTypeDims[i], new PortInfo((String) nameTypeDims[i], (int) nameTypeDims[i + 1], (long[]) nameTypeDims[i + 2]));
        }
        return m;
    }

    static Map<String, PortInfo> optimumInputs(int kvType, long heads, long headDim) {
        Map<String, PortInfo> m = ports("input_ids", I64, new long[] {-1, -1}, "attention_mask", I64, new long[] {-1, -1},
                "position_ids", I64, new long[] {-1, -1});
        for (int l = 0; l < 2; l++) {
            for (String kv : new String[] {"key", "value"}) {
                String n = "past_key_values." + l + "." + kv;
                m.put(n, new PortInfo(n, kvType, new long[] {-1, heads, -1, headDim}));
            }
        }
        return m;
    }

    static Map<String, PortInfo> optimumOutputs(int kvType, long vocab) {
        Map<String, PortInfo> m = ports("logits", F32, new long[] {-1, -1, vocab});
        for (int l = 0; l < 2; l++) {
            for (String kv : new String[] {"key", "value"}) {
                String n = "present." + l + "." + kv;
                m.put(n, new PortInfo(n, kvType, new long[] {-1, 4, -1, 8}));
            }
        }
        return m;
    }

    @Test
    void optimumLayoutIsAccepted() {
        var plan = OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), optimumOutputs(F32, 512), CONFIG);
        assertEquals(CONFIG, plan.shape());
        assertEquals(F32, plan.kvType());
        assertEquals("past_key_values.1.value", plan.pastNames().get(3));
        assertEquals("present.0.value", plan.presentNames().get(1));
        assertTrue(plan.hasAttentionMask());
        assertTrue(plan.hasPositionIds());
        assertFalse(plan.hasUseCacheBranch());
    }

    @Test
    void dynamicDimensionsComeFromConfigAndF16CachesAreTwoBytes() {
        int f16 = ElementType.F16.code;
        var plan = OpenVinoCausalLm.plan(GRAPH, optimumInputs(f16, -1, -1), optimumOutputs(f16, -1), CONFIG);
        assertEquals(new ModelShape(512, 256, 2, 4, 8, 2), plan.shape());
    }

    static Map<String, PortInfo> statefulInputs() {
        return ports("input_ids", I64, new long[] {-1, -1}, "attention_mask", I64, new long[] {-1, -1},
                "position_ids", I64, new long[] {-1, -1}, "beam_idx", ElementType.I32.code, new long[] {-1});
    }

    @Test
    void statefulModelsArePlannedWithoutPastTensors() {
        var plan = OpenVinoCausalLm.plan(GRAPH, statefulInputs(), ports("logits", F32, new long[] {-1, -1, 512}), CONFIG);
        assertTrue(plan.stateful());
        assertEquals(CONFIG, plan.shape(), "the cache geometry is config.json's: the graph does not show it");
        assertTrue(plan.pastNames().isEmpty());
        assertTrue(plan.presentNames().isEmpty());
        assertTrue(plan.hasAttentionMask());
        assertTrue(plan.hasPositionIds());
        assertFalse(OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), optimumOutputs(F32, 512), CONFIG).stateful());
        // the vocabulary is still checked against the logits port
        var e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, statefulInputs(), ports("logits", F32, new long[] {-1, -1, 500}), CONFIG));
        assertTrue(e.getMessage().contains("vocabulary size"), e.getMessage());
    }

    @Test
    void malformedStatefulAndCachelessGraphsAreRefused() {
        var logits = ports("logits", F32, new long[] {-1, -1, 512});
        // no past inputs and no beam_idx: an export without a cache (or stateful without beam_idx)
        var noPast = ports("input_ids", I64, new long[] {-1, -1}, "attention_mask", I64, new long[] {-1, -1});
        var e = assertThrows(IllegalArgumentException.class, () -> OpenVinoCausalLm.plan(GRAPH, noPast, logits, CONFIG));
        assertTrue(e.getMessage().startsWith(GRAPH + ": has neither past_key_values inputs nor a beam_idx input"), e.getMessage());
        assertTrue(e.getMessage().contains("--disable-stateful"), e.getMessage());

        var both = optimumInputs(F32, 4, 8);
        both.put("beam_idx", new PortInfo("beam_idx", ElementType.I32.code, new long[] {-1}));
        e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, both, optimumOutputs(F32, 512), CONFIG));
        assertEquals(GRAPH + ": has both a beam_idx input (a stateful model) and past_key_values inputs", e.getMessage());

        var i64Beam = statefulInputs();
        i64Beam.put("beam_idx", new PortInfo("beam_idx", I64, new long[] {-1}));
        e = assertThrows(IllegalArgumentException.class, () -> OpenVinoCausalLm.plan(GRAPH, i64Beam, logits, CONFIG));
        assertEquals(GRAPH + ": beam_idx must be i32, is i64", e.getMessage());

        var extra = statefulInputs();
        extra.put("token_type_ids", new PortInfo("token_type_ids", I64, new long[] {-1, -1}));
        e = assertThrows(IllegalArgumentException.class, () -> OpenVinoCausalLm.plan(GRAPH, extra, logits, CONFIG));
        assertTrue(e.getMessage().contains("'token_type_ids'"), e.getMessage());

        var noIds = statefulInputs();
        noIds.remove("input_ids");
        e = assertThrows(IllegalArgumentException.class, () -> OpenVinoCausalLm.plan(GRAPH, noIds, logits, CONFIG));
        assertTrue(e.getMessage().contains("has no input 'input_ids'"), e.getMessage());
    }

    @Test
    void mismatchesNameTheFileAndTheProblem() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 2, 8), optimumOutputs(F32, 512), CONFIG));
        assertEquals(GRAPH + ": the graph's key/value heads (num_key_value_heads) is 2 but config.json says 4", e.getMessage());

        var inputs = optimumInputs(F32, 4, 8);
        inputs.put("token_type_ids", new PortInfo("token_type_ids", I64, new long[] {-1, -1}));
        e = assertThrows(IllegalArgumentException.class, () -> OpenVinoCausalLm.plan(GRAPH, inputs, optimumOutputs(F32, 512), CONFIG));
        assertTrue(e.getMessage().contains("'token_type_ids'"), e.getMessage());

        var f16Logits = optimumOutputs(F32, 512);  // an fp16 Optimum export: planned, widened after each step
        f16Logits.put("logits", new PortInfo("logits", ElementType.F16.code, new long[] {-1, -1, 512}));
        assertTrue(OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), f16Logits, CONFIG).halfLogits());
        var i64Logits = optimumOutputs(F32, 512);
        i64Logits.put("logits", new PortInfo("logits", I64, new long[] {-1, -1, 512}));
        e = assertThrows(IllegalArgumentException.class, () -> OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), i64Logits, CONFIG));
        assertEquals(GRAPH + ": logits must be f32 or f16, are i64", e.getMessage());

        var fewerLayers = new ModelShape(512, 256, 3, 4, 8, 4);
        e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), optimumOutputs(F32, 512), fewerLayers));
        assertTrue(e.getMessage().contains("num_hidden_layers=3"), e.getMessage());
    }

    /** A slots graph (metadata tandem.kv_layout=slots) feeds no attention mask and needs position_ids; other layouts are refused. */
    @Test
    void slotsLayoutIsRecognisedFromTheMetadata() {
        var inputs = optimumInputs(F32, 4, 8);
        inputs.remove("attention_mask");
        var plan = OpenVinoCausalLm.plan(GRAPH, inputs, optimumOutputs(F32, 512), CONFIG, "slots");
        assertTrue(plan.slots());
        assertFalse(plan.hasAttentionMask());
        assertFalse(OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), optimumOutputs(F32, 512), CONFIG).slots());

        var withMask = optimumInputs(F32, 4, 8);
        var e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, withMask, optimumOutputs(F32, 512), CONFIG, "slots"));
        assertTrue(e.getMessage().contains("'attention_mask'"), e.getMessage());
        inputs.remove("position_ids");
        e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, inputs, optimumOutputs(F32, 512), CONFIG, "slots"));
        assertTrue(e.getMessage().contains("no input 'position_ids'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> OpenVinoCausalLm.plan(GRAPH, optimumInputs(F32, 4, 8), optimumOutputs(F32, 512), CONFIG, "paged"));
        assertTrue(e.getMessage().contains("tandem.kv_layout=paged"), e.getMessage());
    }
}
