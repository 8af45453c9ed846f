package dev.tandem.api;

import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.serving.ModelRegistry;
import dev.tandem.serving.ServedModel;
import dev.tandem.serving.TandemConfig;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/** OpenAI's {@code POST /v1/completions}. Runs on a worker thread (it blocks while the model decodes). */
@Path("/v1/completions")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class CompletionsResource {
    private final ModelRegistry registry;
    private final TandemConfig config;

    CompletionsResource(ModelRegistry registry, TandemConfig config) {
        this.registry = registry;
        this.config = config;
    }

    @POST
    public CompletionResponse complete(CompletionRequest body) {
        if (body == null) {
            throw new ApiException(400, "invalid_request_error", null, "missing_body", "a JSON request body is required");
        }
        ServedModel model = registry.find(body.model()).orElseThrow(() -> new ApiException(404,
                "invalid_request_error", "model", "model_not_found", "The model '" + body.model()
                + "' does not exist; GET /v1/models lists the served models"));
        GenerationRequest request = CompletionParams.toGeneration(body, model, config.limits());
        AssistOptions assist = AssistParams.resolve(body, model, config.assisted());
        GenerationResult result = assist == null ? model.decoder().generate(request)
                : model.assisted().generate(request, assist);

        String prompt = request.echo() ? promptText(body, model) : "";
        String text = prompt + result.text();
        CompletionResponse.LogprobsBody logprobs = null;
        if (request.wantsLogprobs()) {
            logprobs = logprobs(result, request.echo(), prompt.length());
        }
        int completion = result.completionTokens();
        return new CompletionResponse("cmpl-" + UUID.randomUUID().toString().replace("-", ""), "text_completion",
                Instant.now().getEpochSecond(), model.id(),
                List.of(new CompletionResponse.Choice(0, text, logprobs, result.finishReason().apiName())),
                new CompletionResponse.Usage(result.promptTokens(), completion, result.promptTokens() + completion),
                Decoding.of(result.stats()));
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

    private static CompletionResponse.LogprobsBody logprobs(GenerationResult r, boolean echo, int promptChars) {
        List<String> tokens = new ArrayList<>();
        List<Float> lps = new ArrayList<>();
        List<Map<String, Float>> tops = new ArrayList<>();
        List<Integer> offsets = new ArrayList<>();
        List<TokenLogprob> all = new ArrayList<>(echo ? r.promptLogprobs() : List.of());
        int promptEntries = all.size();
        all.addAll(r.logprobs());
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
            offsets.add(t.textOffset() + (i >= promptEntries ? promptChars : 0));
        }
        return new CompletionResponse.LogprobsBody(tokens, lps, tops, offsets);
    }
}
