package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.KvCache;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.FakeLm;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * After a round that kept all its k candidates, the next proposal judges candidate k+1 "in shadow" (no engine call):
 * what the draft would have proposed there against the target's bonus token. Each test replays every such round and
 * computes the truth independently: the draft's and the target's next-token logits from fresh caches fed the same
 * tokens (for prompt lookup, a lookup asked for k+1 candidates where the round began).
 */
class ShadowJudgementTest {
    static final int VOCAB = 4096;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = TextTokenizer.load(ModelDirectory.open(Path.of("models/kjv-target")));
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    /** The judgements a sequence made, with what they should have been. */
    record Judged(List<Double> made, List<Double> truth, List<Integer> positions) {
        Judged() {
            this(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        }
    }

    interface Truth {
        /** The probability that candidate k+1 is kept after {@code seq[0..length-1)}, the target having chosen seq[length-1]. */
        double of(int[] seq, int length);
    }

    /** Runs one request at a constant k, checking each round that followed an all-kept round. */
    static Judged run(CausalLm target, CausalLm draft, SamplingParams sampling, Assistant assistant, int k, int[] prompt,
                      Truth truth) {
        AssistedDecoder decoding = new AssistedDecoder(target, draft, tokenizer, List.of(2));
        GenerationRequest request = new GenerationRequest(prompt, sampling, 200, List.of(), -1, false, true);
        Sequence s = decoding.newSequence(request,
                DecodingMode.assisted(new AssistOptions(assistant, k, Schedule.CONSTANT, 0, 3)), GenerationListener.NONE);
        Judged judged = new Judged();
        int[][] allKept = {null};  // the sequence after the last round, if it kept all
        s.onRound((cache, seq, length, proposed, accepted) -> {
            if (allKept[0] != null && s.lastShadowPosition() >= 0) {
                judged.made().add(s.lastShadowKept());
                judged.truth().add(truth.of(allKept[0], allKept[0].length));
                judged.positions().add(s.lastShadowPosition());
            }
            allKept[0] = proposed == k && accepted == k ? Arrays.copyOf(seq, length) : null;
        });
        AssistedDecoder.runAlone(s, decoding.batchStep());
        return judged;
    }

    /** Next-token logits after {@code tokens[0..n)} from a fresh cache. */
    static float[] nextLogits(CausalLm lm, int[] tokens, int n) {
        try (KvCache cache = lm.newCache()) {
            var logits = lm.forward(cache, tokens, 0, n);
            return logits.copyRow(logits.rows() - 1, new float[VOCAB]);
        }
    }

    static int[] prompt() {
        return tokenizer.encodePrompt("And God said, Let there be light: and there was light.");
    }

    @Test
    void greedyDraftIsJudgedByItsChoiceAgainstTheBonus() {
        FakeLm target = FakeLm.target(VOCAB, 512);
        CausalLm draft = new NoisyLm(target, 3f);
        Judged j = run(target, draft, SamplingParams.greedy(), Assistant.DRAFT, 2, prompt(),
                (seq, length) -> Sampler.argmax(nextLogits(draft, seq, length - 1)) == seq[length - 1] ? 1 : 0);
        assertEquals(j.truth(), j.made());
        assertTrue(j.made().contains(1.0) && j.made().contains(0.0), "both outcomes occur: " + j.made());
        assertTrue(j.positions().stream().allMatch(p -> p == 2), "candidate 3 after rounds of 2: " + j.positions());
    }

    @Test
    void sampledDraftIsJudgedByItsExpectedAcceptance() {
        FakeLm target = FakeLm.target(VOCAB, 512);
        FakeLm draft = target.draft(1.5f);
        SamplingParams sampling = new SamplingParams(0.8, 0, 1, 0, 1, 0, 0, 7L);
        Judged j = run(target, draft, sampling, Assistant.DRAFT, 2, prompt(), (seq, length) -> {
            Sampler transform = new Sampler(sampling, VOCAB, new int[] {1});  // no penalties: stateless
            float[] p = transform.distribution(nextLogits(target, seq, length - 1));
            float[] q = transform.distribution(nextLogits(draft, seq, length - 1));
            double kept = 0;
            for (int x = 0; x < VOCAB; x++) {
                kept += Math.min(p[x], q[x]);
            }
            return kept;
        });
        assertTrue(j.made().size() >= 5, "rounds judged in shadow: " + j.made().size());
        for (int i = 0; i < j.made().size(); i++) {
            assertEquals(j.truth().get(i), j.made().get(i), 1e-5, "judgement " + i);
        }
        assertTrue(j.made().stream().anyMatch(v -> v < 0.9), "a draft that disagrees: " + j.made());
    }

    @Test
    void promptLookupIsJudgedByTheTokenAfterItsMatch() {
        FakeLm target = FakeLm.target(VOCAB, 512);
        // the prompt is P, the target's own greedy continuation G of P, then P again: after the second P the target
        // writes G again (its text depends on the last three tokens), which the lookup finds and proposes, until G's
        // end, where the lookup's next token is P's and the target's is not. Rounds of 2 + the bonus reach the end of G
        // at a shadow position for one G length in three: all three are run.
        List<Double> made = new ArrayList<>();
        for (int g = 39; g <= 41; g++) {
            int[] p = prompt();
            int[] pg = Arrays.copyOf(p, p.length + g);
            for (int n = p.length; n < pg.length; n++) {
                pg[n] = Sampler.argmax(nextLogits(target, pg, n));
            }
            int[] prompt = Arrays.copyOf(pg, pg.length + p.length - 1);
            System.arraycopy(p, 1, prompt, pg.length, p.length - 1);  // P again, without its BOS
            Judged j = run(target, null, SamplingParams.greedy(), Assistant.PROMPT_LOOKUP, 2, prompt, (seq, length) -> {
                Candidates more = new Candidates(AssistOptions.MAX_ASSISTANT_TOKENS, VOCAB);
                new PromptLookupCandidates(3).start(seq, length - 3, 3, more);  // where the round of 2 began, asked for 3
                return more.count == 3 && more.tokens[2] == seq[length - 1] ? 1 : 0;
            });
            assertEquals(j.truth(), j.made());
            made.addAll(j.made());
        }
        assertTrue(made.contains(1.0) && made.contains(0.0), "both outcomes occur: " + made);
    }

    /** The estimate one past the chosen k learns from these judgements (it stayed at the prior before). */
    @Test
    void theEstimateOnePastTheChosenKLearns() {
        FakeLm target = FakeLm.target(VOCAB, 512);
        FakeLm draft = target.draft(0f);  // always right
        AssistedDecoder decoding = new AssistedDecoder(target, draft, tokenizer, List.of(2));
        Sequence s = decoding.newSequence(new GenerationRequest(prompt(), SamplingParams.greedy(), 60, List.of(), -1, false, true),
                DecodingMode.assisted(new AssistOptions(Assistant.DRAFT, 2, Schedule.CONSTANT, 0, 3)), GenerationListener.NONE);
        AssistedDecoder.runAlone(s, decoding.batchStep());
        double[] estimate = new double[4];
        s.acceptanceByPosition(new double[AssistOptions.MAX_ASSISTANT_TOKENS], 2, estimate);
        assertTrue(estimate[1] > 0.8, "position 2, judged every round: " + estimate[1]);
        assertTrue(estimate[2] > 0.8, "position 3, judged in shadow: " + estimate[2]);
        assertEquals(0, estimate[3], 1e-12, "position 4 is never judged at k = 2");
    }
}
