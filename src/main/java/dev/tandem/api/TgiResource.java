package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.RequestBody;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.model.SamplingDefaults;
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
 * {@code /tokenize}, {@code /chat_tokenize} and {@code /detokenize}. Errors on these routes use TGI's
 * {@code {"error","error_type"}} body (see {@link ErrorMappers}). vLLM serves {@code /tokenize} and
 * {@code /detokenize} at the same paths with other bodies; those are told apart by their fields and
 * answered as vLLM does ({@link VllmTokenization}).
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
        // TGI's own defaults, never the model's: TGI does not read generation_config.json for sampling
        GenerationRequest request = CompletionParams.toGeneration(new Sampling(p), prompt, logprobs,
                Boolean.TRUE.equals(p.decoderInputDetails()), "inputs", model, routes.config.limits(), SamplingDefaults.NONE);
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

    /**
     * {@code /tokenize} is TGI's route and vLLM's: a body with TGI's {@code inputs} is TGI's (the tokens with
     * their character spans), one with vLLM's {@code prompt} or {@code messages} is vLLM's
     * ({@link VllmTokenization}).
     */
    @POST
    @Path("tokenize")
    @Operation(summary = "Tokens of a text (TGI: inputs) or of a chat's rendered prompt (vLLM: prompt or messages)",
            description = "TGI's body {inputs, add_special_tokens} answers a list of {id, text, start, stop}; vLLM's body "
                    + "{prompt, add_special_tokens} or {messages, add_generation_prompt, continue_final_message, "
                    + "add_special_tokens} answers {count, max_model_len, tokens, token_strs} with errors in OpenAI's format.")
    @Produces(MediaType.APPLICATION_JSON)
    @RequestBody(content = @Content(mediaType = MediaType.APPLICATION_JSON, example = "{\"inputs\": \"And God said\"}",
            schema = @Schema(oneOf = {TokenizeRequest.class, VllmTokenization.CompletionRequest.class,
                    VllmTokenization.ChatRequest.class})))
    @APIResponse(responseCode = "200", description = "TGI's token list, or vLLM's answer", content = @Content(
            mediaType = MediaType.APPLICATION_JSON, schema = @Schema(oneOf = {TgiResponse.TokenSpan[].class,
                    VllmTokenization.TokenizeResponse.class})))
    public Object tokenize(JsonNode body) throws JsonProcessingException {
        if (VllmTokenization.isTokenizeRequest(body)) {
            return VllmTokenization.tokenize(body, routes);
        }
        TokenizeRequest r = body == null || body.isMissingNode() ? null : routes.json.treeToValue(body, TokenizeRequest.class);
        if (r == null || r.inputs() == null) {
            throw new ApiException(422, "validation", "inputs", null,
                    "`inputs` is required (TGI's body; vLLM's takes `prompt` or `messages`)");
        }
        return spans(routes.registry.target().tokenizer().spans(r.inputs()), r.addSpecialTokens(),
                routes.registry.target().tokenizer());
    }

    private static List<TgiResponse.TokenSpan> spans(List<TextTokenizer.Span> spans, Boolean addSpecialTokens,
                                                     TextTokenizer tok) {
        List<TgiResponse.TokenSpan> out = new ArrayList<>();
        for (TextTokenizer.Span s : spans) {
            if (s.start() == s.end() && s.id() == tok.bosId() && Boolean.FALSE.equals(addSpecialTokens)) {
                continue;
            }
            out.add(new TgiResponse.TokenSpan(s.id(), s.piece(), s.start(), s.end()));
        }
        return out;
    }

    /** TGI's {@code /chat_tokenize}: a chat request's rendered prompt and its tokens. */
    @Schema(name = "ChatTokenizeResponse")
    public record ChatTokenizeResponse(List<TgiResponse.TokenSpan> tokenizeResponse, String templatedText) {
    }

    /**
     * TGI's {@code /chat_tokenize}: the text the model's chat template renders for a chat request (with the
     * generation prompt, as a chat completion renders it) and its tokens, exactly what {@code /v1/chat/completions}
     * feeds the model for the same body. The request's other fields do not change the prompt and are not read.
     */
    @POST
    @Path("chat_tokenize")
    @Operation(summary = "A chat request's templated prompt and its tokens (TGI)")
    @Produces(MediaType.APPLICATION_JSON)
    @APIResponse(responseCode = "200", description = "The templated text and its tokens", content = @Content(
            mediaType = MediaType.APPLICATION_JSON, schema = @Schema(implementation = ChatTokenizeResponse.class)))
    @APIResponse(responseCode = "422", description = "Invalid messages, or a conversation the template refuses",
            content = @Content(schema = @Schema(implementation = TgiResponse.Error.class)))
    public ChatTokenizeResponse chatTokenize(ChatCompletionRequest body) {
        if (body == null) {
            throw new ApiException(422, "validation", "messages", null, "`messages` is required");
        }
        ServedModel model = routes.model(body.model());
        ChatPrompt prompt = ChatPrompt.render(model, body.messages(), true, false);
        List<TgiResponse.TokenSpan> tokens = prompt.spans().stream()
                .map(s -> new TgiResponse.TokenSpan(s.id(), s.piece(), s.start(), s.end())).toList();
        return new ChatTokenizeResponse(tokens, prompt.text());
    }

    /** {@code /detokenize}: token ids back to text; with {@code model} it is vLLM's body. */
    @Schema(example = "{\"tokens\": [1, 2, 3]}")
    public record DetokenizeRequest(
            @Schema(description = "vLLM's body names the model: the answer is then vLLM's {prompt}, special tokens written out")
            String model,
            List<Integer> tokens) {
    }

    @POST
    @Path("detokenize")
    @Operation(summary = "Token ids back to text",
            description = "Without model: {text}, special tokens skipped. With model (vLLM's body): {prompt}, special"
                    + " tokens written out as vLLM does, errors in OpenAI's format.")
    @Produces(MediaType.APPLICATION_JSON)
    @APIResponse(responseCode = "200", description = "The text", content = @Content(mediaType = MediaType.APPLICATION_JSON,
            schema = @Schema(oneOf = {TgiResponse.Detokenized.class, VllmTokenization.DetokenizeResponse.class})))
    public Object detokenize(DetokenizeRequest body) {
        if (body != null && body.model() != null) {
            return VllmTokenization.detokenize(body, routes);
        }
        if (body == null || body.tokens() == null) {
            throw new ApiException(422, "validation", "tokens", null, "`tokens` is required: a list of token ids");
        }
        ServedModel model = routes.registry.target();
        return new TgiResponse.Detokenized(model.tokenizer().decode(checkedTokens(body.tokens(), model)));
    }

    /** The ids as an array, each checked to be in the model's vocabulary (a 400 naming the first that is not). */
    static int[] checkedTokens(List<Integer> tokens, ServedModel model) {
        if (tokens == null) {
            throw ApiException.invalid("tokens", "tokens is required: a list of token ids");
        }
        int vocab = model.lm().shape().vocabSize();
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) {
            Integer id = tokens.get(i);
            if (id == null || id < 0 || id >= vocab) {
                throw ApiException.invalid("tokens", "token id " + id + " at tokens[" + i
                        + "] is outside the vocabulary [0, " + vocab + ")");
            }
            ids[i] = id;
        }
        return ids;
    }
}
