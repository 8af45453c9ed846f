package dev.tandem.engine.reference;

import dev.tandem.engine.EngineProvider;
import dev.tandem.engine.ModelFiles;
import jakarta.inject.Singleton;
import java.util.List;

/**
 * The plain-Java engine ({@link ReferenceCausalLm}, no native library): {@code reference} reads the
 * weights from the ONNX graph's initializers into memory; {@code reference-offload} leaves them in the
 * file, mapped a layer at a time.
 */
@Singleton
public class ReferenceEngine implements EngineProvider {
    static final String OFFLOAD = "reference-offload";

    @Override
    public List<String> names() {
        return List.of("reference", OFFLOAD);
    }

    @Override
    public Opened open(String name, ModelFiles model, boolean draft) {
        return new Opened(ReferenceCausalLm.open(model, name.equals(OFFLOAD)), name);
    }
}
