package dev.tandem.api;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.model.ChatTemplate;
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
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/**
 * OpenAI's {@code POST /v1/chat/completions}: the messages are rendered with the model's chat
 * template, then generated like a completion (whole, or streamed as chunks with deltas).
 */
@Path("/v1/chat/completions")
@Consumes(MediaType.APPLICATION_JSON)
@Tag(name = "OpenAI")
public class ChatCompletionsResource {
    private static final Set<String> ROLES = Set.of("system", "user", "assistant", "developer");
    private final GenerationRoutes routes;

    ChatCompletionsResource(GenerationRoutes routes) {
        this.routes = routes;
    }

    @POST
    @Operation(summary = "Chat completion (OpenAI), rendered with the model's chat template; assisted or plain per request",
            description = "With stream=true the answer is text/event-stream: chat.completion.chunk objects, then data: [DONE].")
    @APIResponse(responseCode = "200", description = "The completion, or its stream", content = {
            @Content(mediaType = MediaType.APPLICATION_JSON, schema = @Schema(implementation = ChatCompletionResponse.class)),
            @Content(mediaType = "text/event-stream", schema = @Schema(implementation = ChatCompletionResponse.class))})
    @APIResponse(responseCode = "400", description = "Invalid request", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    @APIResponse(responseCode = "429", description = "At capacity", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    public Response chat(ChatCompletionRequest body, @Context HttpServerResponse http,
                             @jakarta.ws.rs.HeaderParam("X-Experiment-Key") String experimentKey) {
        GenerationRoutes.requireBody(body);
        ServedModel model = routes.model(body.model());
        int[] prompt = ChatPrompt.render(model, body.messages(), true, false).tokens();
        int topLogprobs = -1;
        if (Boolean.TRUE.equals(body.logprobs())) {
            topLogprobs = body.topLogprobs() == null ? 0 : body.topLogprobs();
            if (topLogprobs < 0 || topLogprobs > routes.config.limits().maxLogprobs()) {
                throw ApiException.invalid("top_logprobs", "top_logprobs must be in [0, " + routes.config.limits().maxLogprobs()
                        + "], got " + topLogprobs);
            }
        } else if (body.topLogprobs() != null) {
            throw ApiException.invalid("top_logprobs", "top_logprobs needs logprobs: true");
        }
        GenerationRequest request = CompletionParams.toGeneration(body, prompt, topLogprobs, false, "messages", model,
                routes.config.limits(), model.samplingDefaults());
        DecodingPolicy.Decision decision = routes.decide(body, model,
                experimentKey != null ? experimentKey : body.user());
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = Instant.now().getEpochSecond();
        AdmissionControl.Permit permit = routes.generation.admit(model, request, decision);

        if (!Boolean.TRUE.equals(body.stream())) {
            GenerationResult r = routes.generation.generate(permit, model, request, decision, GenerationListener.NONE);
            ChatCompletionResponse.ChatLogprobs lp = request.wantsLogprobs() ? logprobs(r.logprobs()) : null;
            return Response.ok(new ChatCompletionResponse(id, "chat.completion", created, model.id(),
                    List.of(new ChatCompletionResponse.Choice(0, new ChatCompletionResponse.Message("assistant", r.text()),
                            null, lp, r.finishReason().apiName())),
                    CompletionsResource.usage(r), Decoding.of(r.stats())), MediaType.APPLICATION_JSON)
                    .header("X-Decoding-Mode", decision.mode()).header("X-Experiment-Arm", decision.arm()).build();
        }
        boolean includeUsage = body.streamOptions() != null && Boolean.TRUE.equals(body.streamOptions().includeUsage());
        return SseStream.response(routes.generation, permit, model, request, decision, http, routes.json, new SseStream.Events() {
            private ChatCompletionResponse chunk(ChatCompletionResponse.Message delta, ChatCompletionResponse.ChatLogprobs lp,
                                                 String finish, Decoding d) {
                return new ChatCompletionResponse(id, "chat.completion.chunk", created, model.id(),
                        List.of(new ChatCompletionResponse.Choice(0, null, delta, lp, finish)), null, d);
            }

            @Override
            public Object opening() {
                return chunk(new ChatCompletionResponse.Message("assistant", ""), null, null, null);
            }

            @Override
            public Object text(String text, List<TokenLogprob> lps) {
                return chunk(new ChatCompletionResponse.Message(null, text), request.wantsLogprobs() ? logprobs(lps) : null,
                        null, null);
            }

            @Override
            public Object end(GenerationResult r) {
                return chunk(new ChatCompletionResponse.Message(null, null), null, r.finishReason().apiName(),
                        Decoding.of(r.stats()));
            }

            @Override
            public Object usage(GenerationResult r) {
                return new ChatCompletionResponse(id, "chat.completion.chunk", created, model.id(), List.of(),
                        CompletionsResource.usage(r), null);
            }
        }, includeUsage);
    }

    /** Checks roles and flattens content parts to text. */
    static List<ChatTemplate.Message> messages(List<ChatCompletionRequest.Message> messages) {
        if (messages == null || messages.isEmpty()) {
            throw new ApiException(400, "invalid_request_error", "messages", "missing_required_parameter",
                    "messages is required: a non-empty list of {role, content}");
        }
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            ChatCompletionRequest.Message m = messages.get(i);
            String where = "messages[" + i + "]";
            if (m == null || m.role() == null || !ROLES.contains(m.role())) {
                throw ApiException.invalid(where + ".role", "role must be one of system, developer, user, assistant");
            }
            out.add(new ChatTemplate.Message(m.role().equals("developer") ? "system" : m.role(), content(m.content(), where)));
        }
        return out;
    }

    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) {
            throw ApiException.invalid(where + ".content", "content is required");
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (c.isArray()) {
            StringBuilder b = new StringBuilder();
            for (JsonNode part : c) {
                if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.invalid(where + ".content", "only text content parts ({\"type\":\"text\",\"text\":...}) are supported");
                }
                b.append(part.path("text").asText());
            }
            return b.toString();
        }
        throw ApiException.invalid(where + ".content", "content must be a string or a list of text parts");
    }

    static ChatCompletionResponse.ChatLogprobs logprobs(List<TokenLogprob> lps) {
        List<ChatCompletionResponse.TokenEntry> content = new ArrayList<>(lps.size());
        for (TokenLogprob t : lps) {
            List<ChatCompletionResponse.TopEntry> top = t.top().stream()
                    .map(a -> new ChatCompletionResponse.TopEntry(a.text(), a.logprob(), bytes(a.text()))).toList();
            content.add(new ChatCompletionResponse.TokenEntry(t.text(), t.logprob(), bytes(t.text()), top));
        }
        return new ChatCompletionResponse.ChatLogprobs(content);
    }

    private static int[] bytes(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int[] out = new int[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = b[i] & 0xff;
        }
        return out;
    }
}
