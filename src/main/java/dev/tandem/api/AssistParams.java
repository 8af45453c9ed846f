package dev.tandem.api;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.serving.Experiment;
import dev.tandem.serving.ServedModel;
import dev.tandem.serving.TandemConfig;

/** Decides plain or assisted for one request, from its fields and the server's defaults; range-checks them. */
final class AssistParams {
    private AssistParams() {
    }

    /** How one request is decoded: its assisted options (null for plain) and its experiment arm. */
    record Decision(AssistOptions options, String arm) {
        String mode() {
            return options == null ? "plain" : "assisted";
        }
    }

    /**
     * Decides with the experiment: an explicit {@code assisted} wins; else the arm of {@code key}; else the server default.
     * On a model that cannot be rolled back (a stateful OpenVINO model) an explicit {@code assisted: true} is a 400,
     * and a request that does not say is decoded plainly outside the experiment (arm "none"): neither the server
     * default nor the experiment's assisted arm can apply to it (ModelRegistry warns about that at start-up).
     */
    static Decision decide(AssistFields r, ServedModel model, TandemConfig.Assisted defaults, Experiment experiment,
                           String key) {
        if (r.assisted() == null && model.assistedUnavailableReason().isPresent()) {
            return new Decision(resolve(r, false, model, defaults), Experiment.NONE);
        }
        Experiment.Assignment a = experiment.assign(r.assisted(), key, defaults.enabledByDefault());
        return new Decision(resolve(r, a.assisted(), model, defaults), a.arm());
    }

    /** The request's assisted options, or null for plain decoding. */
    static AssistOptions resolve(AssistFields r, ServedModel model, TandemConfig.Assisted defaults) {
        boolean byDefault = defaults.enabledByDefault() && model.assistedUnavailableReason().isEmpty();
        return resolve(r, r.assisted() != null ? r.assisted() : byDefault, model, defaults);
    }

    private static AssistOptions resolve(AssistFields r, boolean assisted, ServedModel model, TandemConfig.Assisted defaults) {
        boolean hasDraft = model.assisted() != null && model.assisted().hasDraft();
        // validate every field given, whether or not this request ends up assisted
        Assistant assistant = r.assistant() == null ? null : assistant(r.assistant(), "assistant");
        int k = r.numAssistantTokens() == null ? defaults.numAssistantTokens() : r.numAssistantTokens();
        if (k < 1 || k > AssistOptions.MAX_ASSISTANT_TOKENS) {
            throw ApiException.invalid("num_assistant_tokens", "num_assistant_tokens must be in [1, 16], got " + k);
        }
        Schedule schedule = schedule(r.assistantSchedule() == null ? defaults.schedule() : r.assistantSchedule());
        double threshold = r.assistantConfidenceThreshold() == null ? defaults.confidenceThreshold()
                : r.assistantConfidenceThreshold();
        if (!(threshold >= 0 && threshold <= 1)) {
            throw ApiException.invalid("assistant_confidence_threshold",
                    "assistant_confidence_threshold must be in [0, 1], got " + threshold);
        }
        int ngram = r.promptLookupNgramSize() == null ? defaults.promptLookupNgramSize() : r.promptLookupNgramSize();
        if (ngram < 1 || ngram > AssistOptions.MAX_NGRAM) {
            throw ApiException.invalid("prompt_lookup_ngram_size", "prompt_lookup_ngram_size must be in [1, 8], got " + ngram);
        }

        if (!assisted) {
            return null;
        }
        var unavailable = model.assistedUnavailableReason();
        if (unavailable.isPresent()) {  // whichever assistant: the target's own cache is rolled back every round
            throw ApiException.invalid("assisted", "assisted decoding is unavailable: " + unavailable.get()
                    + " Send the request without \"assisted\" (or with assisted=false) for plain decoding.");
        }
        if (assistant == null) {
            assistant = defaults.assistant().map(a -> assistant(a, "assistant"))
                    .orElse(hasDraft ? Assistant.DRAFT : Assistant.PROMPT_LOOKUP);
        }
        if (assistant == Assistant.DRAFT && !hasDraft) {
            throw ApiException.invalid("assistant", "assistant 'draft' needs a draft model, and none is configured"
                    + " (tandem.draft.model-dir); use assistant 'prompt_lookup' or assisted=false");
        }
        return new AssistOptions(assistant, k, schedule, threshold, ngram, r.numAssistantTokens() != null);
    }

    private static Assistant assistant(String name, String param) {
        return switch (name) {
            case "draft" -> Assistant.DRAFT;
            case "prompt_lookup" -> Assistant.PROMPT_LOOKUP;
            default -> throw ApiException.invalid(param, "assistant must be 'draft' or 'prompt_lookup', got '" + name + "'");
        };
    }

    private static Schedule schedule(String name) {
        return switch (name) {
            case "constant" -> Schedule.CONSTANT;
            case "heuristic" -> Schedule.HEURISTIC;
            default -> throw ApiException.invalid("assistant_schedule",
                    "assistant_schedule must be 'constant' or 'heuristic', got '" + name + "'");
        };
    }
}
