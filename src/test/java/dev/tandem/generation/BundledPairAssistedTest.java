package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.InvariantGraphs;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The pair the service ships (kjv-target assisted by kjv-draft): greedy assisted decoding gives plain decoding's
 * tokens, on held-out scripture the models never trained on; on both graphs each model directory carries (the
 * portable int8 {@code model.onnx} OpenVINO and the reference engine run, and {@code model_optimized.onnx}, the one
 * ONNX Runtime runs).
 */
class BundledPairAssistedTest {
    /** Openings of verses from the held-out books (Ruth, Ecclesiastes, Joel, Philippians, 1 John). */
    static final String[] PROMPTS = {
        "Now it came to pass in the days when the judges ruled, that there", "And they said unto",
        "So they two went until they came to Bethlehem. And it", "And the servant that was set over the reapers",
        "And when she was risen up to glean,", "And now, my daughter, fear not; I will do to",
        "And all the people that were in the gate, and the elders, said, We are witnesses. The",
        "All things are full of labour; man", "And I gave my heart to know",
        "I gathered me also silver and gold, and the peculiar treasure of kings",
        "For God giveth to a man that is good in his sight wisdom, and knowledge, and",
        "Better is an handful with", "The heart of the wise is in", "Consider the work of God:",
        "Hear this, ye old men, and give ear,", "Blow ye the trumpet in Zion, and sound an alarm in my holy mountain:",
        "And it shall come to pass afterward, that I will pour out my spirit", "Paul and Timotheus, the servants of Jesus Christ,",
        "Rejoice in the Lord alway:", "I can do all things through Christ",
        "That which was from the beginning, which we have heard,", "My little children, these things write I unto you,",
        "Beloved, let us love one another: for love is of God;", "",
    };
    static final int TOKENS = 64;

    static TextTokenizer tokenizer;
    static final Map<String, Pair> PAIRS = new HashMap<>();

    /** Target and draft both on {@code graph} (a file of each model directory), opened as the service opens them. */
    record Pair(CausalLm target, OrtCausalLm draft, PlainDecoder plain, AssistedDecoder assisted,
                PlainDecoder plainIgnoringEos, AssistedDecoder assistedIgnoringEos) {
        static Pair open(String graph) {
            ModelDirectory td = ModelDirectory.open(Path.of("models/kjv-target"), List.of(), Optional.of(graph));
            ModelDirectory dd = ModelDirectory.open(Path.of("models/kjv-draft"), List.of(), Optional.of(graph));
            // as the service serves it (padded where that makes it step-invariant), or the test is skipped
            CausalLm target = InvariantGraphs.served(OrtCausalLm.open(td.graph(), td.config().shape(),
                    OnnxRuntimeOptions.defaults()), graph);
            OrtCausalLm draft = OrtCausalLm.open(dd.graph(), dd.config().shape(), OnnxRuntimeOptions.ownThreads(1));
            List<Integer> eos = td.config().eosTokenIds();
            // EOS not ending a run: every prompt yields TOKENS tokens (the models then write another passage or
            // repeat </s>): a longer test of equality
            return new Pair(target, draft, new PlainDecoder(target, tokenizer, eos),
                    new AssistedDecoder(target, draft, tokenizer, eos), new PlainDecoder(target, tokenizer, List.of()),
                    new AssistedDecoder(target, draft, tokenizer, List.of()));
        }
    }

    static Pair pair(String graph) {
        return PAIRS.computeIfAbsent(graph, Pair::open);
    }

    @BeforeAll
    static void load() {
        tokenizer = TextTokenizer.load(ModelDirectory.open(Path.of("models/kjv-target")));
    }

    @AfterAll
    static void close() {
        for (Pair p : PAIRS.values()) {
            p.target().close();
            p.draft().close();
        }
        tokenizer.close();
    }

    static final List<AssistOptions> OPTIONS = List.of(new AssistOptions(Assistant.DRAFT, 5, Schedule.CONSTANT, 0, 3),
            new AssistOptions(Assistant.DRAFT, 3, Schedule.HEURISTIC, 0, 3),
            new AssistOptions(Assistant.PROMPT_LOOKUP, 5, Schedule.CONSTANT, 0, 2));

    static GenerationRequest greedy(String prompt) {
        return new GenerationRequest(tokenizer.encodePrompt(prompt), SamplingParams.greedy(), TOKENS, List.of(), -1, false);
    }

    @ParameterizedTest
    @ValueSource(strings = {"model.onnx", "model_optimized.onnx"})
    void greedyAssistedEqualsPlainWithTheBundledDraft(String graph) {
        Pair pair = pair(graph);
        long[] tally = new long[2];
        for (AssistOptions o : OPTIONS) {
            for (String p : PROMPTS) {
                assertEqualsPlain(pair.plain().generate(greedy(p)), pair.assisted().generate(greedy(p), o), o, p, tally);
            }
        }
        assertDraftAgrees(tally);
    }

    /**
     * A greedy assisted result must be plain decoding's, token for token; a draft's rounds and accepted
     * tokens are added to {@code tally} (rounds, accepted).
     */
    static void assertEqualsPlain(GenerationResult expected, GenerationResult actual, AssistOptions o, String prompt,
                                  long[] tally) {
        assertArrayEquals(expected.tokens(), actual.tokens(), o + ", prompt '" + prompt + "'");
        assertEquals(expected.text(), actual.text());
        assertEquals(expected.finishReason(), actual.finishReason());
        if (o.assistant() == Assistant.DRAFT) {
            tally[0] += actual.stats().numSpecSteps();
            tally[1] += actual.stats().numAcceptedTokens();
        }
    }

    /**
     * The draft was trained to agree with the target (per-token greedy agreement 0.87, see its model
     * card), so a round emits well over 2 tokens on average; a mismatched or broken pair accepts next to
     * nothing (~1).
     */
    static void assertDraftAgrees(long[] tally) {
        double meanAcceptanceLength = 1 + (double) tally[1] / tally[0];
        assertTrue(meanAcceptanceLength > 2, "mean acceptance length " + meanAcceptanceLength);
    }

    @ParameterizedTest
    @ValueSource(strings = {"model.onnx", "model_optimized.onnx"})
    void greedyAssistedEqualsPlainOverTheFullLengthIgnoringEos(String graph) {
        Pair pair = pair(graph);
        for (AssistOptions o : OPTIONS.subList(0, 2)) {
            for (String p : PROMPTS) {
                GenerationResult expected = pair.plainIgnoringEos().generate(greedy(p));
                GenerationResult actual = pair.assistedIgnoringEos().generate(greedy(p), o);
                assertEquals(TOKENS, expected.completionTokens());
                assertArrayEquals(expected.tokens(), actual.tokens(), o + ", prompt '" + p + "'");
            }
        }
    }
}
