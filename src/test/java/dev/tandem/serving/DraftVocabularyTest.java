package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** A draft that does not share the target's vocabulary, or a tokenizer larger than its model's output, fails start-up with a clear message. */
@RequiresSharedModels
class DraftVocabularyTest {

    static ServedModel load(Path dir) {
        ModelDirectory d = ModelDirectory.open(dir);
        var lm = OrtCausalLm.open(d.graph(), d.config().shape(), OnnxRuntimeOptions.defaults());
        return new ServedModel(d.name(), "onnxruntime", d, TextTokenizer.load(d), lm, null, null, 0, java.util.Optional.empty(), d.quantization());
    }

    @Test
    void mismatchedVocabulariesAreRefused() {
        ServedModel target = load(Path.of("models/kjv-draft"));
        ServedModel draft = load(SharedModels.stories260kHf());
        try {
            var e = assertThrows(IllegalArgumentException.class, () -> ModelRegistry.checkSameVocabulary(target, draft));
            assertTrue(e.getMessage().contains("do not share a vocabulary") && e.getMessage().contains("512")
                    && e.getMessage().contains("4096"), e.getMessage());
            assertTrue(e.getMessage().contains("TANDEM_DRAFT_ENABLED=false"), "says how to run without the draft: " + e.getMessage());
            ModelRegistry.checkSameVocabulary(target, target);  // the same model is fine
            // a model scoring 512 tokens cannot use a tokenizer of 4096 (it served empty text); the other way round is padding
            var tooBig = assertThrows(IllegalArgumentException.class,
                    () -> ModelRegistry.checkTokenizerFits(draft.directory(), target.tokenizer(), draft.lm().shape().vocabSize()));
            assertTrue(tooBig.getMessage().contains("4096 token ids") && tooBig.getMessage().contains("only 512"), tooBig.getMessage());
            ModelRegistry.checkTokenizerFits(target.directory(), draft.tokenizer(), target.lm().shape().vocabSize());
            ModelRegistry.checkTokenizerFits(target.directory(), target.tokenizer(), target.lm().shape().vocabSize());
        } finally {
            target.close();
            draft.close();
        }
    }
}
