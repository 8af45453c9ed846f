package dev.tandem.engine;

/** The keys and values of one sequence, held by the engine between {@link CausalLm#forward} calls. */
public interface KvCache extends AutoCloseable {

    /** Number of tokens whose keys and values the cache holds. */
    int length();

    /**
     * Forgets every position at or after {@code length} (rollback of rejected draft tokens). The
     * next {@code forward} continues from there as if those tokens had never been fed.
     *
     * @throws IllegalArgumentException if {@code length} is negative or beyond {@link #length()}
     * @throws UnsupportedOperationException if {@code length < length()} and the model does not
     *     {@linkplain CausalLm#supportsRollback() support rollback}
     */
    void truncate(int length);

    /** Releases the cache's memory. Idempotent. */
    @Override
    void close();
}
