package dev.tandem.generation;

/**
 * How the next token is chosen from the target's logits.
 *
 * @param temperature        0 means greedy (argmax); otherwise logits are divided by it
 * @param topK               keep the k most likely tokens; 0 keeps all
 * @param topP               keep the smallest set whose probability reaches p; 1 keeps all
 * @param minP               drop tokens less likely than minP times the most likely one; 0 keeps all
 * @param repetitionPenalty  CTRL/Hugging Face penalty on every token already in the prompt or the
 *                           output (&gt; 1 discourages repeats); 1 is off
 * @param presencePenalty    OpenAI: subtracted once from the logit of every token already generated
 * @param frequencyPenalty   OpenAI: subtracted per previous occurrence in the generated text
 * @param seed               fixes the random stream (same seed, same text); null draws one
 */
public record SamplingParams(double temperature, int topK, double topP, double minP, double repetitionPenalty,
                             double presencePenalty, double frequencyPenalty, Long seed) {

    public static SamplingParams greedy() {
        return new SamplingParams(0, 0, 1, 0, 1, 0, 0, null);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    public boolean hasPenalties() {
        return repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0;
    }
}
