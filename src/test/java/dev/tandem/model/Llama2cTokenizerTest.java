package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama2.c's tokenizer ({@code tok512.bin}) against the Hugging Face {@code tokenizer.json} of the same vocabulary
 * (stories260K's Optimum export, through the Rust library): a model served from its llama2.c checkpoint must give the
 * API the same ids, spans and text as the same model served from its Hugging Face export. Compared on fixed texts and
 * on random ones (letters, spaces, newlines, punctuation, accented, CJK and emoji characters, which go through byte
 * fallback), every window of their ids decoded (the streaming detokenizer decodes windows that start mid-text) and
 * random id sequences (runs of byte tokens that are not UTF-8).
 */
@RequiresSharedModels
class Llama2cTokenizerTest {
    static Llama2cTokenizer llama2c;
    static TextTokenizer hf;

    static final List<String> TEXTS = List.of("", "Once upon a time, there was a little girl named Lily who loved cats.",
            "Hello world", " leading space", "  two leading spaces", "double  spaces   here", "trailing ", " ",
            "naïve café — 東京 🙂", "Tom said: \"Let's go!\"\n\nThe end.", "1234567890", "a", "\t tab", "\n", "<s> and </s>", "a<unk>b<s></s>", "<0x41> <0x0A>", "</s", "<<s>>",
            "ÿ\u0000\u007f", "🙂🙂 🙂");

    @BeforeAll
    static void load() {
        llama2c = Llama2cTokenizer.load(SharedModels.stories260kTokenizerBin(), 512);
        hf = TextTokenizer.load(ModelDirectory.open(SharedModels.stories260kHf()));
    }

    @AfterAll
    static void close() {
        hf.close();
    }

    @Test
    void encodesSpansAndDecodesAsTheHuggingFaceTokenizerOfTheSameVocabulary() {
        List<String> texts = new ArrayList<>(TEXTS);
        SplittableRandom rnd = new SplittableRandom(260);
        String alphabet = "abcdefghijklmnopqrstuvwxyz  ABCXYZ  ..,,!?'\"-\n\téüßñ東京語😀🙂";
        for (int i = 0; i < 300; i++) {
            StringBuilder sb = new StringBuilder();
            for (int n = rnd.nextInt(40); n > 0; n--) {
                sb.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0,
                        rnd.nextInt(alphabet.codePointCount(0, alphabet.length())))));
            }
            texts.add(sb.toString());
        }
        int compared = 0;
        for (String text : texts) {
            String what = "'" + text.replace("\n", "\\n") + "'";
            int[] prompt = llama2c.encodePrompt(text);
            assertArrayEquals(hf.encodePrompt(text), prompt, what);
            assertArrayEquals(hf.encode(text), llama2c.encode(text), what);
            assertEquals(hf.spans(text), llama2c.spans(text), what);
            if (!text.matches("(?s).*(<unk>|<s>|</s>).*")) {  // those are special tokens, which decoding skips
                assertEquals(text, llama2c.decode(prompt), "round trip of " + what);
            }
            assertEquals(hf.decodeWithSpecialTokens(prompt), llama2c.decodeWithSpecialTokens(prompt), what);
            for (int from = 0; from < prompt.length; from++) {
                for (int to = from; to <= prompt.length; to++) {
                    assertEquals(hf.decode(prompt, from, to), llama2c.decode(prompt, from, to), what + " [" + from + ", " + to + ")");
                    compared++;
                }
            }
        }
        assertTrue(compared > 10_000, compared + " windows");
    }

    @Test
    void decodesAnyIdsAsTheHuggingFaceTokenizer() {
        SplittableRandom rnd = new SplittableRandom(512);
        for (int i = 0; i < 2000; i++) {
            int[] ids = new int[rnd.nextInt(1, 12)];
            for (int j = 0; j < ids.length; j++) {  // byte tokens (3..258) half the time: runs that are and are not UTF-8
                ids[j] = rnd.nextBoolean() ? rnd.nextInt(3, 259) : rnd.nextInt(512);
            }
            String what = java.util.Arrays.toString(ids);
            assertEquals(hf.decode(ids), llama2c.decode(ids), what);
            assertEquals(hf.decodeWithSpecialTokens(ids), llama2c.decodeWithSpecialTokens(ids), what);
        }
        assertEquals("é", llama2c.decode(3 + 0xC3, 3 + 0xA9));
        assertEquals("\uFFFD\uFFFDa", llama2c.decode(3 + 0xC3, 3 + 0xC3, 412), "invalid UTF-8: one U+FFFD per byte");
        assertEquals("a", llama2c.decodeWithSpecialTokens(412));
    }

    @Test
    void refusesAFileThatIsNotATokenizerOfTheCheckpointsVocabulary(@TempDir Path tmp) throws Exception {
        var e = assertThrows(IllegalArgumentException.class, () -> Llama2cTokenizer.load(SharedModels.stories260kTokenizerBin(), 600));
        assertTrue(e.getMessage().contains("tok512.bin") && e.getMessage().contains("600 tokens"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Llama2cTokenizer.load(SharedModels.stories260kTokenizerBin(), 500));
        assertTrue(e.getMessage().contains("bytes left after 500 tokens"), e.getMessage());
        Path bad = tmp.resolve("bad.bin");
        Files.write(bad, new byte[] {1, 2, 3});
        assertThrows(IllegalArgumentException.class, () -> Llama2cTokenizer.load(bad, 512));
        assertTrue(Llama2cTokenizer.isTokenizer(Files.readAllBytes(SharedModels.stories260kTokenizerBin()), 512));
        assertTrue(!Llama2cTokenizer.isTokenizer(Files.readAllBytes(SharedModels.stories260kBin()), 512));
    }
}
