package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.EngineProvider;
import dev.tandem.engine.ModelFiles;
import dev.tandem.engine.ModelShape;
import dev.tandem.engine.StepInvariance;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.AssistedDecoder;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.model.ChatTemplate;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.SamplingDefaults;
import dev.tandem.model.TextTokenizer;
import io.quarkus.arc.All;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Loads the configured models once at start-up (a bad model directory fails start-up with a
 * message naming the file) and hands them to requests.
 */
@ApplicationScoped
public class ModelRegistry {
    private static final Logger LOG = Logger.getLogger(ModelRegistry.class);

    private final TandemConfig config;
    /** Every engine there is (each engine's folder has its provider bean); serving knows none by name. */
    private final List<EngineProvider> engines;
    private volatile ServedModel target;
    private volatile ServedModel draft;
    private final java.util.concurrent.atomic.AtomicInteger loaded = new java.util.concurrent.atomic.AtomicInteger();

    ModelRegistry(TandemConfig config, @All List<EngineProvider> engines) {
        this.config = config;
        this.engines = List.copyOf(engines);
    }

    void onStart(@Observes StartupEvent event) {
        long t0 = System.nanoTime();
        if (!config.target().enabled()) {
            throw new IllegalStateException("tandem.target.enabled=false: the target cannot be switched off (only the draft can)");
        }
        ServedModel t = load(config.target(), false);
        ServedModel d = null;
        try {
            d = config.draft().filter(TandemConfig.Model::enabled).map(m -> load(m, true)).orElse(null);
            if (d != null) {
                checkDraftCanRollBack(d);
                checkSameVocabulary(t, d);
            }
        } catch (RuntimeException e) {
            t.close();
            if (d != null) {
                d.close();
            }
            throw e;
        }
        draft = d;
        // plain and assisted decoding share the one loaded target (and draft)
        target = t.withAssistedDecoder(new AssistedDecoder(t.lm(), d == null ? null : d.lm(), t.tokenizer(),
                t.directory().config().eosTokenIds()));
        LOG.infof("models ready in %d ms: target %s%s", (System.nanoTime() - t0) / 1_000_000, target.id(),
                draft == null ? "" : ", draft " + draft.id());
        plainOnlyWarning(target, draft != null, config.assisted().enabledByDefault(), config.experiment().enabled())
                .ifPresent(LOG::warn);
        warmUp();
    }

    /**
     * One short generation through every decoding path the target can serve, so the first request does not pay for
     * first-run costs. Not a request's decision (that is {@link DecodingPolicy}): each path is run once on purpose.
     */
    private void warmUp() {
        long t0 = System.nanoTime();
        var req = new dev.tandem.generation.GenerationRequest(target.tokenizer().encodePrompt(""),
                dev.tandem.generation.SamplingParams.greedy(), 4, java.util.List.of(), -1, false);
        target.decoder().generate(req);
        boolean assisted = target.assistedUnavailableReason().isEmpty();  // false: plain decoding only
        if (assisted) {
            target.assisted().generate(req, warmUpOptions(AssistOptions.Assistant.PROMPT_LOOKUP));
        }
        if (assisted && draft != null) {
            target.assisted().generate(req, warmUpOptions(AssistOptions.Assistant.DRAFT));
        }
        warmUpMillis = (System.nanoTime() - t0) / 1_000_000;
        warmedUp = true;
        LOG.infof("warm-up generation done in %d ms%s", warmUpMillis, assisted ? "" : " (plain decoding only)");
    }

    /** Two candidates a round, n-grams up to 2: enough to run every part of a round. */
    private static AssistOptions warmUpOptions(AssistOptions.Assistant assistant) {
        return new AssistOptions(assistant, 2, AssistOptions.Schedule.CONSTANT, 0, 2);
    }

    private volatile boolean warmedUp;
    private boolean closed;
    private volatile long warmUpMillis;

    public boolean warmedUp() {
        return warmedUp;
    }

    public long warmUpMillis() {
        return warmUpMillis;
    }

    /**
     * Frees the models. Called by {@link GracefulShutdown} once no generation runs any more (the
     * engines also refuse, rather than crash on, a forward pass that comes after). Idempotent.
     */
    synchronized void close() {
        close(true);
    }

    /**
     * As {@link #close()}; with {@code everything} false only the engines close (they must, before ONNX
     * Runtime's exit hook frees its environment) and the tokenizers, which have no such guard and may
     * still be in use by a generation that did not stop, are left to the process exit.
     */
    synchronized void close(boolean everything) {
        if (closed) {
            return;
        }
        closed = true;
        for (ServedModel m : new ServedModel[] {draft, target}) {
            if (m != null && everything) {
                m.close();
            } else if (m != null) {
                m.closeEngine();
            }
        }
        engines.forEach(EngineProvider::close);  // their runtimes, after the models opened on them
    }

    private ServedModel load(TandemConfig.Model m, boolean isDraft) {
        String engine = m.engine();
        EngineProvider provider = provider(engine, m.modelDir(), engines);
        ModelDirectory dir;
        try {
            dir = ModelDirectory.open(m.modelDir(), provider.preferredGraphs(engine), m.graph());
        } catch (IllegalArgumentException e) {
            boolean aboutKey = m.graph().isPresent() && e.getMessage().startsWith("graph '");
            throw aboutKey ? new IllegalArgumentException("tandem." + (isDraft ? "draft" : "target") + "." + e.getMessage(), e) : e;
        }
        LOG.infof("%s: %s on %s", dir.name(), dir.graph().getFileName(), engine);
        Optional<ChatTemplate> template = chatTemplate(dir, m, isDraft);  // before the engine: nothing to close yet
        SamplingDefaults sampling = samplingDefaults(dir, m, isDraft);
        loaded.incrementAndGet();
        Served served = openInvariant(dir, m, provider, engine, isDraft);
        dir = served.dir();
        EngineProvider.Opened opened = served.opened();
        CausalLm lm = opened.lm();
        String engineName = opened.description();
        TextTokenizer tokenizer;
        try {
            tokenizer = TextTokenizer.load(dir);
        } catch (RuntimeException e) {
            lm.close();
            throw e;
        }
        try {
            checkTokenizerFits(dir, tokenizer, lm.shape().vocabSize());
        } catch (RuntimeException e) {
            tokenizer.close();
            lm.close();
            throw e;
        }
        String id = m.id().orElse(dir.name());
        return new ServedModel(id, engineName, dir, tokenizer, lm,
                new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds()), null, Instant.now().getEpochSecond(),
                template, dir.quantization(), sampling);
    }

    /** A model directory with the graph that was opened from it. */
    record Served(ModelDirectory dir, EngineProvider.Opened opened) {
    }

    /**
     * Opens the model on its engine. A target is probed ({@link StepInvariance}): greedy assisted decoding reproduces
     * plain decoding to the bit only if the target gives a token the same bits alone, in a block and in a batch (a
     * draft's arithmetic does not matter: its proposals are only proposals). A model that is not, but is once no step
     * computes a single row ({@link PaddedSteps}: the one-row kernel is the odd one out), is served padded. When,
     * padded or not, it is not invariant and the engine chose one of its own
     * graphs (no {@code graph} configured: ONNX Runtime's {@code model_optimized.onnx}) and on this processor it is
     * not invariant, the directory's portable graph is served instead, with a warning that says how to run the other
     * anyway ({@code tandem.target.graph}); any other graph is served as it is and the probe's finding logged. Measured:
     * the bundled target's 4-bit {@code model_optimized.onnx} is invariant on AVX-512 machines; on an AVX2-only one it
     * is not, and is once padded (docs/benchmarks.md).
     */
    static Served openInvariant(ModelDirectory dir, TandemConfig.Model m, EngineProvider provider, String engine,
                                boolean isDraft) {
        EngineProvider.Opened opened = provider.open(engine, servedFiles(dir, m, isDraft), isDraft);
        if (isDraft) {
            return new Served(dir, opened);
        }
        boolean enginesChoice = m.graph().isEmpty()
                && provider.preferredGraphs(engine).contains(dir.graph().getFileName().toString());
        StepInvariance.Choice choice;
        try {
            choice = StepInvariance.choose(opened.lm());
        } catch (RuntimeException e) {
            if (enginesChoice) {
                opened.lm().close();
                throw e;
            }
            LOG.debugf(e, "%s: step invariance not probed", dir.name());
            return new Served(dir, opened);
        }
        StepInvariance.Result probe = choice.probe();
        if (choice.isPadded()) {
            LOG.infof("%s: %s is %s on this processor, but only where a step computes one row: a step that would feed"
                    + " one token in all gets a second row (a copy of the token, forgotten after), so every token meets"
                    + " the same kernels and the model is %s", dir.name(), dir.graph().getFileName(), probe,
                    choice.padded());
            return new Served(dir, new EngineProvider.Opened(choice.invariant(), opened.description()));
        }
        if (probe.holds() || !enginesChoice) {
            LOG.infof("%s: %s is %s%s", dir.name(), dir.graph().getFileName(), probe, probe.holds() ? ""
                    : (choice.padded() == null ? "" : " (padded to two rows a step: " + choice.padded() + ")")
                    + " on this processor: greedy assisted output may part from plain output where two tokens nearly tie");
            return new Served(dir, opened);
        }
        String graph = dir.graph().getFileName().toString();
        // the directory opened with the engine's graph, so its portable graph exists (ModelDirectory.open requires one)
        ModelDirectory portable = ModelDirectory.open(m.modelDir(), List.of(), Optional.empty());
        opened.lm().close();
        LOG.warnf("%s: %s is %s on this processor%s, so greedy assisted decoding would not reproduce plain decoding to the"
                + " bit; serving %s instead (slower). To run %s anyway, set tandem.target.graph=%s.", dir.name(), graph,
                probe, choice.padded() == null ? "" : " (padded to two rows a step: " + choice.padded() + ")",
                portable.graph().getFileName(), graph, graph);
        return new Served(portable, provider.open(engine, servedFiles(portable, m, isDraft), isDraft));
    }

    /**
     * The files an engine opens, with the context the model is served at: the model's own, or the smaller one
     * {@code tandem.target.max-context} (or the draft's key) sets.
     *
     * @throws IllegalArgumentException naming the key for a value outside 1 .. the model's context
     */
    static ModelFiles servedFiles(ModelDirectory dir, TandemConfig.Model m, boolean isDraft) {
        ModelFiles files = dir.files();
        if (m.maxContext().isEmpty()) {
            return files;
        }
        int max = m.maxContext().get();
        ModelShape s = files.declared();
        if (max < 1 || max > s.maxContext()) {
            throw new IllegalArgumentException("tandem." + (isDraft ? "draft" : "target") + ".max-context must be between 1"
                    + " and the context " + dir.name() + " was built for, " + s.maxContext() + " (" + files.configJson()
                    .getFileName() + "), is " + max);
        }
        if (max < s.maxContext()) {
            LOG.infof("%s: served with a context of %d tokens (built for %d)", dir.name(), max, s.maxContext());
        }
        return new ModelFiles(files.graph(), files.configJson(),
                new ModelShape(s.vocabSize(), max, s.layers(), s.kvHeads(), s.headDim(), s.kvBytesPerElement()));
    }

    /**
     * What a request that leaves a sampling field out gets from the model ({@code tandem.target.generation-config}):
     * under {@code auto} the model's own defaults, logged as vLLM logs them so the operator sees that requests no
     * longer get the OpenAI defaults; under {@code none}, and for a draft (requests sample with the target's
     * settings), nothing.
     *
     * @throws IllegalArgumentException naming the key for a value other than auto or none
     */
    static SamplingDefaults samplingDefaults(ModelDirectory dir, TandemConfig.Model m, boolean isDraft) {
        String key = "tandem." + (isDraft ? "draft" : "target") + ".generation-config";
        String mode = m.generationConfig();
        if (!mode.equals("auto") && !mode.equals("none")) {
            throw new IllegalArgumentException(key + " must be auto (apply the model's sampling defaults) or none, is '"
                    + mode + "'");
        }
        SamplingDefaults model = dir.config().samplingDefaults();
        if (isDraft) {
            return SamplingDefaults.NONE;
        }
        if (mode.equals("none")) {
            LOG.infof("%s: sampling defaults of %s not applied (%s=none)%s", dir.name(), model.source(), key,
                    model.isEmpty() ? "" : ": " + model.describe());
            return SamplingDefaults.NONE;
        }
        if (model.isEmpty()) {
            LOG.infof("%s: no sampling defaults in %s: requests get the OpenAI defaults", dir.name(), model.source());
        } else {
            LOG.infof("%s: sampling defaults from %s: %s (for requests that leave them out; %s=none ignores them)",
                    dir.name(), model.source(), model.describe(), key);
        }
        return model;
    }

    /**
     * The model's chat template: the file {@code tandem.target.chat-template} (or the draft's key) names, else
     * the directory's own ({@link ChatTemplate#of(ModelDirectory, Optional)} is where that is looked up).
     *
     * @throws IllegalArgumentException naming the key when the configured file cannot be used
     */
    static Optional<ChatTemplate> chatTemplate(ModelDirectory dir, TandemConfig.Model m, boolean isDraft) {
        String key = "tandem." + (isDraft ? "draft" : "target") + ".chat-template";
        Optional<ChatTemplate> template;
        try {
            template = ChatTemplate.of(dir, m.chatTemplate());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException((m.chatTemplate().isPresent() ? key + ": " : "") + e.getMessage(), e);
        }
        template.ifPresentOrElse(t -> LOG.infof("chat template of %s: %s", dir.name(), t.origin()),
                () -> LOG.infof("%s has no chat template (chat_template.jinja, tokenizer_config.json's chat_template"
                        + " or %s): /v1/chat/completions refuses it", dir.name(), key));
        return template;
    }

    /**
     * The provider of the engine called {@code engine} ({@code tandem.target.engine},
     * {@code tandem.draft.engine}), checked before the model directory is read.
     *
     * @throws IllegalArgumentException for a name no provider serves, listing the names there are
     */
    static EngineProvider provider(String engine, java.nio.file.Path modelDir, List<EngineProvider> engines) {
        return engines.stream().filter(e -> e.names().contains(engine)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("unknown engine '" + engine + "' for " + modelDir
                        + " (available: " + String.join(", ", engineNames(engines)) + ")"));
    }

    /** The names a model can select an engine by, sorted. */
    List<String> engineNames() {
        return engineNames(engines);
    }

    /** The names of every engine, sorted. */
    static List<String> engineNames(List<EngineProvider> engines) {
        return engines.stream().flatMap(e -> e.names().stream()).sorted(Comparator.naturalOrder()).toList();
    }

    /**
     * A draft is rolled back every round (its cache is truncated to what the target accepted), so
     * its engine must support rollback: a stateful OpenVINO draft fails start-up.
     */
    static void checkDraftCanRollBack(ServedModel draft) {
        if (!draft.lm().supportsRollback()) {
            throw new IllegalArgumentException("draft model '" + draft.id() + "' (" + draft.engine() + ") is a stateful"
                    + " model: its KV cache lives inside the runtime and cannot be truncated, but a draft's cache is"
                    + " rolled back every round of assisted decoding. Export the draft without state (optimum-cli export"
                    + " openvino --disable-stateful) or as ONNX (optimum-cli export onnx --task text-generation-with-past),"
                    + " or remove tandem.draft.model-dir.");
        }
    }

    /**
     * The start-up warning for a target that cannot be assisted while something asks for assisted
     * decoding without the request saying so: the server default or the experiment (whose assisted
     * arm cannot exist), or a configured draft that will never be used. Empty when nothing applies.
     */
    static Optional<String> plainOnlyWarning(ServedModel target, boolean hasDraft, boolean assistedByDefault,
                                             boolean experiment) {
        Optional<String> reason = target.assistedUnavailableReason();
        if (reason.isEmpty() || !(hasDraft || assistedByDefault || experiment)) {
            return Optional.empty();
        }
        StringBuilder w = new StringBuilder(reason.get());
        if (assistedByDefault) {
            w.append(" tandem.assisted.enabled-by-default=true does not apply: requests that do not set 'assisted'"
                    + " are decoded plainly.");
        }
        if (experiment) {
            w.append(" tandem.experiment.enabled=true does not apply: the experiment's assisted arm cannot exist, so"
                    + " requests are not assigned to arms and are decoded plainly (arm 'none').");
        }
        if (hasDraft) {
            w.append(" The configured draft model is loaded but cannot be used.");
        }
        w.append(" Requests with \"assisted\": true get a 400 (422 on the TGI routes).");
        return Optional.of(w.toString());
    }

    /**
     * Every id the tokenizer can produce must be a row of the model's output layer (its logits' last
     * dimension). A tokenizer with more ids belongs to another model: prompts would hold ids the model
     * has no embedding for, and the model's ids mean other text (the service answered empty text).
     * Fewer is fine: output layers are often padded beyond the tokenizer (to a multiple of 64).
     */
    static void checkTokenizerFits(ModelDirectory dir, TextTokenizer tokenizer, int modelVocab) {
        if (tokenizer.vocabSize() > modelVocab) {
            throw new IllegalArgumentException(dir.tokenizerFile() + " has " + tokenizer.vocabSize() + " token ids, but the"
                    + " model " + dir.graph() + " scores only " + modelVocab + " tokens: the tokenizer belongs to another"
                    + " model. Use the tokenizer.json exported with this model.");
        }
    }

    /**
     * A draft can only propose tokens the target understands: same vocabulary size, and every id
     * decodes to the same text, and a probe text encodes to the same ids.
     */
    static void checkSameVocabulary(ServedModel target, ServedModel draft) {
        int vt = target.lm().shape().vocabSize();
        int vd = draft.lm().shape().vocabSize();
        String which = "draft " + draft.directory().dir() + " and target " + target.directory().dir();
        if (vt != vd) {
            throw new IllegalArgumentException(which + " do not share a vocabulary: " + vd + " vs " + vt
                    + " tokens. Assisted generation needs a draft trained with the target's tokenizer." + WITHOUT_DRAFT);
        }
        for (int id = 0; id < vt; id++) {
            String a = target.tokenizer().decode(new int[] {id});
            String b = draft.tokenizer().decode(new int[] {id});
            if (!a.equals(b)) {
                throw new IllegalArgumentException(which + " do not share a vocabulary: token " + id + " is '" + b
                        + "' in the draft's tokenizer.json but '" + a + "' in the target's." + WITHOUT_DRAFT);
            }
        }
        String probe = "The quick brown fox, 1234 — naïve café! \n\t";
        if (!java.util.Arrays.equals(target.tokenizer().encodePrompt(probe), draft.tokenizer().encodePrompt(probe))) {
            throw new IllegalArgumentException(which + " tokenize text differently; assisted generation needs one tokenizer."
                    + WITHOUT_DRAFT);
        }
    }

    /**
     * How to get past a draft that does not fit: the default configuration names the bundled draft, so
     * whoever points tandem.target.model-dir at another model meets this first.
     */
    static final String WITHOUT_DRAFT = " To serve the target without a draft (plain decoding and prompt lookup still"
            + " work), set TANDEM_DRAFT_ENABLED=false (tandem.draft.enabled=false); or point TANDEM_DRAFT_MODEL_DIR"
            + " (tandem.draft.model-dir) at a draft that shares the target's tokenizer.";

    public ServedModel target() {
        return target;
    }

    public Optional<ServedModel> draft() {
        return Optional.ofNullable(draft);
    }

    /** The served model called {@code id}; null or blank means the target. */
    public Optional<ServedModel> find(String id) {
        if (id == null || id.isBlank() || id.equals(target.id())) {
            return Optional.of(target);
        }
        return Optional.empty();
    }

    /** How many models were loaded since start (each exactly once). */
    public int loadedModels() {
        return loaded.get();
    }

    public boolean isReady() {
        return target != null;
    }
}
