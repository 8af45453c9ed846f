package dev.tandem.serving;

import dev.tandem.engine.CausalLm;
import dev.tandem.engine.onnxruntime.OnnxRuntimeOptions;
import dev.tandem.engine.onnxruntime.OrtCausalLm;
import dev.tandem.generation.PlainDecoder;
import dev.tandem.model.ModelDirectory;
import dev.tandem.model.TextTokenizer;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Instant;
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
    private volatile ServedModel target;
    private volatile ServedModel draft;

    ModelRegistry(TandemConfig config) {
        this.config = config;
    }

    void onStart(@Observes StartupEvent event) {
        long t0 = System.nanoTime();
        target = load(config.target());
        draft = config.draft().map(this::load).orElse(null);
        LOG.infof("models ready in %d ms: target %s%s", (System.nanoTime() - t0) / 1_000_000, target.id(),
                draft == null ? "" : ", draft " + draft.id());
    }

    void onStop(@Observes ShutdownEvent event) {
        if (draft != null) {
            draft.close();
        }
        if (target != null) {
            target.close();
        }
    }

    private ServedModel load(TandemConfig.Model m) {
        String engine = m.engine().orElse("onnxruntime");
        if (!"onnxruntime".equals(engine)) {
            throw new IllegalArgumentException("unknown engine '" + engine + "' for " + m.modelDir()
                    + " (available: onnxruntime)");
        }
        ModelDirectory dir = ModelDirectory.open(m.modelDir());
        TandemConfig.OnnxRuntime ort = config.onnxruntime();
        int threads = ort.intraOpThreads() > 0 ? ort.intraOpThreads() : Runtime.getRuntime().availableProcessors();
        CausalLm lm = OrtCausalLm.open(dir.graph(), dir.config().shape(),
                new OnnxRuntimeOptions(threads, ort.globalThreadPool(), ort.spinning(), ort.optimizationLevel()));
        TextTokenizer tokenizer;
        try {
            tokenizer = TextTokenizer.load(dir);
        } catch (RuntimeException e) {
            lm.close();
            throw e;
        }
        String id = m.id().orElse(dir.name());
        return new ServedModel(id, engine, dir, tokenizer, lm,
                new PlainDecoder(lm, tokenizer, dir.config().eosTokenIds()), Instant.now().getEpochSecond());
    }

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

    public boolean isReady() {
        return target != null;
    }
}
