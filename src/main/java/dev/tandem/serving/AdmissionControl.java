package dev.tandem.serving;

import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Bounds the work in flight: at most {@code max-concurrent} sequences decode at once, at most
 * {@code max-queued} requests wait for a slot, each at most {@code queue-timeout}. Beyond that a
 * request is refused at once (the API answers 429 with Retry-After), and while draining every new
 * request is refused (503).
 */
@ApplicationScoped
public class AdmissionControl {
    private final Semaphore slots;
    private final int maxQueued;
    private final long queueTimeoutMillis;
    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private volatile boolean draining;

    AdmissionControl(TandemConfig config) {
        TandemConfig.Serving s = config.serving();
        this.slots = new Semaphore(s.maxConcurrent(), true);
        this.maxQueued = s.maxQueued();
        this.queueTimeoutMillis = s.queueTimeout().toMillis();
    }

    /** Why a request was not admitted. */
    public static final class Rejected extends RuntimeException {
        private final boolean unavailable;

        Rejected(String message, boolean unavailable) {
            super(message);
            this.unavailable = unavailable;
        }

        /** True while draining (503); false when over capacity (429). */
        public boolean unavailable() {
            return unavailable;
        }
    }

    /** A decoding slot; close it when the generation has ended. */
    public final class Permit implements AutoCloseable {
        private boolean closed;
        private final long requestedAt;
        private final long admittedAt;

        Permit(long requestedAt) {
            this.requestedAt = requestedAt;
            this.admittedAt = System.nanoTime();
        }

        /** When the request asked for a slot (System.nanoTime). */
        public long requestedAt() {
            return requestedAt;
        }

        /** How long it waited for the slot. */
        public long queueNanos() {
            return admittedAt - requestedAt;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                running.decrementAndGet();
                slots.release();
            }
        }
    }

    /** Waits (bounded) for a slot, or throws {@link Rejected}. */
    public Permit admit() {
        long requestedAt = System.nanoTime();
        if (draining) {
            throw new Rejected("the server is shutting down", true);
        }
        if (!slots.tryAcquire()) {
            if (waiting.incrementAndGet() > maxQueued) {
                waiting.decrementAndGet();
                throw new Rejected("the server is at capacity (" + running.get() + " generating, " + maxQueued
                        + " waiting); retry later", false);
            }
            try {
                if (!slots.tryAcquire(queueTimeoutMillis, TimeUnit.MILLISECONDS)) {
                    throw new Rejected("no decoding slot became free within " + queueTimeoutMillis + " ms; retry later", false);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Rejected("interrupted while waiting for a decoding slot", true);
            } finally {
                waiting.decrementAndGet();
            }
        }
        running.incrementAndGet();
        return new Permit(requestedAt);
    }

    public int running() {
        return running.get();
    }

    public int waiting() {
        return waiting.get();
    }

    /** True when the wait queue is full: new requests would be refused. */
    public boolean saturated() {
        return waiting.get() >= maxQueued && slots.availablePermits() == 0;
    }

    public boolean draining() {
        return draining;
    }

    void onStop(@Observes ShutdownEvent event) {
        draining = true;
    }
}
