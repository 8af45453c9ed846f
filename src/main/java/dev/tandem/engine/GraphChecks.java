package dev.tandem.engine;

import java.nio.file.Path;

/** Checks every engine makes on a graph at load and on each step's arguments, with the same messages. */
public final class GraphChecks {
    private GraphChecks() {
    }

    /** Fails with "{graph}: {message}" unless {@code ok}. */
    public static void require(boolean ok, Path graph, String message) {
        if (!ok) {
            throw new IllegalArgumentException(graph + ": " + message);
        }
    }

    /**
     * A size from the graph where the graph fixes it (checked against config.json), else from
     * config.json; fails when neither states it or they disagree.
     */
    public static int dim(long graphDim, int configured, Path graph, String what) {
        if (graphDim > 0 && configured > 0 && graphDim != configured) {
            throw new IllegalArgumentException(graph + ": the graph's " + what + " is " + graphDim
                    + " but config.json says " + configured);
        }
        if (graphDim > 0) {
            return (int) graphDim;
        }
        if (configured > 0) {
            return configured;
        }
        throw new IllegalArgumentException(graph + ": " + what + " is not fixed in the graph and missing from config.json");
    }

    /**
     * Validates a forward step of {@code length} tokens after {@code past} and returns the new total:
     * at least one token, within the context, every id inside the vocabulary.
     */
    public static int checkStep(ModelShape shape, int past, int[] tokens, int offset, int length) {
        if (length < 1) {
            throw new IllegalArgumentException("feed at least one token");
        }
        int total = past + length;
        if (total > shape.maxContext()) {
            throw new IllegalArgumentException("sequence of " + total + " tokens exceeds the model's context of "
                    + shape.maxContext());
        }
        for (int i = 0; i < length; i++) {
            int t = tokens[offset + i];
            if (t < 0 || t >= shape.vocabSize()) {
                throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + shape.vocabSize() + ")");
            }
        }
        return total;
    }
}
