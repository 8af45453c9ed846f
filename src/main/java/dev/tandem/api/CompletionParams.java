package dev.tandem.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.SamplingParams;
import dev.tandem.model.SamplingDefaults;
import dev.tandem.serving.ServedModel;
import dev.tandem.serving.TandemConfig;
import java.util.ArrayList;
import java.util.List;

/** Range-checks the fields of a generation request and turns them into a {@link GenerationRequest}. */
final class CompletionParams {
    /** Below this a temperature is treated as greedy (as vLLM does), avoiding overflow in 1/T. */
    private static final double GREEDY_BELOW = 1e-5;
    /**
     * The repetition penalty's bounds (1e-300 was a 500: the float division overflows); shared with a model's own
     * default, which {@link SamplingDefaults} checks at start-up, so a default is always a value a request could send.
     */
    static final double MIN_REPETITION_PENALTY = SamplingDefaults.MIN_REPETITION_PENALTY;
    static final double MAX_REPETITION_PENALTY = SamplingDefaults.MAX_REPETITION_PENALTY;

    private CompletionParams() {
    }

    /** A completion request: prompt from {@code prompt}, logprobs as OpenAI's completions API counts them. */
    static GenerationRequest toGeneration(CompletionRequest r, ServedModel model, TandemConfig.Limits limits) {
        if (r.bestOf() != null && r.bestOf() != 1) {
            throw ApiException.invalid("best_of", "only best_of=1 is supported, got " + r.bestOf());
        }
        if (r.suffix() != null && !r.suffix().isEmpty()) {
            throw ApiException.invalid("suffix", "suffix (insertion) is not supported");
        }
        int logprobs = -1;
        if (r.logprobs() != null) {
            logprobs = r.logprobs();
            if (logprobs < 0 || logprobs > limits.maxLogprobs()) {
                throw ApiException.invalid("logprobs", "logprobs must be in [0, " + limits.maxLogprobs() + "], got " + logprobs);
            }
        }
        return toGeneration(r, promptIds(r.prompt(), model), logprobs, Boolean.TRUE.equals(r.echo()), "prompt", model,
                limits, model.samplingDefaults());
    }

    /**
     * Any generation request whose prompt is already tokenized. A sampling field the request leaves out (absent or
     * null, as everywhere in this API) is taken from {@code defaults} when it sets it (the model's own, on the OpenAI
     * routes: {@link ServedModel#samplingDefaults()}), else from the OpenAI API's defaults; a field the request sets
     * always wins. The model's max_tokens is capped, not refused: by {@code tandem.limits.max-tokens} and by what the
     * context leaves after the prompt (as vLLM caps its default), since the client did not ask for it.
     */
    static GenerationRequest toGeneration(SamplingFields r, int[] prompt, int logprobs, boolean echo, String promptParam,
                                          ServedModel model, TandemConfig.Limits limits, SamplingDefaults defaults) {
        unsupported(r);
        int context = model.maxContext();
        int maxTokens;
        if (r.maxTokens() != null) {
            maxTokens = r.maxTokens();
        } else if (defaults.maxTokens() != null) {  // at least 1, so a prompt that fills the context is refused below
            maxTokens = Math.max(1, Math.min(Math.min(defaults.maxTokens(), limits.maxTokens()), context - prompt.length));
        } else {
            maxTokens = limits.defaultMaxTokens();
        }
        if (maxTokens < 1) {
            throw ApiException.invalid("max_tokens", "max_tokens must be at least 1, got " + maxTokens);
        }
        if (maxTokens > limits.maxTokens()) {
            throw ApiException.invalid("max_tokens", "max_tokens must be at most " + limits.maxTokens() + ", got " + maxTokens);
        }
        if (prompt.length + maxTokens > context) {
            throw new ApiException(400, "invalid_request_error", prompt.length >= context ? promptParam : "max_tokens",
                    "context_length_exceeded", "This model's maximum context length is " + context
                    + " tokens; the request asks for " + (prompt.length + maxTokens) + " (" + prompt.length
                    + " in the prompt, " + maxTokens + " to generate). Shorten the prompt or lower max_tokens.");
        }
        double temperature = number(or(r.temperature(), defaults.temperature()), 1.0, "temperature");
        if (temperature < 0) {
            throw ApiException.invalid("temperature", "temperature must be >= 0, got " + temperature);
        }
        double topP = number(or(r.topP(), defaults.topP()), 1.0, "top_p");
        if (!(topP > 0 && topP <= 1)) {
            throw ApiException.invalid("top_p", "top_p must be in (0, 1], got " + topP);
        }
        Integer k = or(r.topK(), defaults.topK());
        int topK = k == null ? 0 : k;
        if (topK < 0) {
            throw ApiException.invalid("top_k", "top_k must be >= 0 (0 disables it), got " + topK);
        }
        double minP = number(or(r.minP(), defaults.minP()), 0.0, "min_p");
        if (minP < 0 || minP > 1) {
            throw ApiException.invalid("min_p", "min_p must be in [0, 1], got " + minP);
        }
        double repetition = number(or(r.repetitionPenalty(), defaults.repetitionPenalty()), 1.0, "repetition_penalty");
        if (!(repetition >= MIN_REPETITION_PENALTY && repetition <= MAX_REPETITION_PENALTY)) {
            throw ApiException.invalid("repetition_penalty", "repetition_penalty must be in [" + MIN_REPETITION_PENALTY
                    + ", " + MAX_REPETITION_PENALTY + "] (1 disables it), got " + repetition);
        }
        double presence = penalty(r.presencePenalty(), "presence_penalty");
        double frequency = penalty(r.frequencyPenalty(), "frequency_penalty");
        SamplingParams sampling = new SamplingParams(temperature < GREEDY_BELOW ? 0 : temperature, topK, topP, minP,
                repetition, presence, frequency, r.seed());
        return new GenerationRequest(prompt, sampling, maxTokens, stops(r.stop(), limits.maxStopStrings()), logprobs, echo,
                Boolean.TRUE.equals(r.ignoreEos()));
    }

    /** The request's value when it sets one, else the model's default (null: neither; the API default applies). */
    private static <T> T or(T requested, T modelDefault) {
        return requested != null ? requested : modelDefault;
    }

    private static void unsupported(SamplingFields r) {
        if (r.n() != null && r.n() != 1) {
            throw ApiException.invalid("n", "only n=1 is supported, got " + r.n());
        }
        if (r.streamOptions() != null && !Boolean.TRUE.equals(r.stream())) {
            throw ApiException.invalid("stream_options", "stream_options can only be set when stream is true");
        }
        if (r.logitBias() != null && !r.logitBias().isEmpty()) {
            throw ApiException.invalid("logit_bias", "logit_bias is not supported");
        }
    }

    /** A string, a one-string array, or an array of token ids. */
    private static int[] promptIds(JsonNode p, ServedModel model) {
        if (p == null || p.isNull() || p.isMissingNode()) {
            throw new ApiException(400, "invalid_request_error", "prompt", "missing_required_parameter",
                    "prompt is required (a string, or an array of token ids)");
        }
        if (p.isTextual() || p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            int[] ids = model.tokenizer().encodePrompt(p.isTextual() ? p.asText() : p.get(0).asText());
            if (ids.length == 0) {
                throw ApiException.invalid("prompt", "the prompt is empty and this model has no BOS token to start from");
            }
            return ids;
        }
        if (p.isArray() && !p.isEmpty() && allInts(p)) {
            int vocab = model.lm().shape().vocabSize();
            int[] ids = new int[p.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode id = p.get(i);
                // canConvertToInt first: asLong() would wrap an id beyond 64 bits (2^64 + 5 read as 5)
                if (!id.canConvertToInt() || id.intValue() < 0 || id.intValue() >= vocab) {
                    throw ApiException.invalid("prompt", "token id " + id.asText() + " at prompt[" + i
                            + "] is outside the vocabulary [0, " + vocab + ")");
                }
                ids[i] = id.intValue();
            }
            return ids;
        }
        if (p.isArray() && p.size() > 1 && allText(p)) {
            throw ApiException.invalid("prompt", "batched prompts are not supported; send one prompt per request");
        }
        throw ApiException.invalid("prompt", "prompt must be a string or a non-empty array of token ids");
    }

    private static boolean allInts(JsonNode a) {
        for (JsonNode e : a) {
            if (!e.isIntegralNumber()) {
                return false;
            }
        }
        return true;
    }

    private static boolean allText(JsonNode a) {
        for (JsonNode e : a) {
            if (!e.isTextual()) {
                return false;
            }
        }
        return true;
    }

    private static List<String> stops(JsonNode s, int max) {
        if (s == null || s.isNull()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (s.isTextual()) {
            out.add(s.asText());
        } else if (s.isArray()) {
            for (JsonNode e : s) {
                if (!e.isTextual()) {
                    throw ApiException.invalid("stop", "stop must be a string or an array of strings");
                }
                out.add(e.asText());
            }
        } else {
            throw ApiException.invalid("stop", "stop must be a string or an array of strings");
        }
        if (out.size() > max) {
            throw ApiException.invalid("stop", "at most " + max + " stop strings are allowed, got " + out.size());
        }
        if (out.stream().anyMatch(String::isEmpty)) {
            throw ApiException.invalid("stop", "stop strings must not be empty");
        }
        return out;
    }

    private static double penalty(Double v, String name) {
        double x = number(v, 0.0, name);
        if (x < -2 || x > 2) {
            throw ApiException.invalid(name, name + " must be in [-2, 2], got " + x);
        }
        return x;
    }

    private static double number(Double v, double fallback, String name) {
        if (v == null) {
            return fallback;
        }
        if (!Double.isFinite(v)) {
            throw ApiException.invalid(name, name + " must be a finite number");
        }
        return v;
    }
}
