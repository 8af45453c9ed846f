package dev.tandem.api;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.path.json.JsonPath;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@code tandem.target.generation-config=none}: the model's generation_config.json (temperature 0, max_new_tokens 5)
 * is ignored; requests get the OpenAI defaults (temperature 1, tandem.limits.default-max-tokens), as before.
 */
@QuarkusTest
@TestProfile(GenerationConfigNoneApiTest.Ignored.class)
class GenerationConfigNoneApiTest {

    public static class Ignored implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("tandem.target.generation-config", "none");
        }

        @Override
        public List<TestResourceEntry> testResources() {
            return List.of(new TestResourceEntry(GreedyFiveTokenModel.class));
        }
    }

    @Test
    void theModelsDefaultsAreIgnored() {
        Map<String, Object> defaults = given().get("/v1/models/" + GreedyFiveTokenModel.ID).then().statusCode(200)
                .extract().jsonPath().getMap("sampling_defaults");
        assertEquals(Map.of(), defaults);
        String greedy = GenerationConfigApiTest.complete(",\"temperature\":0,\"max_tokens\":16").getString("choices[0].text");
        Set<String> texts = new HashSet<>();
        for (int seed = 1; seed <= 4; seed++) {
            JsonPath r = GenerationConfigApiTest.complete(",\"seed\":" + seed);
            assertEquals(16, r.getInt("usage.completion_tokens"), "tandem.limits.default-max-tokens, not the model's 5");
            texts.add(r.getString("choices[0].text"));
        }
        texts.remove(greedy);
        assertTrue(!texts.isEmpty(), "temperature 1 (the OpenAI default) sampled only the greedy text in 4 seeds");
    }
}
