package dev.tandem.engine.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.engine.KvCache;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** llama2.c checkpoints written here: tied and untied classifiers (a negative vocab_size in the header). */
class Llama2cCheckpointTest {
    static final int DIM = 8;
    static final int HIDDEN = 12;
    static final int LAYERS = 2;
    static final int HEADS = 2;
    static final int KV_HEADS = 1;
    static final int VOCAB = 10;
    static final int SEQ = 16;

    /** A random checkpoint; with {@code classifierScale != 0} untied, its wcls = scale x embedding. */
    static byte[] checkpoint(float classifierScale) {
        int kvDim = DIM * KV_HEADS / HEADS;
        int headDim = DIM / HEADS;
        int n = VOCAB * DIM + 2 * LAYERS * DIM + LAYERS * (2 * DIM * DIM + 2 * kvDim * DIM) + 3 * LAYERS * HIDDEN * DIM + DIM
                + SEQ * headDim + (classifierScale != 0 ? VOCAB * DIM : 0);
        ByteBuffer b = ByteBuffer.allocate(28 + 4 * n).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(DIM).putInt(HIDDEN).putInt(LAYERS).putInt(HEADS).putInt(KV_HEADS)
                .putInt(classifierScale != 0 ? -VOCAB : VOCAB).putInt(SEQ);
        Random r = new Random(7);
        float[] embedding = new float[VOCAB * DIM];
        for (int i = 0; i < embedding.length; i++) {
            embedding[i] = (float) r.nextGaussian();
            b.putFloat(embedding[i]);
        }
        int rest = n - VOCAB * DIM - (classifierScale != 0 ? VOCAB * DIM : 0);
        for (int i = 0; i < rest; i++) {
            b.putFloat((float) (0.3 * r.nextGaussian()));
        }
        if (classifierScale != 0) {
            for (float e : embedding) {
                b.putFloat(classifierScale * e);
            }
        }
        return b.array();
    }

    static float[] logits(Path file, int... tokens) {
        ReferenceCausalLm lm = ReferenceCausalLm.openLlama2c(file);
        try (KvCache cache = lm.newCache()) {
            return lm.forward(cache, tokens).row(tokens.length - 1);
        }
    }

    @Test
    void anUntiedClassifierIsReadFromTheEndOfTheFile(@TempDir Path dir) throws Exception {
        Path tied = Files.write(dir.resolve("tied.bin"), checkpoint(0));
        Path same = Files.write(dir.resolve("untied-same.bin"), checkpoint(1));
        Path doubled = Files.write(dir.resolve("untied-doubled.bin"), checkpoint(2));

        LlamaWeights w = Llama2cCheckpoint.load(same);
        assertEquals(VOCAB, w.config().vocabSize());
        assertEquals(4, w.config().headDim());
        assertNotSame(((Matrix.F32) w.classifier()).w(), ((Embedding.F32) w.embedding()).table(), "untied: its own matrix");

        int[] tokens = {1, 5, 3, 7, 2};
        float[] a = logits(tied, tokens);
        float[] b = logits(same, tokens);
        float[] c = logits(doubled, tokens);
        for (int i = 0; i < VOCAB; i++) {
            assertEquals(a[i], b[i], "an untied copy of the embedding gives the tied logits");
            assertEquals(2 * a[i], c[i], "scaling the classifier by 2 scales the logits exactly");
            assertTrue(Float.isFinite(a[i]));
        }
    }
}
