package dev.tandem.api;

import dev.tandem.serving.MemoryPlans;
import dev.tandem.serving.ModelRegistry;
import dev.tandem.serving.ServedModel;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.List;

@Path("/v1/models")
@org.eclipse.microprofile.openapi.annotations.tags.Tag(name = "OpenAI")
@Produces(MediaType.APPLICATION_JSON)
public class ModelsResource {
    private final ModelRegistry registry;
    private final MemoryPlans plans;

    ModelsResource(ModelRegistry registry, MemoryPlans plans) {
        this.registry = registry;
        this.plans = plans;
    }

    @GET
    public ModelList list() {
        return new ModelList("list", List.of(card(registry.target(), registry.draft().orElse(null))));
    }

    @GET
    @Path("{id}")
    @Operation(summary = "Retrieve a model (OpenAI), with its memory plan",
            description = "The target or the draft model: the model object, its role, and memory: parameters, weight bytes"
                    + " as stored and per precision, KV-cache bytes per token, per full context and as allocated, and the"
                    + " full-context sequences that fit tandem.memory.budget; sampling_defaults: what a request that leaves a"
                    + " sampling field or max_tokens out gets from the model (tandem.target.generation-config).")
    @APIResponse(responseCode = "200", description = "The model", content = @Content(schema = @Schema(implementation = ModelDetail.class)))
    @APIResponse(responseCode = "404", description = "Unknown model", content = @Content(schema = @Schema(implementation = ErrorBody.class)))
    public ModelDetail retrieve(@PathParam("id") String id) {
        ServedModel t = registry.target();
        ServedModel d = registry.draft().orElse(null);
        if (t.id().equals(id)) {
            ModelList.ModelCard c = card(t, d);
            return new ModelDetail(c.id(), c.object(), c.created(), c.ownedBy(), "target", c.maxModelLen(), c.engine(),
                    c.vocabSize(), c.quantization(), graphFile(t), c.draft(), c.draftQuantization(), c.assistedDecoding(),
                    c.assistedDecodingUnavailable(), plans.plan(t), t.samplingDefaults().asMap());
        }
        if (d != null && d.id().equals(id)) {
            return new ModelDetail(d.id(), "model", d.createdEpochSeconds(), "tandem", "draft", d.maxContext(), d.engine(),
                    d.lm().shape().vocabSize(), d.quantization(), graphFile(d), null, null, false,
                    "'" + d.id() + "' is the draft model assisting '" + t.id() + "'; requests name the target",
                    plans.plan(d), d.samplingDefaults().asMap());
        }
        throw new ApiException(404, "invalid_request_error", "model", "model_not_found", "The model '" + id
                + "' does not exist; GET /v1/models lists the served models");
    }

    private static String graphFile(ServedModel m) {
        return m.directory().graph().getFileName().toString();
    }

    /** The entry for target {@code t} with its draft {@code d} (null when none). */
    static ModelList.ModelCard card(ServedModel t, ServedModel d) {
        String unavailable = t.assistedUnavailableReason().orElse(null);
        return new ModelList.ModelCard(t.id(), "model", t.createdEpochSeconds(), "tandem", t.maxContext(), t.engine(),
                t.lm().shape().vocabSize(), t.quantization(), d == null ? null : d.id(), d == null ? null : d.quantization(),
                unavailable == null, unavailable);
    }
}
