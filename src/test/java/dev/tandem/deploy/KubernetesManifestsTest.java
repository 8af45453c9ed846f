package dev.tandem.deploy;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.quarkus.test.junit.QuarkusTest;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * k8s/: every manifest parses into typed Kubernetes objects with no unknown field, the overlays'
 * patches apply to the base, and the probes point at paths and a port the application serves.
 */
@QuarkusTest
class KubernetesManifestsTest {
    static final Path BASE = Path.of("k8s/base");
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    @SuppressWarnings("unchecked")
    static Map<String, Object> yaml(Path p) throws IOException {
        return YAML.readValue(p.toFile(), Map.class);
    }

    /** Typed parse; unknown fields end up in additionalProperties, which must stay empty everywhere. */
    static HasMetadata typed(Map<String, Object> doc, String where) {
        HasMetadata r = Serialization.unmarshal(Serialization.asJson(doc));
        if (!(r instanceof GenericKubernetesResource)) {
            List<String> unknown = new ArrayList<>();
            unknownFields(r, "", unknown, new IdentityHashMap<>());
            assertTrue(unknown.isEmpty(), where + ": unknown fields " + unknown);
        }
        return r;
    }

    static void unknownFields(Object o, String path, List<String> out, IdentityHashMap<Object, Boolean> seen) {
        if (o == null || seen.put(o, true) != null || !o.getClass().getName().startsWith("io.fabric8")) {
            if (o instanceof List<?> l) {
                for (int i = 0; i < l.size(); i++) {
                    unknownFields(l.get(i), path + "[" + i + "]", out, seen);
                }
            }
            return;
        }
        for (Method m : o.getClass().getMethods()) {
            if (m.getParameterCount() != 0 || !m.getName().startsWith("get") || m.getDeclaringClass() == Object.class) {
                continue;
            }
            try {
                Object v = m.invoke(o);
                if (m.getName().equals("getAdditionalProperties")) {
                    if (v instanceof Map<?, ?> extra && !extra.isEmpty()) {
                        out.add(path + " " + extra.keySet());
                    }
                } else if (v instanceof Map<?, ?> map) {
                    map.forEach((k, x) -> unknownFields(x, path + "." + k, out, seen));
                } else {
                    unknownFields(v, path + "." + m.getName().substring(3), out, seen);
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @SuppressWarnings("unchecked")
    static Map<Path, Map<String, Object>> base() throws IOException {
        Map<String, Object> k = yaml(BASE.resolve("kustomization.yaml"));
        Map<Path, Map<String, Object>> out = new LinkedHashMap<>();
        for (String r : (List<String>) k.get("resources")) {
            out.put(BASE.resolve(r), yaml(BASE.resolve(r)));
        }
        return out;
    }

    @Test
    @SuppressWarnings("unchecked")
    void everyBaseManifestIsATypedObjectWithoutUnknownFields() throws IOException {
        Map<Class<?>, Integer> kinds = new LinkedHashMap<>();
        for (Map.Entry<Path, Map<String, Object>> e : base().entrySet()) {
            HasMetadata r = typed(e.getValue(), e.getKey().toString());
            kinds.merge(r.getClass(), 1, Integer::sum);
            assertEquals("tandem", r.getMetadata().getLabels().get("app.kubernetes.io/name"), e.getKey() + " is labelled");
        }
        for (Class<?> c : List.of(Deployment.class, Service.class, ConfigMap.class, HorizontalPodAutoscaler.class,
                PodDisruptionBudget.class, NetworkPolicy.class, GenericKubernetesResource.class)) {
            assertTrue(kinds.containsKey(c), "base has a " + c.getSimpleName());
        }
        GenericKubernetesResource monitor = (GenericKubernetesResource) typed(yaml(BASE.resolve("servicemonitor.yaml")), "sm");
        assertEquals("ServiceMonitor", monitor.getKind());
        Map<String, Object> spec = (Map<String, Object>) monitor.getAdditionalProperties().get("spec");
        Map<String, Object> endpoint = ((List<Map<String, Object>>) spec.get("endpoints")).get(0);
        assertEquals("/q/metrics", endpoint.get("path"));
        assertEquals("http", endpoint.get("port"), "the Service's port name");
        given().get((String) endpoint.get("path")).then().statusCode(200);  // the application serves its metrics there
    }

    @Test
    void theDeploymentIsLockedDownAndItsProbesHitRealEndpoints() throws IOException {
        Deployment d = (Deployment) typed(yaml(BASE.resolve("deployment.yaml")), "deployment");
        var pod = d.getSpec().getTemplate().getSpec();
        assertTrue(pod.getSecurityContext().getRunAsNonRoot());
        assertNotNull(pod.getTerminationGracePeriodSeconds());
        assertTrue(pod.getTerminationGracePeriodSeconds() > 30 + 5, "covers the preStop pause and the shutdown timeout");
        Container c = pod.getContainers().get(0);
        assertTrue(c.getSecurityContext().getReadOnlyRootFilesystem());
        assertFalse(c.getSecurityContext().getAllowPrivilegeEscalation());
        assertEquals(List.of("ALL"), c.getSecurityContext().getCapabilities().getDrop());
        assertTrue(c.getSecurityContext().getCapabilities().getAdd() == null || c.getSecurityContext().getCapabilities().getAdd().isEmpty());
        assertNotNull(c.getLifecycle().getPreStop(), "a preStop lets readiness drop before SIGTERM");
        assertNotNull(c.getResources().getRequests().get("cpu"));
        assertEquals(8080, c.getPorts().get(0).getContainerPort(), "Quarkus' HTTP port");
        Map<String, Probe> probes = Map.of("/q/health/started", c.getStartupProbe(), "/q/health/ready", c.getReadinessProbe(),
                "/q/health/live", c.getLivenessProbe());
        probes.forEach((path, probe) -> {
            assertEquals(path, probe.getHttpGet().getPath());
            assertEquals("http", probe.getHttpGet().getPort().getStrVal());
            given().get(path).then().statusCode(200);  // the application really serves it
        });
    }

    @Test
    void theConfigMapServesTheBundledPair() throws IOException {
        ConfigMap cm = (ConfigMap) typed(yaml(BASE.resolve("configmap.yaml")), "configmap");
        Map<String, String> data = cm.getData();
        assertEquals("/work/models/kjv-target", data.get("TANDEM_TARGET_MODEL_DIR"));
        assertEquals("/work/models/kjv-draft", data.get("TANDEM_DRAFT_MODEL_DIR"));
        for (String key : List.of("TANDEM_TARGET_MODEL_DIR", "TANDEM_DRAFT_MODEL_DIR")) {
            Path bundled = Path.of(data.get(key).substring("/work/".length()));
            assertTrue(Files.isDirectory(bundled), key + " points at " + bundled + ", which the image does not contain");
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void overlaysApplyToTheBase() throws IOException {
        Map<Path, Map<String, Object>> base = base();
        Map<String, String> expectedLimit = Map.of("intel-gpu", "gpu.intel.com/i915", "gaudi", "habana.ai/gaudi");
        for (String overlay : List.of("cpu", "intel-gpu", "gaudi")) {
            Path dir = Path.of("k8s/overlays", overlay);
            Map<String, Object> k = yaml(dir.resolve("kustomization.yaml"));
            assertEquals(List.of("../../base"), k.get("resources"), overlay + " builds on the base");
            Map<String, Map<String, Object>> merged = new LinkedHashMap<>();
            base.values().forEach(doc -> merged.put(key(doc), deepCopy(doc)));
            for (Map<String, Object> patch : (List<Map<String, Object>>) k.getOrDefault("patches", List.of())) {
                Map<String, Object> p = yaml(dir.resolve((String) patch.get("path")));
                Map<String, Object> target = merged.get(key(p));
                assertNotNull(target, overlay + ": patch " + patch.get("path") + " targets " + key(p) + ", which the base lacks");
                merge(target, p);
            }
            for (Map.Entry<String, Map<String, Object>> e : merged.entrySet()) {
                typed(e.getValue(), overlay + " " + e.getKey());
            }
            if (expectedLimit.containsKey(overlay)) {
                Deployment d = (Deployment) typed(merged.get("Deployment/tandem"), overlay);
                Map<String, Quantity> limits = d.getSpec().getTemplate().getSpec().getContainers().get(0).getResources().getLimits();
                assertTrue(limits.containsKey(expectedLimit.get(overlay)), overlay + " asks for its device: " + limits);
                assertTrue(limits.containsKey("memory"), overlay + " keeps the base's memory limit");
            }
        }
    }

    @Test
    void theDashboardQueriesMetricsTheServiceExports() throws IOException {
        given().contentType("application/json").body("{\"prompt\":\"And God said\",\"max_tokens\":40,\"temperature\":0,"
                + "\"assisted\":true,\"assistant\":\"prompt_lookup\"}").post("/v1/completions").then().statusCode(200);
        given().contentType("application/json").body("{\"prompt\":\"x\",\"max_tokens\":0}").post("/v1/completions")
                .then().statusCode(400);
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        String dashboard = Files.readString(Path.of("k8s/dashboards/tandem-assisted-vs-plain.json"));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("tandem_[a-z_]+").matcher(dashboard);
        int n = 0;
        while (m.find()) {
            assertTrue(metrics.contains(m.group() + "{") || metrics.contains(m.group() + " "),
                    "the dashboard queries " + m.group() + ", which /q/metrics does not export");
            n++;
        }
        assertTrue(n > 10);
        new ObjectMapper().readTree(dashboard);  // valid JSON
    }

    static String key(Map<String, Object> doc) {
        return doc.get("kind") + "/" + ((Map<?, ?>) doc.get("metadata")).get("name");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> deepCopy(Map<String, Object> m) {
        return YAML.convertValue(m, Map.class);
    }

    /** Strategic merge as kustomize does it for these patches: maps merge, lists of named items merge by name. */
    @SuppressWarnings("unchecked")
    static void merge(Map<String, Object> into, Map<String, Object> patch) {
        for (Map.Entry<String, Object> e : patch.entrySet()) {
            Object cur = into.get(e.getKey());
            if (cur instanceof Map && e.getValue() instanceof Map) {
                merge((Map<String, Object>) cur, (Map<String, Object>) e.getValue());
            } else if (cur instanceof List<?> l && e.getValue() instanceof List<?> pl && !pl.isEmpty()
                    && pl.get(0) instanceof Map<?, ?> first && first.containsKey("name")) {
                for (Object item : pl) {
                    Map<String, Object> pi = (Map<String, Object>) item;
                    Map<String, Object> match = null;
                    for (Object x : l) {
                        if (x instanceof Map<?, ?> xm && pi.get("name").equals(xm.get("name"))) {
                            match = (Map<String, Object>) xm;
                        }
                    }
                    if (match != null) {
                        merge(match, pi);
                    } else {
                        ((List<Object>) l).add(pi);
                    }
                }
            } else {
                into.put(e.getKey(), e.getValue());
            }
        }
    }
}
