package dev.tandem.deploy;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.tandem.testing.OnnxLayouts.onnxRuntimeLayout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.tandem.generation.AssistOptions;
import dev.tandem.generation.Sequence;
import dev.tandem.memory.ByteSize;
import dev.tandem.memory.KvFootprint;
import dev.tandem.memory.MemoryPlan;
import dev.tandem.model.ModelDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The KV budget in k8s/base/configmap.yaml fits the pod: heap (MaxRAMPercentage of the memory limit) +
 * budget + the models' graphs (twice: file and runtime copy) stay under the limit, and the budget holds
 * max-concurrent full-context assisted sequences of the bundled pair as really allocated, and not many more.
 */
class KvBudgetManifestTest {
    /** The worst-case step the service plans with (a verification of the most candidates, plus one). */
    static final int MAX_STEP_FEED = MemoryPlan.maxStepFeed(AssistOptions.MAX_ASSISTANT_TOKENS);

    /** tandem.scheduler.max-batched-tokens' default (TandemConfig.Scheduler). */
    static final int DEFAULT_MAX_BATCHED_TOKENS = 64;

    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    @Test
    void theBudgetFitsThePodAndTheSlots() throws Exception {
        JsonNode cm = YAML.readTree(Path.of("k8s/base/configmap.yaml").toFile()).path("data");
        JsonNode container = YAML.readTree(Path.of("k8s/base/deployment.yaml").toFile())
                .at("/spec/template/spec/containers/0");
        long limit = ByteSize.parse(container.at("/resources/limits/memory").asText());
        long budget = ByteSize.parse(cm.path("TANDEM_MEMORY_BUDGET").asText());
        Matcher m = Pattern.compile("MaxRAMPercentage=(\\d+)").matcher(cm.path("JAVA_TOOL_OPTIONS").asText());
        assertTrue(m.find(), "JAVA_TOOL_OPTIONS sets MaxRAMPercentage");
        long heap = limit * Integer.parseInt(m.group(1)) / 100;
        int slots = cm.path("TANDEM_SERVING_MAX_CONCURRENT").asInt();

        ModelDirectory t = ModelDirectory.open(Path.of("models/kjv-target"));
        ModelDirectory d = ModelDirectory.open(Path.of("models/kjv-draft"));
        long weights = 2 * (Files.size(t.graph()) + Files.size(d.graph()));
        assertTrue(heap + budget + weights < limit, "heap " + heap + " + KV budget " + budget + " + weights " + weights
                + " exceed the pod's limit " + limit);
        // what is left (metaspace, code cache, threads, ONNX Runtime's arenas) keeps at least an eighth of the limit
        assertTrue(limit - heap - budget - weights > limit / 8, "too little left for the runtime's own native memory");

        // as each graph's layout allocates it on ONNX Runtime (both bundled models are slots graphs: a slot-pool row
        // each), the target's prompt fed in chunks (max-batched-tokens: the default unless the configmap sets it), the
        // draft's unchunked (the default auto policy may leave it behind, then it catches up in one feed)
        int chunk = Sequence.largestPrefillChunk(cm.path("TANDEM_SCHEDULER_MAX_BATCHED_TOKENS").asInt(DEFAULT_MAX_BATCHED_TOKENS));
        assertTrue(cm.path("TANDEM_ASSISTED_POLICY").asText("auto").equals("auto"), "this check assumes the auto policy");
        long pair = KvFootprint.worst(onnxRuntimeLayout(t), t.config().shape(), t.config().shape().maxContext(), MAX_STEP_FEED,
                chunk).footprint().total()
                + KvFootprint.worst(onnxRuntimeLayout(d), d.config().shape(), d.config().shape().maxContext(), MAX_STEP_FEED,
                KvFootprint.UNCHUNKED).footprint().total();
        assertTrue(budget >= slots * pair, "the budget (" + budget + ") does not hold " + slots
                + " full-context assisted sequences (" + pair + " bytes each)");
        // and no more than the slots can use: memory reserved beyond that is taken from the runtime for nothing
        assertTrue(budget < (slots + 1) * pair, "the budget (" + budget + ") holds more than " + slots
                + " full-context assisted sequences (" + pair + " bytes each): lower it");
    }
}
