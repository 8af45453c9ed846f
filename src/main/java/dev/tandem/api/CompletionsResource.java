package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.serving.AdmissionControl;
import dev.tandem.serving.DecodingPolicy;
import dev.tandem.serving.ServedModel;
import io.vertx.core.http.HttpServerResponse;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * OpenAI's {@code POST /v1/completions}, whole or streamed as Server-Sent Events. Runs on a worker
 * thread; a decoding slot is taken before answering, so a full server answers 429 at once.
 */
@Path("/v1/completions")
@Consumes(MediaType.APPLICATION_JSON)
@Tag(name = "OpenAI")
public class CompletionsResource {
    private final GenerationRoutes routes;

    CompletionsResource(GenerationRoutes routes) {
        this.routes = routes;
    }

    @POST
    @Operation(summary = "Text completion (OpenAI); assisted or plain per request",
            description = "With stream=true the answer is text/event-stream: CompletionResponse chunks, then data: [DONE].")
    @APIResponse(responseCode = "200", description = "The completion, or its stream", content = {
            @Content(mediaType = MediaType.APPLICATION_JSON, schema = @Schema(implementation = CompletionResponse.class)),
            @Content(mediaType = "text/event-stream", schema = @Schema(implementation = CompletionResponse.class))})
    @APIResponse(responseCode = "400", description = "Invalid request", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    @APIResponse(responseCode = "404", description = "Unknown model", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    @APIResponse(responseCode = "413", description = "Body too large", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    @APIResponse(responseCode = "429", description = "At capacity; retry after Retry-After seconds", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    @APIResponse(responseCode = "503", description = "Shutting down", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    public Response complete(CompletionRequest body, @Context HttpServerResponse http,
                             @jakarta.ws.rs.HeaderParam("X-Experiment-Key") String experimentKey) {
        GenerationRoutes.requireBody(body);
        ServedModel model = routes.model(body.model());
        GenerationRequest request = CompletionParams.toGeneration(body, model, routes.config.limits());
        DecodingPolicy.Decision decision = routes.decide(body, model,
                experimentKey != null ? experimentKey : body.user());
        String id = "cmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = Instant.now().getEpochSecond();
        String prompt = request.echo() ? promptText(body, model) : "";
        AdmissionControl.Permit permit = routes.generation.admit(model, request, decision);

        if (!Boolean.TRUE.equals(body.stream())) {
            GenerationResult result = routes.generation.generate(permit, model, request, decision, GenerationListener.NONE);
            CompletionResponse.LogprobsBody logprobs = request.wantsLogprobs()
                    ? logprobs(request.echo() ? result.promptLogprobs() : List.of(), result.logprobs(), prompt.length())
                    : null;
            return Response.ok(new CompletionResponse(id, "text_completion", created, model.id(),
                    List.of(new CompletionResponse.Choice(0, prompt + result.text(), logprobs, result.finishReason().apiName())),
                    usage(result), Decoding.of(result.stats())), MediaType.APPLICATION_JSON)
                    .header("X-Decoding-Mode", decision.mode()).header("X-Experiment-Arm", decision.arm()).build();
        }

        boolean includeUsage = body.streamOptions() != null && Boolean.TRUE.equals(body.streamOptions().includeUsage());
        boolean withLogprobs = request.wantsLogprobs();
        return SseStream.response(routes.generation, permit, model, request, decision, http, routes.json, new SseStream.Events() {
            private CompletionResponse chunk(String text, CompletionResponse.LogprobsBody lp, String finish, Decoding d) {
                return new CompletionResponse(id, "text_completion", created, model.id(),
                        List.of(new CompletionResponse.Choice(0, text, lp, finish)), null, d);
            }

            @Override
            public Object opening() {
                return request.echo() ? chunk(prompt, null, null, null) : null;
            }

            @Override
            public Object text(String text, List<TokenLogprob> lps) {
                // a token's text offset is already counted from the completion's start: shift by the prompt only,
                // as the whole response does
                CompletionResponse.LogprobsBody lp = withLogprobs ? logprobs(List.of(), lps, prompt.length()) : null;
                return chunk(text, lp, null, null);
            }

            @Override
            public Object end(GenerationResult r) {
                return chunk("", null, r.finishReason().apiName(), Decoding.of(r.stats()));
            }

            @Override
            public Object usage(GenerationResult r) {
                return new CompletionResponse(id, "text_completion", created, model.id(), List.of(), CompletionsResource.usage(r), null);
            }
        }, includeUsage);
    }

    static CompletionResponse.Usage usage(GenerationResult r) {
        return new CompletionResponse.Usage(r.promptTokens(), r.completionTokens(), r.promptTokens() + r.completionTokens());
    }

    /** The prompt as the client sent it (echo returns it verbatim; token-id prompts are decoded). */
    private static String promptText(CompletionRequest body, ServedModel model) {
        if (body.prompt().isTextual()) {
            return body.prompt().asText();
        }
        if (body.prompt().size() == 1 && body.prompt().get(0).isTextual()) {
            return body.prompt().get(0).asText();
        }
        int[] ids = new int[body.prompt().size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = body.prompt().get(i).asInt();
        }
        return model.tokenizer().decode(ids);
    }

    /** OpenAI's logprobs lists: prompt entries (echo) first, then the generated ones shifted by the prompt's length. */
    static CompletionResponse.LogprobsBody logprobs(List<TokenLogprob> promptEntries, List<TokenLogprob> generated,
                                                    int promptChars) {
        List<String> tokens = new ArrayList<>();
        List<Float> lps = new ArrayList<>();
        List<Map<String, Float>> tops = new ArrayList<>();
        List<Integer> offsets = new ArrayList<>();
        List<TokenLogprob> all = new ArrayList<>(promptEntries);
        all.addAll(generated);
        for (int i = 0; i < all.size(); i++) {
            TokenLogprob t = all.get(i);
            tokens.add(t.text());
            lps.add(t.logprob());
            if (t.logprob() == null) {
                tops.add(null);
            } else {
                Map<String, Float> top = new LinkedHashMap<>();
                t.top().forEach(a -> top.putIfAbsent(a.text(), a.logprob()));
                tops.add(top);
            }
            offsets.add(t.textOffset() + (i >= promptEntries.size() ? promptChars : 0));
        }
        return new CompletionResponse.LogprobsBody(tokens, lps, tops, offsets);
    }
}
