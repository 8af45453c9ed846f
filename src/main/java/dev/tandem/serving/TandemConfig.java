package dev.tandem.serving;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.util.Optional;

/** All of Tandem's configuration ({@code tandem.*} in application.properties, or TANDEM_* environment variables). */
@ConfigMapping(prefix = "tandem")
public interface TandemConfig {

    /** The model that generates the text. */
    Model target();

    /** The optional draft model for assisted generation (must share the target's tokenizer). */
    Optional<Model> draft();

    OnnxRuntime onnxruntime();

    Limits limits();

    interface Model {
        /** Directory in the Hugging Face Optimum ONNX layout. */
        Path modelDir();

        /** Id the model is served under; defaults to the directory's name. */
        Optional<String> id();

        /** Inference engine: onnxruntime (the default). */
        Optional<String> engine();
    }

    interface OnnxRuntime {
        /** Intra-op threads; 0 means one per available core. */
        @WithDefault("0")
        int intraOpThreads();

        /** One thread pool shared by all sessions (target and draft) instead of one per session. */
        @WithDefault("true")
        boolean globalThreadPool();

        /** Let idle pool threads spin-wait. */
        @WithDefault("false")
        boolean spinning();

        /** Graph optimisation level: none, basic, extended, all. */
        @WithDefault("all")
        String optimizationLevel();
    }

    interface Limits {
        /** Largest max_tokens a request may ask for. */
        @WithDefault("2048")
        int maxTokens();

        /** max_tokens when a request does not say (OpenAI's default). */
        @WithDefault("16")
        int defaultMaxTokens();

        /** Largest number of alternatives a request may ask for in logprobs. */
        @WithDefault("20")
        int maxLogprobs();

        /** Most stop strings per request. */
        @WithDefault("16")
        int maxStopStrings();
    }
}
