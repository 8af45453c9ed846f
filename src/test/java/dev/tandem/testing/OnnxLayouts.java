package dev.tandem.testing;

import dev.tandem.memory.KvFootprint;
import dev.tandem.model.ModelDirectory;
import dev.tandem.onnx.OnnxFile;

/**
 * Where ONNX Runtime keeps a model directory's caches, read from the graph's metadata without loading it (as
 * OrtCausalLm decides): a slot-pool row for a graph marked {@code tandem.kv_layout=slots}, KvBuffers for an
 * Optimum graph. Tests that size the bundled models use it so that they follow the layout that ships, not a
 * file's bytes.
 */
public final class OnnxLayouts {
    private OnnxLayouts() {
    }

    public static KvFootprint.Layout onnxRuntimeLayout(ModelDirectory m) {
        return "slots".equals(OnnxFile.metadata(m.graph()).get("tandem.kv_layout"))
                ? KvFootprint.Layout.SLOT_POOL : KvFootprint.Layout.KV_BUFFERS;
    }
}
