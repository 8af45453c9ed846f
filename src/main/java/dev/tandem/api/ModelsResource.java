package dev.tandem.api;

import dev.tandem.serving.ModelRegistry;
import dev.tandem.serving.ServedModel;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.List;

@Path("/v1/models")
@org.eclipse.microprofile.openapi.annotations.tags.Tag(name = "OpenAI")
@Produces(MediaType.APPLICATION_JSON)
public class ModelsResource {
    private final ModelRegistry registry;

    ModelsResource(ModelRegistry registry) {
        this.registry = registry;
    }

    @GET
    public ModelList list() {
        return new ModelList("list", List.of(card(registry.target(), registry.draft().orElse(null))));
    }

    /** The entry for target {@code t} with its draft {@code d} (null when none). */
    static ModelList.ModelCard card(ServedModel t, ServedModel d) {
        String unavailable = t.assistedUnavailableReason().orElse(null);
        return new ModelList.ModelCard(t.id(), "model", t.createdEpochSeconds(), "tandem", t.maxContext(), t.engine(),
                t.lm().shape().vocabSize(), t.quantization(), d == null ? null : d.id(), d == null ? null : d.quantization(),
                unavailable == null, unavailable);
    }
}
