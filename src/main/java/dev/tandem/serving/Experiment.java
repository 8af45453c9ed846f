package dev.tandem.serving;

import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Assigns requests to the assisted or the plain arm of the A/B experiment. A request that names
 * {@code assisted} itself is not in the experiment (arm "explicit"). Otherwise, with the
 * experiment on, the arm comes from a stable hash of the OpenAI {@code user} field or the
 * {@code X-Experiment-Key} header (the same key always lands in the same arm), or at random when
 * there is neither. With the experiment off the arm is "none" and the server default decides.
 */
@ApplicationScoped
public class Experiment {
    public static final String ASSISTED = "assisted";
    public static final String PLAIN = "plain";
    public static final String EXPLICIT = "explicit";
    public static final String NONE = "none";

    private final TandemConfig.Experiment config;

    public Experiment(TandemConfig config) {
        this.config = config.experiment();
    }

    /** The arm, and whether it decodes assisted. */
    public record Assignment(String arm, boolean assisted) {
    }

    public Assignment assign(Boolean explicitAssisted, String key, boolean serverDefault) {
        if (explicitAssisted != null) {
            return new Assignment(EXPLICIT, explicitAssisted);
        }
        if (!config.enabled()) {
            return new Assignment(NONE, serverDefault);
        }
        double u = key == null || key.isBlank() ? ThreadLocalRandom.current().nextDouble() : unit(key);
        boolean assisted = u < config.assistedShare();
        return new Assignment(assisted ? ASSISTED : PLAIN, assisted);
    }

    public boolean enabled() {
        return config.enabled();
    }

    public double assistedShare() {
        return config.assistedShare();
    }

    /** A stable number in [0, 1) for a key: the first 8 bytes of its SHA-256. */
    static double unit(String key) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
            long v = 0;
            for (int i = 0; i < 7; i++) {
                v = (v << 8) | (h[i] & 0xff);
            }
            return v / (double) (1L << 56);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
