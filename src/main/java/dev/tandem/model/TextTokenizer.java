package dev.tandem.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
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
public final class TextTokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer hf;
    private final int bosId;
    private final boolean addBos;

    private TextTokenizer(HuggingFaceTokenizer hf, int bosId, boolean addBos) {
        this.hf = hf;
        this.bosId = bosId;
        this.addBos = addBos;
    }

    public static TextTokenizer load(ModelDirectory model) {
        Path file = model.tokenizerJson();
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
        return new TextTokenizer(hf, bos, addBos && bos >= 0);
    }

    /** Prompt ids: BOS (when the model uses one) followed by the encoded text. */
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
    public int[] encode(String text) {
        Encoding e = hf.encode(text, false, false);
        long[] ids = e.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** Text of {@code ids[from..to)}, special tokens skipped. */
    public String decode(int[] ids, int from, int to) {
        long[] l = new long[to - from];
        for (int i = from; i < to; i++) {
            l[i - from] = ids[i];
        }
        return hf.decode(l, true);
    }

    public String decode(int... ids) {
        return decode(ids, 0, ids.length);
    }

    public int bosId() {
        return bosId;
    }

    @Override
    public void close() {
        hf.close();
    }
}
