package dev.tandem.serving;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** All of Tandem's configuration ({@code tandem.*} in application.properties, or TANDEM_* environment variables). */
@ConfigMapping(prefix = "tandem")
public interface TandemConfig {

    /** The model that generates the text. */
    Model target();

    /** The optional draft model for assisted generation (must share the target's tokenizer). */
    Optional<Model> draft();

    Assisted assisted();

    Limits limits();

    Serving serving();

    Experiment experiment();

    Health health();

    Memory memory();

    Security security();

    /** Who may call the API (see dev.tandem.api.ApiKeys). */
    interface Security {
        /**
         * Keys a client must send as {@code Authorization: Bearer <key>}; unset or empty leaves the API
         * open. Comma-separated in one property or environment variable (TANDEM_SECURITY_API_KEYS).
         */
        Optional<java.util.List<String>> apiKeys();

        /** Paths (and everything under them) that stay open when keys are set: probes and metrics. */
        @WithDefault("/q/health,/q/metrics")
        java.util.List<String> openPaths();
    }

    /** Memory planning and KV-cache admission (see dev.tandem.memory). */
    interface Memory {
        /**
         * Bytes the KV caches of running requests may reserve together: a size (384M, 2G, 512Mi, bytes),
         * auto (half of the memory the JVM's max heap leaves, container limit included) or unlimited.
         */
        @WithDefault("auto")
        String budget();
    }

    /** The built-in A/B experiment between assisted and plain decoding. */
    interface Experiment {
        /** Assign requests that do not set {@code assisted} to an arm (otherwise the server default applies). */
        @WithDefault("false")
        boolean enabled();

        /** Share of those requests decoded assisted, 0..1. */
        @WithDefault("0.5")
        double assistedShare();

        /** Per-request samples kept per arm for the experiment report. */
        @WithDefault("10000")
        int samples();
    }

    /** Health probes. */
    interface Health {
        /** Readiness runs a real forward pass through each model at most this often (cached in between). */
        @WithDefault("10s")
        Duration probeInterval();

        /** Liveness goes DOWN when a running generation has not finished a decoding step for this long. */
        @WithDefault("60s")
        Duration stepTimeout();
    }

    Scheduler scheduler();

    /** The decoding loop (continuous batching). */
    interface Scheduler {
        /**
         * Tokens one step feeds the target at most (vLLM's max_num_batched_tokens): every decoding sequence's
         * token and candidates first, then prompt chunks in what is left, so a long prompt is fed over several
         * steps while running streams keep their pace. Smaller keeps inter-token latency steadier when prompts
         * arrive; larger gives a long prompt its first token sooner. The default 64 is where a 248-token prompt
         * amid 8 streams raised their inter-token p99 by about one step (44.9 to 58.1 ms on the slots-layout
         * target; 128 gave 136 ms, for a first token 21 ms sooner: docs/benchmarks.md "Long prompt amid streams").
         * Beside decoding sequences {@link #prefillRatio()} usually limits the chunks first.
         */
        @WithDefault("64")
        int maxBatchedTokens();

        /**
         * Beside decoding sequences, a step feeds only as many prompt tokens as take about this many times its decode
         * call, from the times of recent steps (1: a stream's gap between tokens at most about doubles while a prompt
         * is fed; 0: only max-batched-tokens limits the chunks). On a CPU a chunk costs in proportion to its tokens:
         * on the bundled target a 56-token chunk took 12.6 ms where 8 streams' decode call took 3-5 ms, so under the
         * token budget alone their gaps grew 5x while a 248-token prompt was fed (docs/benchmarks.md, "Long prompt amid
         * streams, paced by time").
         */
        @WithDefault("1")
        double prefillRatio();
    }

    /** Concurrency and backpressure. */
    interface Serving {
        /**
         * Sequences that decode at the same time (vLLM's max_num_seqs): they share every step, so more of them give
         * more tokens per second until the step's compute is full (measured up to 16 in docs/benchmarks.md
         * "Continuous batching"); the KV budget ({@code tandem.memory.budget}) bounds them too.
         */
        @WithDefault("16")
        int maxConcurrent();

        /** Requests that may wait for a decoding slot; beyond this a request gets 429 at once. */
        @WithDefault("64")
        int maxQueued();

        /** How long a request waits for a slot before 429. */
        @WithDefault("30s")
        Duration queueTimeout();

        /** Retry-After (seconds) sent with 429. */
        @WithDefault("1")
        int retryAfterSeconds();
    }

    interface Model {
        /** Directory in the Hugging Face Optimum ONNX layout. */
        Path modelDir();

        /** Id the model is served under; defaults to the directory's name. */
        Optional<String> id();

        /**
         * The graph file in the model directory to run, e.g. {@code model.onnx} to serve the portable graph on
         * ONNX Runtime. Absent: the engine's own graph when the directory has one (ONNX Runtime:
         * {@code model_optimized.onnx}), else the directory's portable graph ({@code model.onnx},
         * {@code decoder_model_merged.onnx}, {@code openvino_model.xml}, or genai_config.json's).
         */
        Optional<String> graph();

        /**
         * A Jinja chat template file that replaces the model directory's own (chat_template.jinja beside
         * the tokenizer, else tokenizer_config.json's chat_template): for a model exported without one,
         * or with one that needs fixing, without editing the model's files. A file that cannot be read
         * fails start-up naming this key.
         */
        Optional<Path> chatTemplate();

        /**
         * Inference engine: onnxruntime (the default), openvino, reference (plain Java, engine/reference),
         * or reference-offload (the same, weights read from the file a layer at a time); any name an
         * engine's provider (dev.tandem.engine.EngineProvider) serves. Each engine's own settings are
         * its config group in its folder: tandem.onnxruntime.* (engine/onnxruntime/OnnxRuntimeConfig),
         * tandem.openvino.* (engine/openvino/OpenVinoConfig).
         */
        @WithDefault("onnxruntime")
        String engine();

        /**
         * The model's own sampling defaults (vLLM's {@code --generation-config}): {@code auto} gives a request on the
         * OpenAI routes that leaves out temperature, top_p, top_k, min_p, repetition_penalty or max_tokens the value
         * the model's generation_config.json (or genai_config.json's {@code search}) sets, as vLLM does by default;
         * {@code none} ignores them (the OpenAI defaults, as before). The TGI routes keep TGI's defaults either way.
         * Read for the target only: requests sample with the target's settings, never the draft's.
         */
        @WithDefault("auto")
        String generationConfig();

        /**
         * The most tokens a sequence of this model holds (prompt and generated together), below the context the
         * model was built for (config.json's {@code max_position_embeddings}, genai_config.json's
         * {@code context_length}): vLLM's {@code --max-model-len}, llama.cpp's {@code -c}. Requests are limited to it
         * and every cache is sized for it, so a long-context model on a small machine reserves, per sequence, only
         * this many positions (a slot pool reserves a whole context per row). Absent: the model's own context. A
         * value outside 1 .. the model's context fails start-up naming this key.
         */
        Optional<Integer> maxContext();

        /**
         * For the draft only: false serves the target without the configured draft
         * ({@code TANDEM_DRAFT_ENABLED=false} switches off the default configuration's draft).
         */
        @WithDefault("true")
        boolean enabled();
    }

    /** Assisted generation: what a request gets when it does not say. */
    interface Assisted {
        /** Decode assisted when a request does not set {@code assisted}. */
        @WithDefault("false")
        boolean enabledByDefault();

        /** draft or prompt_lookup; absent means draft when a draft model is configured, else prompt_lookup. */
        Optional<String> assistant();

        /** Candidates per round (the start value under the heuristic schedule), 1..16. */
        @WithDefault("5")
        int numAssistantTokens();

        /**
         * constant or heuristic (the default: +2 candidates after a fully accepted round, -1 otherwise; the
         * fastest with the bundled pair when greedy and within noise of the best constant k at temperature 0.8,
         * docs/benchmarks.md).
         */
        @WithDefault("heuristic")
        String schedule();

        /** The draft ends a round after a token it gave less than this probability; 0 is off. */
        @WithDefault("0")
        double confidenceThreshold();

        /**
         * How many candidates an assisted request gets each step: {@code auto} chooses k per request and step (0 =
         * none) to maximise the batch's expected tokens per second, from the steps' measured cost and each request's
         * acceptance, so speculation gives way as the load rises; {@code fixed} always uses the request's schedule
         * ({@code num-assistant-tokens}, {@code schedule}). A request that sets num_assistant_tokens gets its schedule
         * under both.
         */
        @WithDefault("auto")
        String policy();

        /** Prompt lookup: longest n-gram matched, 1..8. */
        @WithDefault("3")
        int promptLookupNgramSize();
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

        /** Largest request body, in bytes (413 beyond it). */
        @WithDefault("1048576")
        long maxBodyBytes();

        /** Most stop strings per request. */
        @WithDefault("16")
        int maxStopStrings();

        /**
         * Largest request header block, in bytes (431 beyond it, in JSON). The HTTP codec's own limit,
         * quarkus.http.limits.max-header-size, is set above it as a backstop that answers without a body.
         */
        @WithDefault("16384")
        int maxHeaderBytes();

        /** Longest request URI, path and query, in bytes (414 beyond it, in JSON); backstop as above. */
        @WithDefault("4096")
        int maxUriBytes();

        /**
         * Longest time from a request's headers to the last byte of its body; a client still sending
         * then gets a 408 and its connection is closed (a body trickled byte by byte never goes idle).
         */
        @WithDefault("30s")
        Duration bodyTimeout();
    }
}
