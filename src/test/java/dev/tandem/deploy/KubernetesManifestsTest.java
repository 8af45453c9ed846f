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
    static final Path MONITOR = Path.of("k8s/components/servicemonitor");
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
                PodDisruptionBudget.class, NetworkPolicy.class)) {
            assertTrue(kinds.containsKey(c), "base has a " + c.getSimpleName());
        }
        // only core kinds: `kubectl apply -k k8s/base` must work on a cluster without the Prometheus Operator's CRDs
        assertFalse(kinds.containsKey(GenericKubernetesResource.class), "base has a custom resource: " + kinds.keySet());
    }

    /** The ServiceMonitor is an optional kustomize Component (k8s/components/servicemonitor) an overlay can add. */
    @Test
    @SuppressWarnings("unchecked")
    void theServiceMonitorIsAnOptionalComponent() throws IOException {
        Map<String, Object> k = yaml(MONITOR.resolve("kustomization.yaml"));
        assertEquals("kustomize.config.k8s.io/v1alpha1", k.get("apiVersion"));
        assertEquals("Component", k.get("kind"));
        assertEquals(List.of("servicemonitor.yaml"), k.get("resources"));
        GenericKubernetesResource monitor = (GenericKubernetesResource) typed(yaml(MONITOR.resolve("servicemonitor.yaml")), "sm");
        assertEquals("tandem", monitor.getMetadata().getLabels().get("app.kubernetes.io/name"));
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

    /** The tag `docker build -f <dockerfile> -t <image>` in the Dockerfile's header builds. */
    static String builtImage(String dockerfile) throws IOException {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("docker build -f " + java.util.regex.Pattern.quote(dockerfile)
                + " -t (\\S+) ").matcher(Files.readString(Path.of(dockerfile)));
        assertTrue(m.find(), dockerfile + " says how to build it");
        return m.group(1);
    }

    /** The image an overlay deploys: the base's, with the overlay's kustomize `images` entry applied. */
    @SuppressWarnings("unchecked")
    static String overlayImage(String overlay) throws IOException {
        Deployment d = (Deployment) typed(yaml(BASE.resolve("deployment.yaml")), "deployment");
        String image = d.getSpec().getTemplate().getSpec().getContainers().get(0).getImage();
        String name = image.substring(0, image.lastIndexOf(':'));
        Map<String, Object> k = yaml(Path.of("k8s/overlays", overlay, "kustomization.yaml"));
        for (Map<String, Object> i : (List<Map<String, Object>>) k.getOrDefault("images", List.of())) {
            if (name.equals(i.get("name"))) {
                image = i.getOrDefault("newName", name) + ":" + i.getOrDefault("newTag", image.substring(name.length() + 1));
            }
        }
        return image;
    }

    @Test
    void eachOverlayDeploysAnImageWithItsEngine() throws IOException {
        assertEquals(builtImage("Dockerfile.jvm"), overlayImage("cpu"), "the base runs the JVM image as its header builds it");
        assertEquals(builtImage("Dockerfile.jvm"), overlayImage("gaudi"));
        // the intel-gpu overlay selects the OpenVINO engine, so it needs the image with the OpenVINO runtime
        assertEquals(builtImage("Dockerfile.openvino"), overlayImage("intel-gpu"));
        assertTrue(Files.readString(Path.of("Dockerfile.openvino")).contains("openvino-${OPENVINO_VERSION}"));
    }

    /**
     * The preStop `sleep` handler is beta and on by default only from Kubernetes 1.30 (alpha behind a feature
     * gate in 1.29, GA in 1.34); older API servers reject the Deployment. The README must name that minimum.
     */
    @Test
    void thePreStopHandlerExistsOnTheKubernetesVersionsTheReadmeNames() throws IOException {
        Deployment d = (Deployment) typed(yaml(BASE.resolve("deployment.yaml")), "deployment");
        var preStop = d.getSpec().getTemplate().getSpec().getContainers().get(0).getLifecycle().getPreStop();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("Kubernetes (?:>=|≥) ?1\\.(\\d+)")
                .matcher(Files.readString(Path.of("README.md")));
        assertTrue(m.find(), "README names the Kubernetes versions the manifests need");
        int minor = Integer.parseInt(m.group(1));
        if (preStop.getSleep() != null) {
            assertTrue(minor >= 30, "the sleep lifecycle handler needs Kubernetes >= 1.30, README names 1." + minor);
        } else {
            assertNotNull(preStop.getExec(), "preStop is a sleep or an exec");
        }
    }

    /** The real kustomize, where kubectl is installed: base, each overlay, and the base with the monitor component. */
    @Test
    void kubectlKustomizeBuildsEveryVariant() throws Exception {
        if (!onPath("kubectl")) {
            System.err.println("SKIPPED kubectlKustomizeBuildsEveryVariant: kubectl is not installed");  // Surefire shows no reason
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(onPath("kubectl"), "SKIPPED: kubectl not installed");
        for (String dir : List.of("k8s/base", "k8s/overlays/cpu", "k8s/overlays/intel-gpu", "k8s/overlays/gaudi")) {
            String out = kustomize(Path.of(dir).toAbsolutePath());
            assertFalse(out.contains("kind: ServiceMonitor"), dir + " needs no Prometheus Operator");
            assertTrue(out.contains("kind: Deployment"), dir);
            assertTrue(out.contains("image: " + overlayImage(dir.startsWith("k8s/overlays/") ? dir.substring(13) : "cpu")), dir);
        }
        // kustomize takes only relative paths to other kustomizations: an overlay under target/
        Path withMonitor = Files.createDirectories(Path.of("target/k8s-with-monitor"));
        Files.writeString(withMonitor.resolve("kustomization.yaml"), "resources:\n  - ../../" + BASE
                + "\ncomponents:\n  - ../../" + MONITOR + "\n");
        assertTrue(kustomize(withMonitor).contains("kind: ServiceMonitor"), "the component adds the ServiceMonitor");
    }

    static boolean onPath(String program) {
        return java.util.Arrays.stream(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(d -> Files.isExecutable(Path.of(d, program)));
    }

    static String kustomize(Path dir) throws Exception {
        Process p = new ProcessBuilder("kubectl", "kustomize", dir.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), "kubectl kustomize " + dir + ": " + out);
        return out;
    }

    @Test
    void theDashboardQueriesMetricsTheServiceExports() throws IOException {
        given().contentType("application/json").body("{\"prompt\":\"And God said\",\"max_tokens\":40,\"temperature\":0,"
                + "\"assisted\":true,\"assistant\":\"prompt_lookup\"}").post("/v1/completions").then().statusCode(200);
        given().contentType("application/json").body("{\"prompt\":\"x\",\"max_tokens\":0}").post("/v1/completions")
                .then().statusCode(400);
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        String dashboard = Files.readString(Path.of("k8s/dashboards/tandem-assisted-vs-plain.json"));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("tandem_[a-z0-9_]+").matcher(dashboard);
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
