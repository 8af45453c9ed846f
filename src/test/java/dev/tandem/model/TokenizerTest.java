package dev.tandem.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.testing.RequiresSharedModels;
import dev.tandem.testing.SharedModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
    static final String MIXED = "Café naïve — 日本語 🙂 ok";

    @Test
    void vocabularySizeCountsTheModelsVocabularyAndTheAddedTokens() throws IOException {
        try (TextTokenizer t = TextTokenizer.load(ModelDirectory.open(Path.of("models/kjv-draft")))) {
            assertEquals(4096, t.vocabSize());
        }
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        assertEquals(3, HfTokenizer.vocabSize(json.readTree("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":2,\"c\":1}}}")));
        assertEquals(10, HfTokenizer.vocabSize(json.readTree("{\"model\":{\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":9}]}")));
        assertEquals(2, HfTokenizer.vocabSize(json.readTree("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"<unk>\",0.0],[\"a\",-1.5]]}}")));
    }

    @Test
    @RequiresSharedModels
    void llamaStyleBpeWithByteFallback() {
        try (TextTokenizer t = TextTokenizer.load(ModelDirectory.open(SharedModels.stories260kHf()))) {
            assertArrayEquals(new int[] {1}, t.encodePrompt(""), "an empty prompt is just BOS");
            int[] ids = t.encodePrompt("Once upon a time");
            assertEquals(1, ids[0], "BOS first (add_bos_token)");
            assertEquals("Once upon a time", t.decode(ids));
            // byte fallback: characters outside the 512-token vocabulary become <0xNN> tokens
            int[] mixed = t.encodePrompt(MIXED);
            assertTrue(java.util.Arrays.stream(mixed).anyMatch(id -> id >= 3 && id <= 258), "expected byte-fallback tokens");
            assertEquals(MIXED, t.decode(mixed));
            assertStreamsWithoutBrokenCharacters(t, mixed, MIXED);
        }
    }

    @Test
    @RequiresSharedModels
    void continuationKeepsItsLeadingSpace() {
        try (TextTokenizer t = TextTokenizer.load(ModelDirectory.open(SharedModels.stories260kHf()))) {
            int[] prompt = t.encodePrompt("Once upon a");
            int[] full = t.encodePrompt("Once upon a time");
            assertArrayEquals(prompt, java.util.Arrays.copyOf(full, prompt.length));
            IncrementalDetokenizer d = new IncrementalDetokenizer(t, prompt);
            StringBuilder out = new StringBuilder();
            for (int i = prompt.length; i < full.length; i++) {
                out.append(d.next(full[i]));
            }
            assertEquals(" time", out.toString());
        }
    }

    @Test
    void gpt2StyleByteLevelBpe(@TempDir Path dir) throws IOException {
        writeByteLevelModel(dir);
        try (TextTokenizer t = TextTokenizer.load(ModelDirectory.open(dir))) {
            int[] ids = t.encodePrompt(MIXED);
            assertFalse(ids.length > 0 && ids[0] == 0, "no BOS for this tokenizer");
            assertEquals(MIXED, t.decode(ids));
            assertStreamsWithoutBrokenCharacters(t, ids, MIXED);
            int[] the = t.encode(" the the");
            assertEquals(2, the.length, "merges apply: ' the' is one token");
        }
    }

    /** Feeds ids one by one; every piece must be whole characters and the pieces must add up. */
    static void assertStreamsWithoutBrokenCharacters(TextTokenizer t, int[] ids, String expected) {
        int start = ids.length > 0 && ids[0] == t.bosId() ? 1 : 0;
        IncrementalDetokenizer d = new IncrementalDetokenizer(t, java.util.Arrays.copyOf(ids, start));
        StringBuilder out = new StringBuilder();
        int held = 0;
        for (int i = start; i < ids.length; i++) {
            String piece = d.next(ids[i]);
            assertFalse(piece.contains("\uFFFD"), "piece " + i + " has a broken character: " + piece);
            assertFalse(!piece.isEmpty() && Character.isHighSurrogate(piece.charAt(piece.length() - 1)),
                    "piece ends inside a surrogate pair");
            if (piece.isEmpty()) {
                held++;
            }
            out.append(piece);
        }
        out.append(d.flush());
        assertEquals(expected, out.toString());
        assertTrue(held > 0, "the text has multi-byte characters split over tokens; some steps must hold back");
    }

    /** A small GPT-2-style tokenizer.json: byte-level pre-tokenizer and decoder, 256 byte symbols and a few merges. */
    static void writeByteLevelModel(Path dir) throws IOException {
        Map<Integer, String> byteToChar = ByteLevelBpeTokenizerTest.gpt2Bytes();
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int b = 0; b < 256; b++) {
            vocab.put(byteToChar.get(b), b);
        }
        String sp = byteToChar.get((int) ' ');
        List<String> merges = List.of(sp + " t", "h e", sp + "t he");
        vocab.put(sp + "t", 256);
        vocab.put("he", 257);
        vocab.put(sp + "the", 258);
        String vocabJson = vocab.entrySet().stream()
                .map(e -> quote(e.getKey()) + ":" + e.getValue()).collect(Collectors.joining(","));
        String mergesJson = merges.stream().map(TokenizerTest::quote).collect(Collectors.joining(","));
        String json = """
                {"version":"1.0","truncation":null,"padding":null,
                 "added_tokens":[{"id":259,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
                 "normalizer":null,
                 "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
                 "post_processor":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
                 "decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
                 "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"",
                          "fuse_unk":false,"byte_fallback":false,"vocab":{%s},"merges":[%s]}}
                """.formatted(vocabJson + ",\"<|endoftext|>\":259", mergesJson);
        Files.writeString(dir.resolve("tokenizer.json"), json);
        Files.writeString(dir.resolve("config.json"), """
                {"model_type":"gpt2","num_hidden_layers":1,"max_position_embeddings":64,"vocab_size":260,
                 "bos_token_id":259,"eos_token_id":259}""");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"add_bos_token\":false}");
        Files.writeString(dir.resolve("model.onnx"), "not used by tokenizer tests");
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
