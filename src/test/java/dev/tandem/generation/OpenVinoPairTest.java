package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.Logits;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.engine.openvino.OpenVinoCausalLm;
import dev.tandem.engine.openvino.OpenVinoOptions;
import dev.tandem.engine.openvino.OpenVinoRuntime;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The bundled pair with the target on OpenVINO instead of ONNX Runtime. The engine contract
 * (EngineContractTest) shows OpenVINO runs a model correctly; this shows the service's own pair
 * decodes the same on it: the same greedy text as ONNX Runtime, assisted greedy equal to plain
 * greedy (the draft on either runtime, and prompt lookup). Skipped with the reason where no
 * OpenVINO runtime loads (the build points OPENVINO_HOME at ../shared/openvino); with CI=true it fails.
 */
class OpenVinoPairTest {
    static final String[] PROMPTS = BundledPairAssistedTest.PROMPTS;
    static final int TOKENS = BundledPairAssistedTest.TOKENS;

    static OpenVinoRuntime runtime;
    static OrtCausalLm ortTarget;
    static OpenVinoCausalLm ovTarget;
    static OrtCausalLm ortDraft;
    static OpenVinoCausalLm ovDraft;
    static TextTokenizer tokenizer;
    static List<Integer> eos;

    /** Loads OpenVINO, or skips the class with the reason (fails instead when CI=true: CI has the runtime). */
    static OpenVinoRuntime openVinoOrSkip() {
        try {
            return OpenVinoRuntime.load();
        } catch (RuntimeException e) {
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                throw new AssertionError("CI=true but the OpenVINO runtime did not load (OPENVINO_HOME="
                        + System.getenv("OPENVINO_HOME") + "): " + e.getMessage(), e);
            }
            Assumptions.abort("OpenVINO runtime not available here: " + e.getMessage());
            throw e;  // not reached
        }
    }

    @BeforeAll
    static void load() {
        runtime = openVinoOrSkip();
        ModelDirectory td = ModelDirectory.open(Path.of("models/kjv-target"));
        ModelDirectory dd = ModelDirectory.open(Path.of("models/kjv-draft"));
        ortTarget = OrtCausalLm.open(td.graph(), td.config().shape(), OnnxRuntimeOptions.defaults());
        ovTarget = OpenVinoCausalLm.open(runtime, td.graph(), td.config().shape(), OpenVinoOptions.defaults());
        ortDraft = OrtCausalLm.open(dd.graph(), dd.config().shape(), OnnxRuntimeOptions.ownThreads(1));
        ovDraft = OpenVinoCausalLm.open(runtime, dd.graph(), dd.config().shape(), OpenVinoOptions.defaults());
        tokenizer = TextTokenizer.load(td);
        eos = td.config().eosTokenIds();
    }

    @AfterAll
    static void close() {
        for (CausalLm lm : new CausalLm[] {ortTarget, ovTarget, ortDraft, ovDraft}) {
            if (lm != null) {
                lm.close();
            }
        }
        if (tokenizer != null) {
            tokenizer.close();
        }
        if (runtime != null) {
            runtime.close();
        }
    }

    static GenerationRequest greedy(String prompt) {
        return new GenerationRequest(tokenizer.encodePrompt(prompt), SamplingParams.greedy(), TOKENS, List.of(), -1, false);
    }

    /**
     * How far apart the two runtimes' logits may be, and so how close two logits must be for their
     * order to count as a tie between runtimes. Both compute the int8 products exactly, but the float
     * parts around them (the per-token activation scale and its rounding to uint8, normalisation,
     * softmax, summation order) differ in the last bits, and a value rounding to the next uint8
     * step moves the logits further: measured, at most 0.093 over every logit of the 24 prefills
     * (logits of the top tokens are around 7). Where the greedy choice is that close, the two
     * runtimes may pick differently and both be right.
     */
    static final float NEAR_TIE = 0.15f;

    /**
     * Greedy text from OpenVINO equals ONNX Runtime's on the held-out prompts, except where the two
     * runtimes' logits do not order the top two tokens alike: there the continuations may part, at a
     * near-tie (measured here: "I can do all things through Christ", token 37, tokens 261 and 271 apart
     * by 0.008 on ORT and 0.009 the other way on OpenVINO). A wrong OpenVINO engine (a shifted position,
     * a lost cache entry, bf16) parts early and on many prompts with clear margins.
     */
    @Test
    void greedyTextEqualsOnnxRuntimesUpToNearTies() {
        float maxDifference = 0;
        for (String p : PROMPTS) {  // how far apart the runtimes' logits are, over every prompt's prefill
            int[] ids = tokenizer.encodePrompt(p);
            float[] a = lastRow(ortTarget, ids);
            float[] b = lastRow(ovTarget, ids);
            for (int i = 0; i < a.length; i++) {
                maxDifference = Math.max(maxDifference, Math.abs(a[i] - b[i]));
            }
        }
        assertTrue(maxDifference < NEAR_TIE, "ORT and OpenVINO logits differ by " + maxDifference);

        PlainDecoder ort = new PlainDecoder(ortTarget, tokenizer, eos);
        PlainDecoder ov = new PlainDecoder(ovTarget, tokenizer, eos);
        List<String> parted = new ArrayList<>();
        for (String p : PROMPTS) {
            GenerationResult expected = ort.generate(greedy(p));
            GenerationResult actual = ov.generate(greedy(p));
            if (!Arrays.equals(expected.tokens(), actual.tokens())) {
                parted.add(checkNearTie(p, expected.tokens(), actual.tokens()));
            } else {
                assertEquals(expected.text(), actual.text());
                assertEquals(expected.finishReason(), actual.finishReason());
            }
        }
        System.out.printf("OpenVinoPairTest: prefill logits within %.4f of ONNX Runtime's; greedy text equal on %d of %d"
                + " prompts; parted at near-ties: %s%n", maxDifference, PROMPTS.length - parted.size(), PROMPTS.length, parted);
        // every parting was checked to be a near tie; how many there are grows with the tokens generated: with the first
        // edition's pair (completions ending with their verse, ~25 tokens) 1-2 of 24 prompts parted, with the second
        // edition's (64 tokens each, no verse end) 8 of 24, each at a margin under 0.09 on both runtimes
        assertTrue(parted.size() <= PROMPTS.length / 2, "too many prompts part to be near-ties: " + parted);
    }

    /**
     * Where two greedy continuations of {@code prompt} part; asserts that both runtimes put the two
     * chosen tokens within {@link #NEAR_TIE} of each other there, and says where and by how much.
     */
    static String checkNearTie(String prompt, int[] a, int[] b) {
        int k = 0;
        while (k < a.length && k < b.length && a[k] == b[k]) {
            k++;
        }
        assertTrue(k < a.length && k < b.length, "one continuation ends early: prompt '" + prompt + "', token " + k);
        int[] promptIds = tokenizer.encodePrompt(prompt);
        int[] context = Arrays.copyOf(promptIds, promptIds.length + k);
        System.arraycopy(a, 0, context, promptIds.length, k);
        float[] ortRow = lastRow(ortTarget, context);
        float[] ovRow = lastRow(ovTarget, context);
        float ortMargin = ortRow[a[k]] - ortRow[b[k]];
        float ovMargin = ovRow[b[k]] - ovRow[a[k]];
        String where = String.format("'%s' token %d: ORT %d over %d by %.4f, OpenVINO %d over %d by %.4f", prompt, k, a[k],
                b[k], ortMargin, b[k], a[k], ovMargin);
        assertTrue(ortMargin < NEAR_TIE && ovMargin < NEAR_TIE, "parted at no near-tie: " + where);
        return where;
    }

    static float[] lastRow(CausalLm lm, int[] context) {
        try (KvCache cache = lm.newCache()) {
            Logits logits = lm.forward(cache, context);
            return logits.row(logits.rows() - 1);
        }
    }

    static final List<AssistOptions> OPTIONS = BundledPairAssistedTest.OPTIONS;

    @Test
    void greedyAssistedEqualsPlainOnOpenVino() {
        PlainDecoder plain = new PlainDecoder(ovTarget, tokenizer, eos);
        AssistedDecoder draftOnOrt = new AssistedDecoder(ovTarget, ortDraft, tokenizer, eos);
        AssistedDecoder draftOnOv = new AssistedDecoder(ovTarget, ovDraft, tokenizer, eos);
        long[] tally = new long[2];
        for (String p : PROMPTS) {
            GenerationResult expected = plain.generate(greedy(p));
            for (AssistOptions o : OPTIONS) {
                for (AssistedDecoder assisted : o.assistant() == Assistant.DRAFT ? List.of(draftOnOrt, draftOnOv)
                        : List.of(draftOnOrt)) {
                    BundledPairAssistedTest.assertEqualsPlain(expected, assisted.generate(greedy(p), o), o, p, tally);
                }
            }
        }
        BundledPairAssistedTest.assertDraftAgrees(tally);
    }
}
