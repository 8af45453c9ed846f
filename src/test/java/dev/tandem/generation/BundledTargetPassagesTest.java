package dev.tandem.generation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The bundled target's second edition (issue 18): trained on whole passages at context 1024, so that a completion
 * goes on past the end of its verse, and a long request fits. Both failed on the first edition (single verses,
 * context 256: a completion stopped at the end of its verse, often at once).
 */
class BundledTargetPassagesTest {
    /** Openings of held-out verses (Ruth, Ecclesiastes, Joel, Philippians, 1 John), and one that ends a verse. */
    static final String[] PROMPTS = {
        "And the LORD spake unto Moses, saying,",   // a whole verse: the first edition answered EOS at once
        "Now it came to pass in the days when the judges ruled, that there",
        "And when she was risen up to glean,", "All things are full of labour; man",
        "The heart of the wise is in", "Blow ye the trumpet in Zion, and sound an alarm in my holy mountain:",
        "Rejoice in the Lord alway:", "Beloved, let us love one another: for love is of God;",
    };

    static OrtCausalLm target;
    static TextTokenizer tokenizer;
    static PlainDecoder plain;
    static PlainDecoder plainIgnoringEos;

    @BeforeAll
    static void load() {
        ModelDirectory td = ModelDirectory.open(Path.of("models/kjv-target"));
        target = OrtCausalLm.open(td.graph(), td.config().shape(), OnnxRuntimeOptions.defaults());
        tokenizer = TextTokenizer.load(td);
        plain = new PlainDecoder(target, tokenizer, td.config().eosTokenIds());
        plainIgnoringEos = new PlainDecoder(target, tokenizer, List.of());
    }

    @AfterAll
    static void close() {
        target.close();
        tokenizer.close();
    }

    @Test
    void aGreedyCompletionRunsPastTheEndOfTheVerseItStartedIn() {
        List<String> stopped = new ArrayList<>();
        for (String prompt : PROMPTS) {
            GenerationResult r = plain.generate(new GenerationRequest(tokenizer.encodePrompt(prompt), SamplingParams.greedy(),
                    160, List.of(), -1, false));
            String text = r.text();
            int newline = text.indexOf('\n');  // passages: a verse ends with "\n" and the next one follows
            String after = newline < 0 ? "" : text.substring(newline + 1).strip();
            if (after.split("\\s+").length < 5) {
                stopped.add(prompt + " -> " + text.replace("\n", "\\n") + " (" + r.finishReason() + ")");
            }
        }
        assertTrue(stopped.isEmpty(), "completions that did not go on into the next verse: " + stopped);
    }

    @Test
    void aThousandTokenRequestFits() {
        assertTrue(target.shape().maxContext() >= 1024, "context " + target.shape().maxContext());
        int[] prompt = tokenizer.encodePrompt("And Naomi said unto Ruth her daughter in law, It is good, my daughter,");
        int wanted = 1000 - prompt.length;
        GenerationResult r = plainIgnoringEos.generate(new GenerationRequest(prompt, SamplingParams.greedy(), wanted,
                List.of(), -1, false));
        assertEquals(wanted, r.completionTokens(), "tokens generated");
        assertEquals(FinishReason.LENGTH, r.finishReason());
    }
}
