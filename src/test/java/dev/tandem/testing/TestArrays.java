package dev.tandem.testing;

import com.fasterxml.jackson.databind.JsonNode;

/** Small array helpers the engine tests share (reading reference ids, picking the greedy token). */
public final class TestArrays {
    private TestArrays() {
    }

    /** A JSON array of integers (e.g. a fixture's reference.json ids). */
    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    /** The index of the largest value, the first one on ties (greedy decoding's choice). */
    public static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }
        return best;
    }
}
