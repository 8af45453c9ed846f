package dev.tandem.api;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * A table-driven fuzz test of every POST route: each field of each route's request gets every value
 * of a list of hostile ones (wrong types, null, extreme and non-JSON numbers, huge and deep values,
 * invalid and overlong UTF-8, lone surrogates, Jinja-looking text, out-of-vocabulary token ids), plus
 * whole-body cases (empty, arrays, duplicate keys, oversized, chunked) and a few hand-written ones.
 *
 * <p>Every case must get an answer a client can handle: no 5xx; a JSON body (an error in the route
 * family's shape when 4xx: OpenAI's {@code {"error":{"message","type","param","code"}}}, TGI's
 * {@code {"error","error_type"}}; for a stream, Server-Sent Events whose data are JSON and which end
 * properly); no Java class names or "Exception" in the body; nothing of the configuration or of an
 * evaluated template in it. Bodies that are not JSON in UTF-8 (overlong forms included), objects with
 * a duplicate name (parsers differ on which value counts), and token ids outside the vocabulary must
 * be refused with a 4xx. After the whole table the service must still be ready.
 *
 * <p>All failures are collected and reported in one assertion (case, status, head of the body), so a
 * run shows every broken case at once. max_tokens stays at 2, so accepted cases decode little.
 */
@QuarkusTest
class FuzzTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern CLASS_NAME = Pattern.compile("\\b(java|jakarta|io\\.vertx|com\\.fasterxml|dev\\.tandem)\\.[a-z]");
    /** What a template that evaluated request content, or included a file, would put in an answer. */
    private static final List<String> LEAKS = List.of("X 49", "tandem.limits", "quarkus.http", "tandem.target.model-dir");
    private static final int VOCAB = 4096;  // the bundled model's vocabulary size

    @TestHTTPResource("/")
    URL base;

    /** One request: a route, raw body bytes, and whether the service must refuse it (4xx). */
    record Case(String name, String route, byte[] body, String contentType, boolean chunked, boolean mustRefuse) {
        Case(String name, String route, byte[] body, boolean mustRefuse) {
            this(name, route, body, "application/json", false, mustRefuse);
        }
    }

    /** A raw JSON value (or not-quite-JSON text) put into a field; {@code notJson}: the body it makes must be refused. */
    record Value(String name, String raw, boolean notJson) {
    }

    /** A route with its minimal valid body (field name to raw JSON; nested objects as maps) and the fields to fuzz. */
    record Route(String path, boolean tgi, Map<String, Object> base, List<String> fields) {
    }

    @Test
    void everyPostRouteAnswersHostileInputWithACleanError() throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        List<Case> cases = cases();
        List<String> failures = new ArrayList<>();
        Map<String, Integer> statuses = new LinkedHashMap<>();
        Map<String, Long> millis = new LinkedHashMap<>();  // time per status class, to keep the table fast
        long start = System.nanoTime();
        for (Case c : cases) {
            long t0 = System.nanoTime();
            HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(base.toString()).resolve(c.route()))
                    .timeout(Duration.ofSeconds(60));
            if (c.contentType() != null) {
                rb.header("Content-Type", c.contentType());
            }
            rb.POST(c.chunked() ? HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(c.body()))
                    : HttpRequest.BodyPublishers.ofByteArray(c.body()));
            int status;
            String contentType;
            String body;
            try {
                HttpResponse<byte[]> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
                status = r.statusCode();
                contentType = r.headers().firstValue("Content-Type").orElse("");
                body = new String(r.body(), StandardCharsets.UTF_8);
            } catch (Exception e) {
                failures.add(line(c, -1, "no answer: " + e));
                continue;
            }
            statuses.merge(c.route() + " " + status, 1, Integer::sum);
            millis.merge(status / 100 + "xx", (System.nanoTime() - t0) / 1_000_000, Long::sum);
            String problem = check(c, status, contentType, body);
            if (problem != null) {
                failures.add(line(c, status, problem + " | " + head(body)));
            }
        }
        HttpResponse<String> ready = http.send(HttpRequest.newBuilder(URI.create(base.toString()).resolve("q/health/ready"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        if (ready.statusCode() != 200 || !"UP".equals(JSON.readTree(ready.body()).path("status").asText())) {
            failures.add("after the table, /q/health/ready is " + ready.statusCode() + " " + head(ready.body()));
        }
        System.out.println("FuzzTest: " + cases.size() + " cases in " + (System.nanoTime() - start) / 1_000_000
                + " ms (per status class: " + millis + "), statuses " + statuses);
        assertTrue(failures.isEmpty(), failures.size() + " of " + cases.size() + " cases failed:\n"
                + String.join("\n", failures));
    }

    // ---- the oracle ----

    /** What is wrong with this answer, or null. */
    static String check(Case c, int status, String contentType, String body) {
        if (status >= 500) {
            return "5xx";
        }
        if (status < 400 && c.mustRefuse()) {
            return "accepted (" + status + ") but must be refused with a 4xx";
        }
        String leak = leak(body);
        if (leak != null) {
            return leak;
        }
        boolean tgi = c.route().equals("generate") || c.route().equals("generate_stream") || c.route().equals("tokenize")
                || c.route().equals("detokenize");
        if (status >= 200 && status < 300 && contentType.startsWith("text/event-stream")) {
            return checkStream(c.route().startsWith("v1/"), body);
        }
        if (status == 200 && c.route().equals("generate_stream")) {
            return "generate_stream answered 200 without an event stream (" + contentType + ")";
        }
        JsonNode json;
        try {
            json = JSON.readTree(body);
        } catch (Exception e) {
            return "body is not JSON (" + contentType + ")";
        }
        if (json == null) {
            return "empty body";
        }
        if (status >= 400) {
            return tgi ? tgiError(json) : openAiError(json);
        }
        return null;
    }

    private static final java.util.regex.Pattern LIBRARY_SETTING = java.util.regex.Pattern.compile("[A-Z][A-Za-z]+Feature\\b");

    /** Internals or evaluated content in the body, or null. */
    private static String leak(String body) {
        var m = CLASS_NAME.matcher(body);
        if (m.find()) {
            return ("Java class name in the body: '" + around(body, m.start()) + "'");
        }
        int i = body.indexOf("Exception");
        if (i >= 0) {
            return ("'Exception' in the body: '" + around(body, i) + "'");
        }
        var setting = LIBRARY_SETTING.matcher(body);  // e.g. Jackson's "enable `JsonReadFeature.ALLOW_...`" (TGI's own messages quote fields in backticks)
        if (setting.find()) {
            return ("a library setting in the body: '" + around(body, setting.start()) + "'");
        }
        for (String s : LEAKS) {
            int j = body.indexOf(s);
            if (j >= 0) {
                return ("evaluated template or configuration in the body: '" + around(body, j) + "'");
            }
        }
        return null;
    }

    private static String openAiError(JsonNode j) {
        JsonNode e = j.path("error");
        if (!e.isObject() || !e.path("message").isTextual() || e.path("message").asText().isBlank()
                || !e.path("type").isTextual() || !e.has("param") || !e.has("code")) {
            return "not OpenAI's error shape {\"error\":{\"message\",\"type\",\"param\",\"code\"}}";
        }
        return null;
    }

    private static String tgiError(JsonNode j) {
        if (!j.path("error").isTextual() || j.path("error").asText().isBlank() || !j.path("error_type").isTextual()) {
            return "not TGI's error shape {\"error\",\"error_type\"}";
        }
        return null;
    }

    /** Events are {@code data: <json>}; OpenAI's end with {@code [DONE]}, TGI's with an event holding generated_text. */
    private static String checkStream(boolean openAi, String body) {
        List<String> data = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            if (block.isBlank()) {
                continue;
            }
            for (String l : block.split("\n")) {
                if (l.startsWith("data:")) {
                    data.add(l.substring(5).trim());
                } else if (!l.isEmpty() && !l.startsWith(":")) {
                    return "stream line that is not an SSE data line: '" + head(l) + "'";
                }
            }
        }
        if (data.isEmpty()) {
            return "empty event stream";
        }
        JsonNode last = null;
        for (int i = 0; i < data.size(); i++) {
            if (openAi && i == data.size() - 1 && data.get(i).equals("[DONE]")) {
                break;
            }
            try {
                last = JSON.readTree(data.get(i));
            } catch (Exception e) {
                return "stream event " + i + " is not JSON: '" + head(data.get(i)) + "'";
            }
            if (last.has("error")) {
                return "error event in the stream";
            }
        }
        if (openAi && !data.get(data.size() - 1).equals("[DONE]")) {
            return "stream cut short (no data: [DONE])";
        }
        if (!openAi && (last == null || !last.path("generated_text").isTextual())) {
            return "stream cut short (no final event with generated_text)";
        }
        return null;
    }

    // ---- the table ----

    static List<Route> routes() {
        List<String> sampling = List.of("max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                "presence_penalty", "frequency_penalty", "seed", "stop", "n", "stream", "stream_options", "logit_bias",
                "user", "ignore_eos");
        List<String> assist = List.of("assisted", "assistant", "num_assistant_tokens", "assistant_schedule",
                "assistant_confidence_threshold", "prompt_lookup_ngram_size");
        List<String> completion = new ArrayList<>(List.of("model", "prompt", "logprobs", "echo", "best_of", "suffix"));
        completion.addAll(sampling);
        completion.addAll(assist);
        List<String> chat = new ArrayList<>(List.of("model", "messages", "messages.0", "messages.0.role",
                "messages.0.content", "messages.0.content.0.text", "messages.0.name", "max_completion_tokens",
                "logprobs", "top_logprobs"));
        chat.addAll(sampling);
        chat.addAll(assist);
        List<String> tgi = new ArrayList<>(List.of("inputs", "parameters", "stream"));
        for (String f : List.of("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "repetition_penalty",
                "frequency_penalty", "seed", "stop", "details", "decoder_input_details", "return_full_text",
                "top_n_tokens", "best_of", "typical_p", "watermark", "truncate")) {
            tgi.add("parameters." + f);
        }
        for (String f : assist) {
            tgi.add("parameters." + f);
        }
        Map<String, Object> completionBase = obj("prompt", "\"And God said\"", "max_tokens", "2");
        Map<String, Object> chatBase = obj("messages", List.of(obj("role", "\"user\"",
                "content", List.of(obj("type", "\"text\"", "text", "\"And God said\"")))), "max_tokens", "2");
        Map<String, Object> tgiBase = obj("inputs", "\"And God said\"", "parameters", obj("max_new_tokens", "2"));
        return List.of(
                new Route("v1/completions", false, completionBase, completion),
                new Route("v1/chat/completions", false, chatBase, chat),
                new Route("generate", true, tgiBase, tgi),
                new Route("generate_stream", true, tgiBase, tgi),
                new Route("tokenize", true, obj("inputs", "\"And God said\"", "add_special_tokens", "true"),
                        List.of("inputs", "add_special_tokens")),
                new Route("detokenize", true, obj("tokens", List.of("1", "5", "9")), List.of("tokens", "tokens.0")));
    }

    static List<Value> values() {
        List<Value> v = new ArrayList<>();
        for (String raw : List.of("null", "\"x\"", "\"\"", "true", "false", "{}", "[]", "[null]", "{\"a\":1}", "[\"x\",\"y\"]",
                "0", "-0", "-0.0", "1", "-1", "0.5", "1.0", "1e-300", "-1e-300", "1e308", "-1e308", "1e400", "-1e400",
                "2147483648", "-2147483649", "9223372036854775808", "18446744073709551621", "-18446744073709551621",
                String.valueOf(VOCAB), String.valueOf(VOCAB - 1), "[18446744073709551621]", "[-1]", "[" + VOCAB + "]",
                "\"{{ 7*7 }}\"", "\"{% include 'application.properties' %}\"",
                "\"{{ raise_exception('X ' ~ (7*7)) }}\"",
                "\"\\ud800\"", "\"a\\udc00b\"", "\"\\u0000\"", "\"\\uD83D\\uDE00 \\u202e\"")) {
            v.add(new Value(raw.length() > 40 ? raw.substring(0, 40) + "…" : raw, raw, false));
        }
        v.add(new Value("huge string", "\"" + "In the beginning ".repeat(12_000) + "\"", false));
        v.add(new Value("huge array", "[" + "1,".repeat(50_000) + "1]", false));
        v.add(new Value("deep array", "[".repeat(5_000) + "]".repeat(5_000), false));
        v.add(new Value("deep object", "{\"a\":".repeat(5_000) + "1" + "}".repeat(5_000), false));
        for (String raw : List.of("NaN", "Infinity", "-Infinity", "01", "+1", ".5", "1.", "0x10", "'x'", "\"x\" \"y\"")) {
            v.add(new Value(raw, raw, true));
        }
        // bytes that are not UTF-8 (written as the private-use character U+E0xx, sent as the byte xx; see bytes()), and overlong forms of '/' and NUL
        v.add(new Value("invalid UTF-8 FF FE", "\"a\uE0FF\uE0FEb\"", true));
        v.add(new Value("truncated UTF-8 E2 82", "\"a\uE0E2\uE082\"", true));
        v.add(new Value("overlong UTF-8 C0 AF", "\"a\uE0C0\uE0AFb\"", true));
        v.add(new Value("overlong UTF-8 C0 80", "\"a\uE0C0\uE080b\"", true));
        v.add(new Value("overlong UTF-8 E0 80 AF", "\"a\uE0E0\uE080\uE0AFb\"", true));
        v.add(new Value("UTF-8 surrogate ED A0 80", "\"a\uE0ED\uE0A0\uE080b\"", true));
        return v;
    }

    static List<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (Route r : routes()) {
            for (String field : r.fields()) {
                for (Value v : values()) {
                    boolean tokenIds = tokenIdField(r, field) && outOfVocabulary(v.raw());
                    out.add(new Case(r.path() + " " + field + "=" + v.name(), r.path(),
                            bytes(render(with(r.base(), field, v.raw()))), v.notJson() || tokenIds));
                    if (!r.tgi() && r.path().startsWith("v1/") && !field.equals("stream") && numeric(v.raw())) {
                        Map<String, Object> streamed = with(r.base(), "stream", "true");
                        out.add(new Case(r.path() + " stream " + field + "=" + v.name(), r.path(),
                                bytes(render(with(streamed, field, v.raw()))), v.notJson() || tokenIds));
                    }
                }
            }
            wholeBodies(r, out);
        }
        quoted(out);
        return out;
    }

    private static boolean tokenIdField(Route r, String field) {
        return r.path().equals("v1/completions") && field.equals("prompt")
                || r.path().equals("detokenize") && field.equals("tokens");
    }

    private static boolean outOfVocabulary(String raw) {
        return raw.equals("[18446744073709551621]") || raw.equals("[-1]") || raw.equals("[" + VOCAB + "]");
    }

    private static boolean numeric(String raw) {
        return !raw.isEmpty() && (Character.isDigit(raw.charAt(0)) || raw.charAt(0) == '-');
    }

    /** Bodies that are wrong as a whole, the same for every route. */
    private static void wholeBodies(Route r, List<Case> out) {
        String valid = render(r.base());
        String p = r.path();
        out.add(new Case(p + " empty body", p, new byte[0], true));
        for (String raw : List.of("null", "[]", "[" + valid + "]", "\"x\"", "1", "true", "{}", "{\"\":1}")) {
            out.add(new Case(p + " body " + raw.substring(0, Math.min(raw.length(), 30)), p, bytes(raw),
                    !raw.equals("{}") && !raw.equals("{\"\":1}")));
        }
        out.add(new Case(p + " body with trailing garbage", p, bytes(valid + "}x"), true));
        out.add(new Case(p + " truncated body", p, bytes(valid.substring(0, valid.length() / 2)), true));
        out.add(new Case(p + " body with a BOM", p, bytes("\uFEFF" + valid), false));
        out.add(new Case(p + " body of NUL bytes", p, new byte[64], true));
        out.add(new Case(p + " deeply nested body", p, bytes("{\"a\":[".repeat(3_000) + "]}".repeat(3_000)), false));
        String first = r.base().keySet().iterator().next();
        out.add(new Case(p + " duplicate key " + first, p, bytes("{\"" + first + "\":" + raw(r.base().get(first)) + ","
                + valid.substring(1)), true));
        out.add(new Case(p + " duplicate key, second has the wrong type", p, bytes(valid.substring(0, valid.length() - 1)
                + ",\"" + first + "\":{}}"), true));
        out.add(new Case(p + " unicode-escaped key", p, bytes(valid.replaceFirst("\"" + first + "\"",
                "\"" + escapeAll(first) + "\"")), false));
        out.add(new Case(p + " 2 MB body", p, bytes("{\"x\":\"" + "a".repeat(2 << 20) + "\"}"), true));
        out.add(new Case(p + " 5 MB chunked body", p, bytes("{\"x\":\"" + "a".repeat(5 << 20) + "\"}"), "application/json",
                true, true));
        out.add(new Case(p + " text/plain", p, bytes(valid), "text/plain", false, true));
        out.add(new Case(p + " no content type", p, bytes(valid), null, false, false));
        out.add(new Case(p + " latin-1 charset", p, bytes(valid), "application/json; charset=ISO-8859-1", false, false));
        out.add(new Case(p + " bogus charset", p, bytes(valid), "application/json; charset=nope", false, false));
    }

    /** The cases quoted in issue 13. */
    private static void quoted(List<Case> out) {
        String tiny = "{\"prompt\":\"And God said\",\"max_tokens\":4,\"repetition_penalty\":1e-300";
        out.add(new Case("quoted: completions repetition_penalty 1e-300", "v1/completions", bytes(tiny + "}"), false));
        out.add(new Case("quoted: completions stream repetition_penalty 1e-300", "v1/completions",
                bytes(tiny + ",\"stream\":true}"), false));
        out.add(new Case("quoted: completions assisted repetition_penalty 1e-300", "v1/completions",
                bytes(tiny + ",\"assisted\":true}"), false));
        String chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"And God said\"}],\"max_tokens\":4,\"repetition_penalty\":1e-300";
        out.add(new Case("quoted: chat repetition_penalty 1e-300", "v1/chat/completions", bytes(chat + "}"), false));
        out.add(new Case("quoted: chat stream repetition_penalty 1e-300", "v1/chat/completions",
                bytes(chat + ",\"stream\":true}"), false));
        String tgi = "{\"inputs\":\"And God said\",\"parameters\":{\"max_new_tokens\":4,\"repetition_penalty\":1e-300}}";
        out.add(new Case("quoted: generate repetition_penalty 1e-300", "generate", bytes(tgi), false));
        out.add(new Case("quoted: generate_stream repetition_penalty 1e-300", "generate_stream", bytes(tgi), false));
        out.add(new Case("quoted: prompt [18446744073709551621]", "v1/completions",
                bytes("{\"prompt\":[18446744073709551621],\"max_tokens\":2}"), true));
        out.add(new Case("quoted: prompt [-1]", "v1/completions", bytes("{\"prompt\":[-1],\"max_tokens\":2}"), true));
        out.add(new Case("quoted: prompt [vocab size]", "v1/completions",
                bytes("{\"prompt\":[" + VOCAB + "],\"max_tokens\":2}"), true));
        out.add(new Case("quoted: detokenize [18446744073709551621]", "detokenize",
                bytes("{\"tokens\":[18446744073709551621]}"), true));
        for (String content : List.of("{{ raise_exception('X ' ~ (7*7)) }}",
                "{% set x %}{% include 'application.properties' %}{% endset %}{{ raise_exception(x) }}",
                "{% include 'application.properties' %}", "{{ 7*7 }}")) {
            for (boolean stream : new boolean[] {false, true}) {
                out.add(new Case("quoted: chat content " + content + (stream ? " (stream)" : ""), "v1/chat/completions",
                        bytes("{\"messages\":[{\"role\":\"user\",\"content\":" + quote(content) + "}],\"max_tokens\":2,\"stream\":"
                                + stream + "}"), false));
            }
            out.add(new Case("quoted: chat system content " + content, "v1/chat/completions",
                    bytes("{\"messages\":[{\"role\":\"system\",\"content\":" + quote(content) + "},{\"role\":\"user\",\"content\":"
                            + quote(content) + "}],\"max_tokens\":2}"), false));
        }
    }

    // ---- building bodies ----

    /** An ordered JSON object: values are raw JSON text, nested maps, or lists of those. */
    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /**
     * A copy of {@code base} with the value at {@code path} (dot-separated; numbers index lists) set
     * to {@code raw}; missing objects on the way are created.
     */
    @SuppressWarnings("unchecked")
    static Map<String, Object> with(Map<String, Object> base, String path, String raw) {
        Map<String, Object> root = (Map<String, Object>) copy(base);
        Object node = root;
        String[] parts = path.split("\\.");
        for (int i = 0; i < parts.length; i++) {
            boolean last = i == parts.length - 1;
            if (node instanceof Map<?, ?> m) {
                Map<String, Object> map = (Map<String, Object>) m;
                if (last) {
                    map.put(parts[i], raw);
                } else {
                    node = map.computeIfAbsent(parts[i], k -> new LinkedHashMap<String, Object>());
                }
            } else if (node instanceof List<?> l) {
                List<Object> list = (List<Object>) l;
                int idx = Integer.parseInt(parts[i]);
                if (last) {
                    list.set(idx, raw);
                } else {
                    node = list.get(idx);
                }
            } else {
                throw new IllegalArgumentException("cannot descend into " + path);
            }
        }
        return root;
    }

    private static Object copy(Object o) {
        if (o instanceof Map<?, ?> m) {
            Map<String, Object> c = new LinkedHashMap<>();
            m.forEach((k, v) -> c.put((String) k, copy(v)));
            return c;
        }
        if (o instanceof List<?> l) {
            List<Object> c = new ArrayList<>();
            l.forEach(v -> c.add(copy(v)));
            return c;
        }
        return o;
    }

    static String render(Object o) {
        if (o instanceof Map<?, ?> m) {
            StringBuilder b = new StringBuilder("{");
            m.forEach((k, v) -> b.append(b.length() > 1 ? "," : "").append('"').append(k).append("\":").append(render(v)));
            return b.append('}').toString();
        }
        if (o instanceof List<?> l) {
            StringBuilder b = new StringBuilder("[");
            l.forEach(v -> b.append(b.length() > 1 ? "," : "").append(render(v)));
            return b.append(']').toString();
        }
        return (String) o;
    }

    private static String raw(Object o) {
        return render(copy(o));
    }

    /**
     * UTF-8 bytes of {@code s}, except that each private-use character U+E0xx becomes the single byte
     * xx: the way the table writes bytes that are not UTF-8.
     */
    static byte[] bytes(String s) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length() + 16);
        int plain = 0;
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch >= '\uE000' && ch <= '\uE0FF') {
                out.writeBytes(s.substring(plain, i).getBytes(StandardCharsets.UTF_8));
                out.write(ch & 0xff);
                plain = i + 1;
            }
        }
        out.writeBytes(s.substring(plain).getBytes(StandardCharsets.UTF_8));
        return out.toByteArray();
    }

    private static String quote(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static String escapeAll(String s) {
        StringBuilder b = new StringBuilder();
        s.chars().forEach(c -> b.append(String.format("\\u%04x", c)));
        return b.toString();
    }

    private static String line(Case c, int status, String problem) {
        return "  [" + c.name() + "] -> " + status + ": " + problem;
    }

    private static String head(String body) {
        String s = body.replace("\n", "\\n");
        return s.length() > 200 ? s.substring(0, 200) + "…" : s;
    }

    private static String around(String body, int at) {
        return body.substring(Math.max(0, at - 40), Math.min(body.length(), at + 60)).replace("\n", "\\n");
    }
}
