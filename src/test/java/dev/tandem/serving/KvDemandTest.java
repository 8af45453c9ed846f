package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.ModelShape;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.DecodingMode;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.SamplingParams;
import dev.tandem.generation.Sequence;
import dev.tandem.model.ModelDirectory;
import dev.tandem.testing.ShapeOnlyLm;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * What admission control reserves for a request ({@link KvDemand}) on the bundled pair's geometry, with its caches kept
 * where ONNX Runtime keeps them (both are slots graphs: a slot-pool row each), fed as the scheduler feeds them.
 */
class KvDemandTest {
    /** The service's default: tandem.scheduler.max-batched-tokens 64, the auto policy. */
    static final KvDemand.Feeds DEFAULTS = new KvDemand.Feeds(Sequence.largestPrefillChunk(64), true);

    static final ServedModel TARGET = served("kjv-target", ModelDirectory.open(Path.of("models/kjv-target")).config().shape());
    static final ServedModel DRAFT = served("kjv-draft", ModelDirectory.open(Path.of("models/kjv-draft")).config().shape());

    static final DecodingMode WITH_DRAFT = DecodingMode.assisted(
            new AssistOptions(AssistOptions.Assistant.DRAFT, 5, AssistOptions.Schedule.HEURISTIC, 0, 3));

    static ServedModel served(String id, ModelShape shape) {
        return new ServedModel(id, "onnxruntime", null, null, new ShapeOnlyLm(true, shape, CausalLm.CacheStorage.SLOT_POOL), null, null, 0, Optional.empty(), "int8");
    }

    static GenerationRequest request(int prompt, int maxTokens) {
        return new GenerationRequest(new int[prompt], SamplingParams.greedy(), maxTokens, List.of(), 0, false);
    }

    @Test
    void aLongPromptReservesOneChunksStepRowsNotOnePerToken() {
        // a 1000-token prompt is fed 64 tokens a step, and the step buffers grow only to the largest feed: the target's
        // pool row (1024 x 16,384) plus 64 rows of 4 x 4096 + 16 bytes, where one row per prompt token (33,177,216) was
        // counted before chunked prefill was
        KvDemand d = KvDemand.of(TARGET, DRAFT, request(1000, 24), DecodingMode.PLAIN, DEFAULTS);
        assertEquals(1024L * 16_384 + 64L * 16_400, d.bytes());
        assertEquals(17_826_816L, d.bytes());
        // a larger step budget feeds larger chunks: 128 rows
        assertEquals(1024L * 16_384 + 128L * 16_400,
                KvDemand.of(TARGET, DRAFT, request(1000, 24), DecodingMode.PLAIN, new KvDemand.Feeds(128, true)).bytes());
        // below the smallest chunk the scheduler feeds (16), the budget does not bound the chunks: 16 rows
        assertEquals(1024L * 16_384 + 16L * 16_400,
                KvDemand.of(TARGET, DRAFT, request(1000, 24), DecodingMode.PLAIN, new KvDemand.Feeds(
                        Sequence.largestPrefillChunk(4), true)).bytes());
        // a prompt shorter than a chunk is fed whole: its own rows (at least 8)
        assertEquals(1024L * 16_384 + 40L * 16_400,
                KvDemand.of(TARGET, DRAFT, request(40, 24), DecodingMode.PLAIN, DEFAULTS).bytes());
    }

    @Test
    void theDraftIsCountedAsItIsFed() {
        // assisted: the target's verification feeds up to 17 rows (fewer than a chunk); under auto the draft may be
        // left behind and catch up on the whole sequence (1000 + 24 tokens) in one feed: its pool row (1024 x 1,024)
        // and 1024 step rows
        KvDemand auto = KvDemand.of(TARGET, DRAFT, request(1000, 24), WITH_DRAFT, DEFAULTS);
        long target = 1024L * 16_384 + 64L * 16_400;
        assertEquals(target + 1024L * 1024 + 1024L * 16_400, auto.bytes());
        assertTrue(auto.description().contains("and its draft kjv-draft"), auto.description());
        // the fixed policy always feeds the draft the target's prompt chunks, and it never falls behind by more than a
        // verification: 64 rows
        KvDemand fixed = KvDemand.of(TARGET, DRAFT, request(1000, 24), WITH_DRAFT, new KvDemand.Feeds(64, false));
        assertEquals(target + 1024L * 1024 + 64L * 16_400, fixed.bytes());
    }
}
