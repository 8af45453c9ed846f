package dev.tandem.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the shared test models live (../shared beside the project; never copied into it). */
public final class SharedModels {
    private SharedModels() {
    }

    public static Path sharedDir() {
        return Path.of(System.getProperty("test.shared.dir", "../shared")).toAbsolutePath().normalize();
    }

    /** The Optimum-layout stories260K model. */
    public static Path stories260kHf() {
        return sharedDir().resolve("models/stories260K/hf");
    }

    /** The same model as a llama2.c checkpoint ("legacy" .bin export). */
    public static Path stories260kBin() {
        return sharedDir().resolve("models/stories260K/stories260K.bin");
    }

    /** llama2.c's tokenizer.bin for stories260K (512 tokens). */
    public static Path stories260kTokenizerBin() {
        return sharedDir().resolve("models/stories260K/tok512.bin");
    }

    public static boolean available() {
        return Files.isRegularFile(stories260kHf().resolve("model.onnx")) && Files.isRegularFile(stories260kBin())
                && Files.isRegularFile(stories260kTokenizerBin());
    }

    /** The known-good greedy text from BOS, 60 steps (from ../shared/models/stories260K/README.md). */
    public static final String STORIES_GREEDY_60 = "Once upon a time, there was a little girl named Lily. She loved to play"
            + " outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";
}
