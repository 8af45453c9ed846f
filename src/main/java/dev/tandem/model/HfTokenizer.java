package dev.tandem.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} (Llama/sentencepiece-style BPE with byte fallback, or
 * GPT-2 byte-level BPE) through DJL's binding of the Rust {@code tokenizers} library, plus the
 * special-token rules of {@code tokenizer_config.json}.
 *
 * <p>Text is encoded without the tokenizer's own special tokens; BOS is prepended here when
 * {@code add_bos_token} says so (or, absent that flag, when the tokenizer's post-processor would
 * add it), so an empty prompt is just {@code [BOS]}.
 */
public final class HfTokenizer implements TextTokenizer {
    private final HuggingFaceTokenizer hf;
    private final int bosId;
    private final boolean addBos;
    private final int vocabSize;

    private HfTokenizer(HuggingFaceTokenizer hf, int bosId, boolean addBos, int vocabSize) {
        this.hf = hf;
        this.bosId = bosId;
        this.addBos = addBos;
        this.vocabSize = vocabSize;
    }

    static HfTokenizer load(ModelDirectory model) {
        Path file = model.tokenizerFile();
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.newInstance(file, Map.of(
                    "addSpecialTokens", "false", "truncation", "false", "padding", "false",
                    "modelMaxLength", Integer.toString(Integer.MAX_VALUE)));
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(file + ": cannot load tokenizer: " + e.getMessage(), e);
        }
        int bos = model.config().bosTokenId();
        JsonNode flag = model.tokenizerConfig().path("add_bos_token");
        boolean addBos;
        if (flag.isBoolean()) {
            addBos = flag.asBoolean();
        } else {
            long[] withSpecial = hf.encode("a", true, false).getIds();
            addBos = bos >= 0 && withSpecial.length > 0 && withSpecial[0] == bos;
        }
        int vocab;
        try {
            vocab = vocabSize(new ObjectMapper().readTree(file.toFile()));
        } catch (IOException e) {
            hf.close();
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        return new HfTokenizer(hf, bos, addBos && bos >= 0, vocab);
    }

    /**
     * One more than the largest id in a {@code tokenizer.json}: its model's vocabulary (a piece-to-id
     * object for BPE and WordPiece, a list of [piece, score] pairs for Unigram) and its added tokens.
     * The binding does not expose it, and the ids the tokenizer can produce must all be rows of the
     * model's output layer (see ModelRegistry's start-up checks).
     */
    static int vocabSize(JsonNode tokenizerJson) {
        long max = -1;
        JsonNode vocab = tokenizerJson.path("model").path("vocab");
        if (vocab.isObject()) {
            for (JsonNode id : vocab) {
                max = Math.max(max, id.asLong(-1));
            }
        } else if (vocab.isArray()) {
            max = vocab.size() - 1;
        }
        for (JsonNode added : tokenizerJson.path("added_tokens")) {
            max = Math.max(max, added.path("id").asLong(-1));
        }
        return (int) Math.min(Integer.MAX_VALUE, max + 1);
    }

    /** How many token ids the tokenizer uses (one more than its largest). */
    @Override
    public int vocabSize() {
        return vocabSize;
    }

    /** Prompt ids: BOS (when the model uses one) followed by the encoded text. */
    @Override
    public int[] encodePrompt(String text) {
        long[] ids = text.isEmpty() ? new long[0] : hf.encode(text, false, false).getIds();
        boolean bos = bosId >= 0 && (addBos || ids.length == 0);
        int[] out = new int[ids.length + (bos ? 1 : 0)];
        int o = 0;
        if (bos) {
            out[o++] = bosId;
        }
        for (long id : ids) {
            out[o++] = Math.toIntExact(id);
        }
        return out;
    }

    /** Token ids of {@code text} without any special token. */
    @Override
    public int[] encode(String text) {
        Encoding e = hf.encode(text, false, false);
        long[] ids = e.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** The prompt's tokens (BOS first when the model uses one) with their character spans in {@code text}. */
    @Override
    public java.util.List<Span> spans(String text) {
        java.util.List<Span> out = new java.util.ArrayList<>();
        if (bosId >= 0 && (addBos || text.isEmpty())) {
            out.add(new Span(bosId, decodeSpecial(bosId), 0, 0));
        }
        if (!text.isEmpty()) {
            Encoding e = hf.encode(text, false, false);
            long[] ids = e.getIds();
            String[] pieces = e.getTokens();
            var spans = e.getCharTokenSpans();
            for (int i = 0; i < ids.length; i++) {
                int start = spans[i] == null ? 0 : spans[i].getStart();
                int end = spans[i] == null ? 0 : spans[i].getEnd();
                out.add(new Span(Math.toIntExact(ids[i]), pieces[i], start, end));
            }
        }
        return out;
    }

    private String decodeSpecial(int id) {
        return hf.decode(new long[] {id}, false);
    }

    /** Text of {@code ids[from..to)}, special tokens skipped. */
    @Override
    public String decode(int[] ids, int from, int to) {
        long[] l = new long[to - from];
        for (int i = from; i < to; i++) {
            l[i - from] = ids[i];
        }
        return hf.decode(l, true);
    }

    /** Text of {@code ids} with special tokens written out ({@code <s>}), as Hugging Face's {@code decode} does by default. */
    @Override
    public String decodeWithSpecialTokens(int... ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return hf.decode(l, false);
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public void close() {
        hf.close();
    }
}
