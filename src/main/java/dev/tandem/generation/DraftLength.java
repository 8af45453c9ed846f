package dev.tandem.generation;

/** How many candidates to ask for in the next round: constant, or Hugging Face's heuristic schedule. */
final class DraftLength {
    private final boolean heuristic;
    private int current;

    DraftLength(AssistOptions options) {
        this.heuristic = options.schedule() == AssistOptions.Schedule.HEURISTIC;
        this.current = options.numAssistantTokens();
    }

    int current() {
        return current;
    }

    /** +2 after a round whose candidates were all accepted, -1 after one with a rejection (bounded to [1, 16]). */
    void update(int proposed, int accepted) {
        if (!heuristic || proposed == 0) {
            return;
        }
        current = accepted == proposed ? Math.min(AssistOptions.MAX_ASSISTANT_TOKENS, current + 2) : Math.max(1, current - 1);
    }
}
