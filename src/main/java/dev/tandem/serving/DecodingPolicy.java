package dev.tandem.serving;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistOptions.Assistant;
import dev.tandem.generation.AssistOptions.Schedule;
import dev.tandem.generation.DecodingMode;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.util.Optional;

/**
 * Decides, for one request, plain or assisted decoding and with which options: the one place that
 * does. Every generation route (OpenAI completions and chat, TGI generate and generate_stream) asks
 * it once and passes the {@link Decision} on, unchanged, to admission ({@link KvDemand}) and to the
 * {@link GenerationService}, which builds the sequence from it.
 *
 * <p>Order of precedence:
 * <ol>
 *   <li>Every assisted field the request sends is range-checked first, whether or not the request
 *       ends up assisted: {@code {"assisted": false, "num_assistant_tokens": 99}} is still refused
 *       ({@link InvalidField}, a 400; 422 on the TGI routes).</li>
 *   <li>A model that cannot roll its KV cache back ({@link ServedModel#assistedUnavailableReason()},
 *       a stateful OpenVINO model) is decoded plainly when the request does not say, outside the
 *       experiment (arm "none"): neither the server default nor an assisted arm can apply to it.</li>
 *   <li>The request's own {@code assisted} field: false is plain and never speculated, true is
 *       assisted (refused on a model of rule 2); arm "explicit", outside the experiment.</li>
 *   <li>Else the A/B {@link Experiment} when it is on: the arm of the experiment key (the
 *       {@code X-Experiment-Key} header or the OpenAI {@code user} field) decides.</li>
 *   <li>Else the server default, {@code tandem.assisted.enabled-by-default} (arm "none").</li>
 * </ol>
 * An assisted request then takes each option from the request, else from {@code tandem.assisted.*};
 * its assistant is the request's {@code assistant}, else the configured one, else the draft model
 * when one is loaded, else prompt lookup. Asking for the draft when none is loaded is refused.
 *
 * <p>Stateless: a {@code @Singleton} of the configuration and the experiment.
 */
@Singleton
public class DecodingPolicy {
    private final TandemConfig.Assisted defaults;
    private final Experiment experiment;

    @Inject
    DecodingPolicy(TandemConfig config, Experiment experiment) {
        this(config.assisted(), experiment);
    }

    /** A policy over {@code defaults} (the {@code tandem.assisted.*} settings) and {@code experiment}. */
    public DecodingPolicy(TandemConfig.Assisted defaults, Experiment experiment) {
        this.defaults = defaults;
        this.experiment = experiment;
    }

    /**
     * How one request is decoded, and the experiment arm it is recorded under.
     *
     * @param decoding plain, or assisted with its options
     * @param arm      {@link Experiment#ASSISTED} or {@link Experiment#PLAIN} when the experiment chose,
     *                 {@link Experiment#EXPLICIT} when the request did, {@link Experiment#NONE} otherwise
     */
    public record Decision(DecodingMode decoding, String arm) {
        /** Plain decoding outside the experiment: what a caller that decides nothing (warm-up, tests) runs. */
        public static final Decision PLAIN = new Decision(DecodingMode.PLAIN, Experiment.NONE);

        /** "plain" or "assisted": the {@code X-Decoding-Mode} response header. */
        public String mode() {
            return decoding.label();
        }

        public boolean isAssisted() {
            return decoding.isAssisted();
        }
    }

    /**
     * A request field with a value the policy refuses; the routes answer it as a 400 (422 on TGI) naming
     * {@link #param()}, with this message.
     */
    public static final class InvalidField extends RuntimeException {
        private final String param;

        InvalidField(String param, String message) {
            super(message);
            this.param = param;
        }

        /** The request field at fault, as the API spells it ({@code num_assistant_tokens}). */
        public String param() {
            return param;
        }
    }

    /**
     * Decides {@code request} on {@code model} in the order of the class comment; {@code experimentKey}
     * (may be null: then a random arm) places it in the experiment.
     *
     * @throws InvalidField when a field is out of range, or assisted decoding is asked for and cannot run
     */
    public Decision decide(AssistFields request, ServedModel model, String experimentKey) {
        Checked fields = check(request);
        Optional<String> unavailable = model.assistedUnavailableReason();
        if (request.assisted() == null && unavailable.isPresent()) {
            return Decision.PLAIN;
        }
        Experiment.Assignment assignment = experiment.assign(request.assisted(), experimentKey, defaults.enabledByDefault());
        if (!assignment.assisted()) {
            return new Decision(DecodingMode.PLAIN, assignment.arm());
        }
        if (unavailable.isPresent()) {  // whichever assistant: the target's own cache is rolled back every round
            throw new InvalidField("assisted", "assisted decoding is unavailable: " + unavailable.get()
                    + " Send the request without \"assisted\" (or with assisted=false) for plain decoding.");
        }
        return new Decision(DecodingMode.assisted(options(fields, model)), assignment.arm());
    }

    /**
     * The request's fields range-checked, each defaulted from the configuration but the assistant
     * (null when the request names none: it depends on the model, see {@link #options}).
     */
    private record Checked(Assistant assistant, int numAssistantTokens, Schedule schedule, double threshold,
                           int ngramSize, boolean lengthFixed) {
    }

    private Checked check(AssistFields r) {
        Assistant assistant = r.assistant() == null ? null : assistant(r.assistant());
        int k = r.numAssistantTokens() == null ? defaults.numAssistantTokens() : r.numAssistantTokens();
        if (k < 1 || k > AssistOptions.MAX_ASSISTANT_TOKENS) {
            throw new InvalidField("num_assistant_tokens", "num_assistant_tokens must be in [1, 16], got " + k);
        }
        Schedule schedule = schedule(r.assistantSchedule() == null ? defaults.schedule() : r.assistantSchedule());
        double threshold = r.assistantConfidenceThreshold() == null ? defaults.confidenceThreshold()
                : r.assistantConfidenceThreshold();
        if (!(threshold >= 0 && threshold <= 1)) {
            throw new InvalidField("assistant_confidence_threshold",
                    "assistant_confidence_threshold must be in [0, 1], got " + threshold);
        }
        int ngram = r.promptLookupNgramSize() == null ? defaults.promptLookupNgramSize() : r.promptLookupNgramSize();
        if (ngram < 1 || ngram > AssistOptions.MAX_NGRAM) {
            throw new InvalidField("prompt_lookup_ngram_size", "prompt_lookup_ngram_size must be in [1, 8], got " + ngram);
        }
        return new Checked(assistant, k, schedule, threshold, ngram, r.numAssistantTokens() != null);
    }

    /** The options of a request decided assisted: its assistant chosen, and available on {@code model}. */
    private AssistOptions options(Checked f, ServedModel model) {
        boolean hasDraft = model.assisted() != null && model.assisted().hasDraft();
        Assistant assistant = f.assistant();
        if (assistant == null) {
            assistant = defaults.assistant().map(DecodingPolicy::assistant)
                    .orElse(hasDraft ? Assistant.DRAFT : Assistant.PROMPT_LOOKUP);
        }
        if (assistant == Assistant.DRAFT && !hasDraft) {
            throw new InvalidField("assistant", "assistant 'draft' needs a draft model, and none is configured"
                    + " (tandem.draft.model-dir); use assistant 'prompt_lookup' or assisted=false");
        }
        return new AssistOptions(assistant, f.numAssistantTokens(), f.schedule(), f.threshold(), f.ngramSize(),
                f.lengthFixed());
    }

    private static Assistant assistant(String name) {
        return switch (name) {
            case "draft" -> Assistant.DRAFT;
            case "prompt_lookup" -> Assistant.PROMPT_LOOKUP;
            default -> throw new InvalidField("assistant", "assistant must be 'draft' or 'prompt_lookup', got '" + name + "'");
        };
    }

    private static Schedule schedule(String name) {
        return switch (name) {
            case "constant" -> Schedule.CONSTANT;
            case "heuristic" -> Schedule.HEURISTIC;
            default -> throw new InvalidField("assistant_schedule",
                    "assistant_schedule must be 'constant' or 'heuristic', got '" + name + "'");
        };
    }
}
