package dev.tandem.engine;

/** A failure inside an inference runtime (not the caller's fault). */
public class EngineException extends RuntimeException {
    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }

    public EngineException(String message) {
        super(message);
    }
}
