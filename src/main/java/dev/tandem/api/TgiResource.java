package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.model.TextTokenizer;
import dev.tandem.serving.AdmissionControl;
import dev.tandem.serving.DecodingPolicy;
import dev.tandem.serving.ServedModel;
import io.vertx.core.http.HttpServerResponse;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face Text Generation Inference's routes: {@code /generate}, {@code /generate_stream},
 * {@code /tokenize}, and {@code /detokenize}. Errors on these routes use TGI's
 * {@code {"error","error_type"}} body (see {@link ErrorMappers}).
 */
@Path("/")
@Consumes(MediaType.APPLICATION_JSON)
@Tag(name = "TGI")
public class TgiResource {
    private final GenerationRoutes routes;

    TgiResource(GenerationRoutes routes) {
        this.routes = routes;
    }

    private static final ObjectMapper STOP_JSON = new ObjectMapper();

    /** TGI's sampling switch: greedy unless do_sample, in which case temperature defaults to 1. */
    private record Sampling(TgiRequest.Parameters p) implements SamplingFields {
        public Integer maxTokens() { return p.maxNewTokens() == null ? 20 : p.maxNewTokens(); }
        public Double temperature() { return Boolean.TRUE.equals(p.doSample()) ? (p.temperature() == null ? 1.0 : p.temperature()) : 0.0; }
        public Double topP() { return p.topP(); }
        public Integer topK() { return p.topK(); }
        public Double minP() { return null; }
        public Double repetitionPenalty() { return p.repetitionPenalty(); }
        public Double presencePenalty() { return null; }
        public Double frequencyPenalty() { return p.frequencyPenalty(); }
        public Long seed() { return p.seed(); }
        public JsonNode stop() { return p.stop() == null ? null : STOP_JSON.valueToTree(p.stop()); }
        public Integer n() { return null; }
        public Boolean stream() { return null; }
        public StreamOptions streamOptions() { return null; }
        public Map<String, Double> logitBias() { return null; }
        public Boolean ignoreEos() { return p.ignoreEos(); }
    }

    private record Prepared(ServedModel model, TgiRequest.Parameters params, GenerationRequest request,
                            DecodingPolicy.Decision decision) {
    }

    private Prepared prepare(TgiRequest body, String experimentKey) {
        if (body == null || body.inputs() == null) {
            throw new ApiException(422, "validation", "inputs", null, "`inputs` is required");
        }
        TgiRequest.Parameters p = body.parameters() == null ? TgiRequest.Parameters.NONE : body.parameters();
        if (p.bestOf() != null && p.bestOf() != 1) {
            throw new ApiException(422, "validation", "best_of", null, "best_of > 1 is not supported");
        }
        if (p.typicalP() != null || Boolean.TRUE.equals(p.watermark())) {
            throw new ApiException(422, "validation", "typical_p", null, "typical_p and watermark are not supported");
        }
        if (Boolean.TRUE.equals(p.doSample()) && p.temperature() != null && p.temperature() <= 0) {
            throw new ApiException(422, "validation", "temperature", null, "`temperature` must be strictly positive");
        }
        if (p.topK() != null && p.topK() <= 0) {
            throw new ApiException(422, "validation", "top_k", null, "`top_k` must be strictly positive");
        }
        if (p.topNTokens() != null && (p.topNTokens() < 0 || p.topNTokens() > routes.config.limits().maxLogprobs())) {
            throw new ApiException(422, "validation", "top_n_tokens", null,
                    "`top_n_tokens` must be in [0, " + routes.config.limits().maxLogprobs() + "]");
        }
        if (p.truncate() != null && p.truncate() < 1) {
            throw new ApiException(422, "validation", "truncate", null, "`truncate` must be strictly positive");
        }
        ServedModel model = routes.registry.target();
        int[] prompt = model.tokenizer().encodePrompt(body.inputs());
        if (p.truncate() != null && prompt.length > p.truncate()) {  // keep the last `truncate` tokens
            prompt = Arrays.copyOfRange(prompt, prompt.length - p.truncate(), prompt.length);
        }
        int logprobs = p.topNTokens() == null ? 0 : p.topNTokens();  // details need each token's logprob
        GenerationRequest request = CompletionParams.toGeneration(new Sampling(p), prompt, logprobs,
                Boolean.TRUE.equals(p.decoderInputDetails()), "inputs", model, routes.config.limits());
        return new Prepared(model, p, request, routes.decide(p, model, experimentKey));
    }

    @POST
    @Path("generate")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "Generate (Text Generation Inference schema)")
    @APIResponse(responseCode = "200", description = "The generated text", content = @Content(mediaType = MediaType.APPLICATION_JSON,
            schema = @Schema(implementation = TgiResponse.Generated.class)))
    @APIResponse(responseCode = "422", description = "Invalid input", content = @Content(schema = @Schema(implementation = TgiResponse.Error.class)))
    public Response generate(TgiRequest body, @jakarta.ws.rs.HeaderParam("X-Experiment-Key") String experimentKey) {
        Prepared x = prepare(body, experimentKey);
        AdmissionControl.Permit permit = routes.generation.admit(x.model(), x.request(), x.decision());
        GenerationResult r = routes.generation.generate(permit, x.model(), x.request(), x.decision(),
                GenerationListener.NONE);
        String text = (Boolean.TRUE.equals(x.params().returnFullText()) ? body.inputs() : "") + r.text();
        TgiResponse.Details details = Boolean.TRUE.equals(x.params().details()) ? details(x, r, true) : null;
        return Response.ok(new TgiResponse.Generated(text, details, Decoding.of(r.stats())), MediaType.APPLICATION_JSON)
                .header("X-Decoding-Mode", x.decision().mode()).header("X-Experiment-Arm", x.decision().arm()).build();
    }

    @POST
    @Path("generate_stream")
    @Operation(summary = "Generate as Server-Sent Events, one per token (Text Generation Inference schema)")
    @APIResponse(responseCode = "200", description = "The stream", content = @Content(mediaType = "text/event-stream",
            schema = @Schema(implementation = TgiResponse.StreamEvent.class)))
    public Response generateStream(TgiRequest body, @Context HttpServerResponse http,
                                   @jakarta.ws.rs.HeaderParam("X-Experiment-Key") String experimentKey) {
        Prepared x = prepare(body, experimentKey);
        AdmissionControl.Permit permit = routes.generation.admit(x.model(), x.request(), x.decision());
        int topN = x.request().logprobs();
        return SseStream.response(routes.generation, permit, x.model(), x.request(), x.decision(), http, routes.json, new SseStream.Events() {
            private int index;
            private TokenLogprob held;  // TGI's last event carries the last token, so one token is always held back

            @Override
            public Object opening() {
                return null;
            }

            @Override
            public Object text(String text, List<TokenLogprob> lps) {
                List<Object> events = new ArrayList<>();
                for (TokenLogprob t : lps) {
                    if (held != null) {
                        events.add(event(held, null, null, null));
                    }
                    held = t;
                }
                return events;
            }

            @Override
            public Object end(GenerationResult r) {
                List<Object> events = new ArrayList<>();
                List<TokenLogprob> rest = r.logprobs().subList(Math.min(index + (held == null ? 0 : 1), r.logprobs().size()),
                        r.logprobs().size());
                for (TokenLogprob t : rest) {  // tokens that never came out as text (an EOS, a cut stop string)
                    if (held != null) {
                        events.add(event(held, null, null, null));
                    }
                    held = t;
                }
                String text = (Boolean.TRUE.equals(x.params().returnFullText()) ? body.inputs() : "") + r.text();
                TgiResponse.Details d = details(x, r, false);
                events.add(held == null ? new TgiResponse.StreamEvent(index, null, null, text, d, Decoding.of(r.stats()))
                        : event(held, text, d, Decoding.of(r.stats())));
                return events;
            }

            private TgiResponse.StreamEvent event(TokenLogprob t, String text, TgiResponse.Details d, Decoding decoding) {
                return new TgiResponse.StreamEvent(index++, token(x.model(), t), topN > 0 ? top(x.model(), t) : null, text, d,
                        decoding);
            }

            @Override
            public Object usage(GenerationResult r) {
                return null;
            }

            @Override
            public boolean done() {
                return false;
            }

            @Override
            public Object error(String message) {  // TGI's stream ends with {"error", "error_type"}
                return new TgiResponse.Error(message, "generation");
            }
        }, false);
    }

    private TgiResponse.Details details(Prepared x, GenerationResult r, boolean withTokens) {
        List<TgiResponse.Token> tokens = null;
        List<List<TgiResponse.Token>> top = null;
        if (withTokens) {
            tokens = r.logprobs().stream().map(t -> token(x.model(), t)).toList();
            if (x.request().logprobs() > 0) {
                top = r.logprobs().stream().map(t -> top(x.model(), t)).toList();
            }
        }
        List<TgiResponse.PrefillToken> prefill = null;
        if (withTokens && Boolean.TRUE.equals(x.params().decoderInputDetails())) {
            prefill = new ArrayList<>();
            int[] prompt = x.request().prompt();
            if (prompt[0] == x.model().tokenizer().bosId()) {
                prefill.add(new TgiResponse.PrefillToken(prompt[0], "<s>", null));
            }
            for (TokenLogprob t : r.promptLogprobs()) {
                prefill.add(new TgiResponse.PrefillToken(t.token(), t.text(), t.logprob()));
            }
        }
        return new TgiResponse.Details(finishReason(x.model(), r), r.completionTokens(), x.request().sampling().seed(),
                prefill, tokens, top);
    }

    private static String finishReason(ServedModel model, GenerationResult r) {
        if (r.finishReason() == FinishReason.LENGTH) {
            return "length";
        }
        int[] t = r.tokens();
        boolean eos = t.length > 0 && model.directory().config().eosTokenIds().contains(t[t.length - 1]);
        return eos ? "eos_token" : "stop_sequence";
    }

    private static TgiResponse.Token token(ServedModel model, TokenLogprob t) {
        boolean special = model.directory().config().eosTokenIds().contains(t.token()) || t.token() == model.tokenizer().bosId();
        return new TgiResponse.Token(t.token(), t.text(), t.logprob(), special);
    }

    private static List<TgiResponse.Token> top(ServedModel model, TokenLogprob t) {
        return t.top().stream().map(a -> new TgiResponse.Token(a.token(), a.text(), a.logprob(),
                model.directory().config().eosTokenIds().contains(a.token()))).toList();
    }

    /** TGI's {@code /tokenize}: the input's tokens with their character spans. */
    @Schema(example = "{\"inputs\": \"And God said\"}")
    public record TokenizeRequest(String inputs, Boolean addSpecialTokens) {
    }

    @POST
    @Path("tokenize")
    @Operation(summary = "The input's tokens with their character spans")
    @Produces(MediaType.APPLICATION_JSON)
    public List<TgiResponse.TokenSpan> tokenize(TokenizeRequest body) {
        if (body == null || body.inputs() == null) {
            throw new ApiException(422, "validation", "inputs", null, "`inputs` is required");
        }
        TextTokenizer tok = routes.registry.target().tokenizer();
        List<TgiResponse.TokenSpan> out = new ArrayList<>();
        for (TextTokenizer.Span s : tok.spans(body.inputs())) {
            if (s.start() == s.end() && s.id() == tok.bosId() && Boolean.FALSE.equals(body.addSpecialTokens())) {
                continue;
            }
            out.add(new TgiResponse.TokenSpan(s.id(), s.piece(), s.start(), s.end()));
        }
        return out;
    }

    /** {@code /detokenize}: token ids back to text. */
    @Schema(example = "{\"tokens\": [1, 2, 3]}")
    public record DetokenizeRequest(List<Integer> tokens) {
    }

    @POST
    @Path("detokenize")
    @Operation(summary = "Token ids back to text")
    @Produces(MediaType.APPLICATION_JSON)
    public TgiResponse.Detokenized detokenize(DetokenizeRequest body) {
        if (body == null || body.tokens() == null) {
            throw new ApiException(422, "validation", "tokens", null, "`tokens` is required: a list of token ids");
        }
        int vocab = routes.registry.target().lm().shape().vocabSize();
        int[] ids = new int[body.tokens().size()];
        for (int i = 0; i < ids.length; i++) {
            Integer id = body.tokens().get(i);
            if (id == null || id < 0 || id >= vocab) {
                throw new ApiException(422, "validation", "tokens", null, "token id " + id + " at tokens[" + i
                        + "] is outside the vocabulary [0, " + vocab + ")");
            }
            ids[i] = id;
        }
        return new TgiResponse.Detokenized(routes.registry.target().tokenizer().decode(ids));
    }
}
