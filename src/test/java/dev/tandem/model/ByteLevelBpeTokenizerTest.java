package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Byte-level BPE tokenizers as GPT-2, Qwen2 and Llama 3 ship them (a tokenizer.json whose pre-tokenizer and decoder
 * are ByteLevel: every byte is a symbol, so a character of several UTF-8 bytes may span several tokens), with added
 * special tokens such as Qwen2's {@code <|im_start|>} / {@code <|im_end|>} and Llama 3's {@code <|begin_of_text|>},
 * and a non-special added token (as DeepSeek-R1 distills' {@code <think>}). The fixture is written by the test: 256
 * byte symbols, a few merges (" the", and "é" as one token while "日" or "🙂" stay several byte tokens).
 */
class ByteLevelBpeTokenizerTest {
    static final int IM_START = 260;
    static final int IM_END = 261;
    static final int ENDOFTEXT = 262;
    static final int BEGIN_OF_TEXT = 263;
    static final int THINK = 264;
    static final String TEXT = "Café et the naïve 日本語 🙂 ok";

    /** Qwen2 style: no BOS (add_bos_token false), chat tokens special. */
    static TextTokenizer qwenStyle(Path dir) throws IOException {
        write(dir, false);
        Files.writeString(dir.resolve("config.json"), """
                {"model_type":"qwen2","num_hidden_layers":1,"max_position_embeddings":64,"vocab_size":265,
                 "bos_token_id":262,"eos_token_id":[261, 262]}""");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"add_bos_token\":false}");
        return TextTokenizer.load(ModelDirectory.open(dir));
    }

    @Test
    void multiByteCharactersSplitAcrossTokensRoundTripAndStreamWhole(@TempDir Path dir) throws IOException {
        try (TextTokenizer t = qwenStyle(dir)) {
            int[] ids = t.encode(TEXT);
            assertEquals(TEXT, t.decode(ids));
            assertTrue(ids.length > TEXT.codePointCount(0, TEXT.length()), "some characters span several byte tokens");
            int[] emoji = t.encode("🙂");
            assertEquals(4, emoji.length, "🙂 is four byte tokens (no merge for it)");
            assertEquals(1, t.encode("é").length, "é is one token (merged bytes)");
            assertEquals(2, t.encode(" the the").length, "merges apply: ' the' is one token");
            TokenizerTest.assertStreamsWithoutBrokenCharacters(t, ids, TEXT);
        }
    }

    /** A sequence that stops inside a character ends with U+FFFD once flushed, never with a broken surrogate. */
    @Test
    void anUnfinishedCharacterIsHeldBackThenFlushedAsAReplacementCharacter(@TempDir Path dir) throws IOException {
        try (TextTokenizer t = qwenStyle(dir)) {
            int[] emoji = t.encode("🙂");
            int[] ok = t.encode(" ok");
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, new int[0]);
            assertEquals("", d.next(emoji[0]));
            assertEquals("", d.next(emoji[1]));
            assertEquals("\uFFFD", d.flush());

            d = new IncrementalDetokenizer(t, ok);
            StringBuilder out = new StringBuilder();
            for (int id : emoji) {
                out.append(d.next(id));
            }
            assertEquals("🙂", out.toString(), "the prompt's text is not emitted, the character is whole");
        }
    }

    @Test
    void specialTokensInTheTextAreOneTokenAndNeverSplit(@TempDir Path dir) throws IOException {
        try (TextTokenizer t = qwenStyle(dir)) {
            int[] ids = t.encode("<|im_start|>user\nhi the<|im_end|>");
            assertEquals(IM_START, ids[0]);
            assertEquals(IM_END, ids[ids.length - 1]);
            assertEquals(1, IntStream.of(ids).filter(i -> i == IM_END).count());
            assertTrue(IntStream.of(ids).noneMatch(i -> i == ENDOFTEXT || i == THINK));
            int[] partial = t.encode("<|im_end");
            assertTrue(IntStream.of(partial).noneMatch(i -> i >= 260), "an unfinished special token is plain text");
            assertEquals("<|im_end", t.decode(partial));
        }
    }

    /**
     * skip_special_tokens: the text of a completion leaves special tokens out, also when streamed; the non-special
     * added token stays (transformers' decode skips only the special ones); written out on request.
     */
    @Test
    void specialTokensAreSkippedInTextButNonSpecialAddedTokensAreKept(@TempDir Path dir) throws IOException {
        try (TextTokenizer t = qwenStyle(dir)) {
            int[] ids = concat(t.encode("<think>"), t.encode("hm 🙂"), new int[] {IM_END}, t.encode(" the"),
                    new int[] {ENDOFTEXT});
            assertEquals(THINK, ids[0], "<think> is one added token");
            assertEquals("<think>hm 🙂 the", t.decode(ids));
            assertEquals("<think>hm 🙂<|im_end|> the<|endoftext|>", t.decodeWithSpecialTokens(ids));
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, new int[0]);
            StringBuilder out = new StringBuilder();
            for (int id : ids) {
                String piece = d.next(id);
                assertFalse(piece.contains("\uFFFD") || piece.contains("<|"), "piece '" + piece + "'");
                out.append(piece);
            }
            out.append(d.flush());
            assertEquals("<think>hm 🙂 the", out.toString());
        }
    }

    /** The vocabulary size counts the added tokens (ids above the model's vocabulary). */
    @Test
    void vocabularySizeCountsAddedTokens(@TempDir Path dir) throws IOException {
        try (TextTokenizer t = qwenStyle(dir)) {
            assertEquals(265, t.vocabSize());
        }
    }

    /** Qwen2: no BOS before a prompt; an empty prompt still needs a token, the BOS id config.json names. */
    @Test
    void qwenStyleAddsNoBos(@TempDir Path dir) throws IOException {
        try (TextTokenizer t = qwenStyle(dir)) {
            assertArrayEquals(t.encode("hi the"), t.encodePrompt("hi the"));
            assertArrayEquals(new int[] {ENDOFTEXT}, t.encodePrompt(""));
        }
    }

    /**
     * Llama 3: no add_bos_token in tokenizer_config.json, the BOS comes from the tokenizer's TemplateProcessing
     * post-processor, which Tandem puts first as transformers does (a chat prompt, whose template writes the BOS itself,
     * is tokenized without it: ChatPrompt).
     */
    @Test
    void llama3StyleAddsTheBosOfItsPostProcessor(@TempDir Path dir) throws IOException {
        write(dir, true);
        Files.writeString(dir.resolve("config.json"), """
                {"model_type":"llama","num_hidden_layers":1,"max_position_embeddings":64,"vocab_size":265,
                 "bos_token_id":263,"eos_token_id":[262, 261]}""");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{}");
        ModelDirectory model = ModelDirectory.open(dir);
        assertEquals(List.of(262, 261), model.config().eosTokenIds());
        try (TextTokenizer t = TextTokenizer.load(model)) {
            int[] ids = t.encodePrompt("hi the");
            assertEquals(BEGIN_OF_TEXT, ids[0]);
            assertArrayEquals(t.encode("hi the"), Arrays.copyOfRange(ids, 1, ids.length));
            assertEquals("hi the", t.decode(ids));
        }
    }

    static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
    }

    /**
     * A byte-level BPE tokenizer.json: GPT-2's byte-to-symbol table for ids 0..255, merges " the" (256..258) and
     * "é" (259), and the added tokens after them (260..264: ids follow the vocabulary, as in real files; the library renumbers others); {@code bosTemplate}: a TemplateProcessing post-processor that puts
     * {@code <|begin_of_text|>} first, as Llama 3's does (otherwise Qwen2's ByteLevel post-processor).
     */
    static void write(Path dir, boolean bosTemplate) throws IOException {
        Map<Integer, String> byteToChar = gpt2Bytes();
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int b = 0; b < 256; b++) {
            vocab.put(byteToChar.get(b), b);
        }
        String sp = byteToChar.get((int) ' ');
        byte[] e = "é".getBytes(StandardCharsets.UTF_8);
        String eAcute = byteToChar.get(e[0] & 0xFF) + byteToChar.get(e[1] & 0xFF);
        List<String> merges = List.of(sp + " t", "h e", sp + "t he", byteToChar.get(e[0] & 0xFF) + " " + byteToChar.get(e[1] & 0xFF));
        vocab.put(sp + "t", 256);
        vocab.put("he", 257);
        vocab.put(sp + "the", 258);
        vocab.put(eAcute, 259);
        String vocabJson = vocab.entrySet().stream().map(x -> TokenizerTest.quote(x.getKey()) + ":" + x.getValue())
                .collect(Collectors.joining(","));
        String mergesJson = merges.stream().map(TokenizerTest::quote).collect(Collectors.joining(","));
        String added = String.join(",", added(IM_START, "<|im_start|>", true), added(IM_END, "<|im_end|>", true),
                added(ENDOFTEXT, "<|endoftext|>", true), added(BEGIN_OF_TEXT, "<|begin_of_text|>", true),
                added(THINK, "<think>", false));
        String post = bosTemplate
                ? """
                  {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
                   "pair":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],
                   "special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[263],"tokens":["<|begin_of_text|>"]}}}"""
                : """
                  {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}""";
        String json = """
                {"version":"1.0","truncation":null,"padding":null,
                 "added_tokens":[%s],
                 "normalizer":{"type":"NFC"},
                 "pre_tokenizer":{"type":"Sequence","pretokenizers":[
                   {"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"},"behavior":"Isolated","invert":false},
                   {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]},
                 "post_processor":%s,
                 "decoder":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false},
                 "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"",
                          "fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{%s},"merges":[%s]}}
                """.formatted(added, post, vocabJson, mergesJson);
        Files.writeString(dir.resolve("tokenizer.json"), json);
        Files.writeString(dir.resolve("model.onnx"), "not used by tokenizer tests");
    }

    static String added(int id, String content, boolean special) {
        return "{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":%s}"
                .formatted(id, content, special);
    }

    /** GPT-2's table: printable bytes stand for themselves, the others for the code points from 256 up. */
    static Map<Integer, String> gpt2Bytes() {
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) bs.add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.add(b);
        List<Integer> cs = new ArrayList<>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (!bs.contains(b)) {
                bs.add(b);
                cs.add(256 + n++);
            }
        }
        Map<Integer, String> out = new LinkedHashMap<>();
        for (int i = 0; i < bs.size(); i++) {
            out.put(bs.get(i), new String(Character.toChars(cs.get(i))));
        }
        return out;
    }
}
