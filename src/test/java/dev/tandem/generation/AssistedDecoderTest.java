package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Assisted decoding is lossless: greedy output equals plain output token for token, whatever the assistant. */
@RequiresSharedModels
class AssistedDecoderTest {
    static final String[] PROMPTS = {
        "", "Once upon a time", "The little dog", "Tom and Sue went to the park", "Lily saw a big red ball",
        "One day, a cat", "The sun was hot and", "Mom said", "He was very sad because", "They played all day",
        "A bird sang", "The boy had a toy car", "She wanted to go", "It was a rainy day", "The old tree",
        "Ben and his friend", "In the garden, there was", "The fish swam", "At night, the moon", "Anna liked to draw",
        "Once upon a time, there was a little girl named Lily. She loved to play outside. Lily loved to play",
    };

    static ModelDirectory dir;
    static CausalLm lm;
    static TextTokenizer tokenizer;
    static PlainDecoder plain;

    @BeforeAll
    static void load() {
        dir = ModelDirectory.open(SharedModels.stories260kHf());
        lm = OrtCausalLm.open(dir.graph(), dir.config().shape(), OnnxRuntimeOptions.defaults());
        tokenizer = TextTokenizer.load(dir);
        plain = new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds());
    }

    @AfterAll
    static void close() {
        lm.close();
        tokenizer.close();
    }

    static GenerationRequest greedy(String prompt, int maxTokens) {
        return new GenerationRequest(tokenizer.encodePrompt(prompt), SamplingParams.greedy(), maxTokens, List.of(), -1, false);
    }

    static AssistOptions options(Assistant a, int k, Schedule s, double threshold) {
        return new AssistOptions(a, k, s, threshold, 3);
    }

    /** Runs every prompt both ways and returns the assisted runs' statistics. */
    static List<DecodingStats> assertSameAsPlain(AssistedDecoder assisted, AssistOptions options) {
        List<DecodingStats> stats = new ArrayList<>();
        for (String p : PROMPTS) {
            GenerationRequest req = greedy(p, 64);
            GenerationResult expected = plain.generate(req);
            GenerationResult actual = assisted.generate(req, options);
            assertArrayEquals(expected.tokens(), actual.tokens(), "tokens for prompt '" + p + "'");
            assertEquals(expected.text(), actual.text());
            assertEquals(expected.finishReason(), actual.finishReason());
            assertTrue(actual.stats().assisted());
            stats.add(actual.stats());
        }
        return stats;
    }

    static int sum(List<DecodingStats> stats, java.util.function.ToIntFunction<DecodingStats> f) {
        return stats.stream().mapToInt(f).sum();
    }

    @Test
    void promptLookupKeepsTheKnownGoodText() {
        AssistedDecoder d = new AssistedDecoder(lm, null, tokenizer, dir.config().eosTokenIds());
        GenerationResult r = d.generate(greedy("", 60), options(Assistant.PROMPT_LOOKUP, 5, Schedule.CONSTANT, 0));
        assertEquals(SharedModels.STORIES_GREEDY_60, r.text());
        assertTrue(r.stats().numDraftTokens() > 0, "the text repeats itself, so prompt lookup proposes something");
    }

    @Test
    void promptLookupEqualsPlain() {
        AssistedDecoder d = new AssistedDecoder(lm, null, tokenizer, dir.config().eosTokenIds());
        List<DecodingStats> s = assertSameAsPlain(d, options(Assistant.PROMPT_LOOKUP, 4, Schedule.CONSTANT, 0));
        assertTrue(sum(s, DecodingStats::numAcceptedTokens) > 0);
        assertTrue(sum(s, DecodingStats::numAcceptedTokens) < sum(s, DecodingStats::numDraftTokens), "some rejections");
    }

    @Test
    void theTargetAsItsOwnDraftAcceptsEverything() {
        AssistedDecoder d = new AssistedDecoder(lm, lm, tokenizer, dir.config().eosTokenIds());
        for (Schedule schedule : Schedule.values()) {
            List<DecodingStats> s = assertSameAsPlain(d, options(Assistant.DRAFT, 5, schedule, 0));
            int drafted = sum(s, DecodingStats::numDraftTokens);
            assertTrue(drafted > 0);
            assertEquals(drafted, sum(s, DecodingStats::numAcceptedTokens), "acceptance must be 1.0");
        }
    }

    @Test
    void aPoorDraftIsCorrectedByTheTarget() {
        AssistedDecoder d = new AssistedDecoder(lm, new NoisyLm(lm, 6f), tokenizer, dir.config().eosTokenIds());
        for (int k : new int[] {1, 3, 8}) {
            List<DecodingStats> s = assertSameAsPlain(d, options(Assistant.DRAFT, k, Schedule.CONSTANT, 0));
            int drafted = sum(s, DecodingStats::numDraftTokens);
            int accepted = sum(s, DecodingStats::numAcceptedTokens);
            assertTrue(accepted < drafted * 0.9, "the noisy draft must be rejected often: " + accepted + "/" + drafted);
            assertTrue(accepted > 0, "and accepted sometimes");
        }
        assertSameAsPlain(d, options(Assistant.DRAFT, 6, Schedule.HEURISTIC, 0));
        List<DecodingStats> s = assertSameAsPlain(d, options(Assistant.DRAFT, 8, Schedule.CONSTANT, 0.6));
        double perRound = sum(s, DecodingStats::numDraftTokens) / (double) sum(s, DecodingStats::numSpecSteps);
        assertTrue(perRound < 8, "the confidence threshold ends rounds early: " + perRound);
    }

    @Test
    void statisticsAddUp() {
        AssistedDecoder d = new AssistedDecoder(lm, new NoisyLm(lm, 4f), tokenizer, dir.config().eosTokenIds());
        GenerationResult r = d.generate(greedy("Once upon a time", 64), options(Assistant.DRAFT, 4, Schedule.CONSTANT, 0));
        DecodingStats s = r.stats();
        assertEquals("draft", s.assistant());
        assertEquals(s.numAcceptedTokens(), Arrays.stream(s.acceptedPerPosition()).sum());
        assertTrue(s.acceptedPerPosition().length <= 4);
        for (int i = 1; i < s.acceptedPerPosition().length; i++) {
            assertTrue(s.acceptedPerPosition()[i] <= s.acceptedPerPosition()[i - 1], "a later position is accepted only after the earlier ones");
        }
        // every emitted token is an accepted candidate or the target's own token (one per round, one from the prefill)
        assertEquals(r.completionTokens(), s.numAcceptedTokens() + s.numSpecSteps() + 1
                + (r.completionTokens() - s.numAcceptedTokens() - s.numSpecSteps() - 1));
        assertEquals(s.numDraftTokens() == 0 ? 0 : (double) s.numAcceptedTokens() / s.numDraftTokens(), s.draftAcceptanceRate());
    }

    @Test
    void afterRejectedRoundsTheTargetCacheEqualsAFreshPrefill() {
        AssistedDecoder d = new AssistedDecoder(lm, new NoisyLm(lm, 6f), tokenizer, dir.config().eosTokenIds());
        int[] checked = {0};
        d.generate(greedy("Once upon a time", 48), options(Assistant.DRAFT, 5, Schedule.CONSTANT, 0),
                (cache, seq, length, proposed, accepted) -> {
                    if (accepted == proposed) {
                        return;
                    }
                    assertEquals(length - 1, cache.length(), "the cache holds the sequence but its newest token");
                    float[] resumed = lm.forward(cache, seq, length - 1, 1).row(0);
                    cache.truncate(length - 1);  // leave the decoder's cache as it was
                    try (KvCache fresh = lm.newCache()) {
                        float[] prefill = lm.forward(fresh, seq, 0, length).row(length - 1);
                        for (int i = 0; i < prefill.length; i++) {
                            assertEquals(prefill[i], resumed[i], 1e-4, "logit " + i);
                        }
                    }
                    checked[0]++;
                });
        assertTrue(checked[0] >= 3, "rejected rounds checked: " + checked[0]);
    }

    @Test
    void endsInsideAnAcceptedBlockLikePlainDecoding() {
        AssistedDecoder d = new AssistedDecoder(lm, lm, tokenizer, dir.config().eosTokenIds());
        AssistOptions o = options(Assistant.DRAFT, 8, Schedule.CONSTANT, 0);
        for (int max : new int[] {1, 2, 7, 13}) {  // max_tokens reached inside a block
            GenerationRequest req = greedy("Once upon a time", max);
            assertArrayEquals(plain.generate(req).tokens(), d.generate(req, o).tokens(), "max_tokens " + max);
        }
        GenerationRequest stop = new GenerationRequest(tokenizer.encodePrompt(""), SamplingParams.greedy(), 60,
                List.of("Lily"), 2, false);
        GenerationResult p = plain.generate(stop);
        GenerationResult a = d.generate(stop, o);
        assertEquals("Once upon a time, there was a little girl named ", a.text());
        assertEquals(p.text(), a.text());
        assertArrayEquals(p.tokens(), a.tokens(), "a stop string inside an accepted block cuts there and counts the same");
        assertEquals(FinishReason.STOP, a.finishReason());
        for (int i = 0; i < p.logprobs().size(); i++) {  // logprobs in assisted mode are the target's
            assertEquals(p.logprobs().get(i).logprob(), a.logprobs().get(i).logprob(), 1e-4);
            assertEquals(p.logprobs().get(i).text(), a.logprobs().get(i).text());
        }
        // the context limit: a prompt that leaves 10 positions
        int[] longPrompt = tokenizer.encodePrompt("Once upon a time ".repeat(200));
        int[] prompt = Arrays.copyOf(longPrompt, lm.shape().maxContext() - 10);
        GenerationRequest ctx = new GenerationRequest(prompt, SamplingParams.greedy(), 50, List.of(), -1, false);
        GenerationResult pc = plain.generate(ctx);
        GenerationResult ac = d.generate(ctx, o);
        assertEquals(10, pc.completionTokens());
        assertArrayEquals(pc.tokens(), ac.tokens());
        assertEquals(FinishReason.LENGTH, ac.finishReason());
    }

    @Test
    void promptShorterThanTheNgram() {
        AssistedDecoder d = new AssistedDecoder(lm, null, tokenizer, dir.config().eosTokenIds());
        GenerationRequest req = greedy("", 20);
        assertArrayEquals(plain.generate(req).tokens(),
                d.generate(req, new AssistOptions(Assistant.PROMPT_LOOKUP, 5, Schedule.CONSTANT, 0, 8)).tokens());
    }
}
