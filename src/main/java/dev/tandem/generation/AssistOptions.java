package dev.tandem.generation;

/**
 * How one request is assisted.
 *
 * @param assistant            where candidates come from
 * @param numAssistantTokens   candidates per round (the start value under the heuristic schedule), 1..16
 * @param schedule             constant, or heuristic (+2 after a fully accepted round, -1 otherwise)
 * @param confidenceThreshold  the draft stops a round early after a token it gave less than this
 *                             probability; 0 turns it off
 * @param ngramSize            prompt lookup: longest n-gram matched (tries n..1)
 * @param lengthFixed          the request chose {@code numAssistantTokens} itself: a load-aware policy honours it
 *                             instead of choosing k
 */
public record AssistOptions(Assistant assistant, int numAssistantTokens, Schedule schedule, double confidenceThreshold,
                            int ngramSize, boolean lengthFixed) {

    public AssistOptions(Assistant assistant, int numAssistantTokens, Schedule schedule, double confidenceThreshold,
                         int ngramSize) {
        this(assistant, numAssistantTokens, schedule, confidenceThreshold, ngramSize, false);
    }

    public static final int MAX_ASSISTANT_TOKENS = 16;
    public static final int MAX_NGRAM = 8;

    public AssistOptions {
        if (numAssistantTokens < 1 || numAssistantTokens > MAX_ASSISTANT_TOKENS) {
            throw new IllegalArgumentException("numAssistantTokens must be in [1, 16]");
        }
        if (confidenceThreshold < 0 || confidenceThreshold > 1) {
            throw new IllegalArgumentException("confidenceThreshold must be in [0, 1]");
        }
        if (ngramSize < 1 || ngramSize > MAX_NGRAM) {
            throw new IllegalArgumentException("ngramSize must be in [1, 8]");
        }
    }

    public enum Assistant {
        DRAFT("draft"), PROMPT_LOOKUP("prompt_lookup");

        private final String apiName;

        Assistant(String apiName) {
            this.apiName = apiName;
        }

        public String apiName() {
            return apiName;
        }
    }

    public enum Schedule {
        CONSTANT, HEURISTIC
    }
}
