package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.FakeLm;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A sequence's acceptance estimate only moves with rounds that had candidates, so a policy that stopped giving it
 * candidates after some rejections would never see it improve: while it decodes without candidates, the rounds fade
 * and the estimate returns to the shared prior, and the policy tries again.
 */
class IdleAcceptanceTest {

    @Test
    void rejectedRoundsFadeWhileTheSequenceDecodesWithoutCandidates() {
        FakeLm target = FakeLm.target(4096, 512);
        FakeLm draft = target.draft(100f);  // noise far above the signal: its candidates are rejected
        try (TextTokenizer tokenizer = TextTokenizer.load(ModelDirectory.open(Path.of("models/kjv-target")))) {
            AssistedDecoder decoding = new AssistedDecoder(target, draft, tokenizer, List.of(2));
            Sequence s = decoding.newSequence(
                    new GenerationRequest(tokenizer.encodePrompt("In the beginning"), SamplingParams.greedy(), 400,
                            List.of(), -1, false, true),
                    DecodingMode.assisted(new AssistOptions(Assistant.DRAFT, 2, Schedule.CONSTANT, 0, 3)),
                    GenerationListener.NONE);
            BatchStep step = decoding.batchStep();
            List<Sequence> batch = List.of(s);
            while (s.prefilling()) {
                s.planPrefill(s.promptRemaining());
                step.run(batch);
            }
            for (int i = 0; i < 6; i++) {
                s.planDecode(2);
                step.run(batch);
            }
            double[] prior = new double[AssistOptions.MAX_ASSISTANT_TOKENS];
            Arrays.fill(prior, 0.75);
            double[] estimate = new double[1];
            s.acceptanceByPosition(prior, 2, estimate);
            assertTrue(estimate[0] < 0.4, "after six rejected rounds: " + estimate[0]);
            for (int i = 0; i < 300; i++) {
                s.planDecode(0);
                step.run(batch);
            }
            assertFalse(s.endIfDone(), "still decoding");
            s.acceptanceByPosition(prior, 2, estimate);
            assertTrue(estimate[0] > 0.65, "after 300 steps without candidates: " + estimate[0]);
            s.close();
        }
    }
}
