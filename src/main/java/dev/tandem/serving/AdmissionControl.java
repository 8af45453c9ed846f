package dev.tandem.serving;

import dev.tandem.memory.ByteSize;
import dev.tandem.memory.MemoryBudget;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.spi.ObserverMethod;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Bounds the work in flight: a request is admitted when a decoding slot is free (at most
 * {@code max-concurrent} sequences decode at once) <em>and</em> its worst-case KV-cache bytes fit
 * what is left of the memory budget ({@code tandem.memory.budget}; see {@link KvDemand}). Requests
 * that cannot start at once wait in one first-in-first-out queue (at most {@code max-queued}, each at
 * most {@code queue-timeout}); a request is only admitted from the head of the queue, so a large
 * request is not starved by smaller ones behind it. Beyond the queue, or after the timeout, a request
 * is refused (429 with Retry-After); one that needs more than the whole budget is refused at once
 * (413); while draining every new request is refused (503). The refusals carry the numbers.
 *
 * <p>Created at start-up rather than on first use, so that an invalid {@code tandem.memory.budget}
 * fails start-up naming the key instead of leaving a server that starts but fails every request.
 */
@ApplicationScoped
@Startup(ObserverMethod.DEFAULT_PRIORITY - 1)  // before the models load: a bad tandem.memory.budget fails start-up at once
public class AdmissionControl {
    private final int maxConcurrent;
    private final int maxQueued;
    private final long queueTimeoutNanos;
    private final MemoryBudget budget;
    private final ReentrantLock lock = new ReentrantLock();
    /** Waiting requests, oldest first; each waits on its own condition, signalled when it is the head. */
    private final ArrayDeque<Waiter> queue = new ArrayDeque<>();
    private volatile int running;
    private volatile int waiting;
    private volatile long reserved;
    private volatile boolean draining;
    /** Set by shutdown once it stops waiting: queued requests are refused (guarded by the lock). */
    private boolean refuseWaiting;

    @Inject
    AdmissionControl(TandemConfig config) {
        this(config.serving().maxConcurrent(), config.serving().maxQueued(), config.serving().queueTimeout(),
                MemoryBudget.resolve(config.memory().budget()));
    }

    AdmissionControl(int maxConcurrent, int maxQueued, Duration queueTimeout, MemoryBudget budget) {
        this.maxConcurrent = maxConcurrent;
        this.maxQueued = maxQueued;
        this.queueTimeoutNanos = queueTimeout.toNanos();
        this.budget = budget;
    }

    /** Why a request was not admitted. */
    public static final class Rejected extends RuntimeException {
        private final int status;

        Rejected(String message, boolean unavailable) {
            this(message, unavailable ? 503 : 429);
        }

        Rejected(String message, int status) {
            super(message);
            this.status = status;
        }

        /** True while draining (503); false when over capacity (429) or over the budget (413). */
        public boolean unavailable() {
            return status == 503;
        }

        /** 503 draining, 429 at capacity (retry later), 413 larger than the whole KV budget (never fits). */
        public int status() {
            return status;
        }
    }

    /** A decoding slot and the KV bytes reserved with it; close it when the generation has ended. */
    public final class Permit implements AutoCloseable {
        private boolean closed;
        private final long requestedAt;
        private final long admittedAt;
        private final long kvBytes;

        Permit(long requestedAt, long kvBytes) {
            this.requestedAt = requestedAt;
            this.admittedAt = System.nanoTime();
            this.kvBytes = kvBytes;
        }

        /** When the request asked for a slot (System.nanoTime). */
        public long requestedAt() {
            return requestedAt;
        }

        /** How long it waited for the slot. */
        public long queueNanos() {
            return admittedAt - requestedAt;
        }

        /** KV-cache bytes reserved for this request. */
        public long kvBytes() {
            return kvBytes;
        }

        /** Releases the slot and the bytes (idempotent). */
        @Override
        public void close() {
            synchronized (this) {
                if (closed) {
                    return;
                }
                closed = true;
            }
            release(kvBytes);
        }
    }

    private record Waiter(long bytes, Condition turn) {
    }

    /** Waits (bounded) for a slot, reserving no KV bytes (tests, internal work). */
    public Permit admit() {
        return admit(KvDemand.NONE);
    }

    /** Waits (bounded) for a slot and room for {@code demand}'s KV bytes, or throws {@link Rejected}. */
    public Permit admit(KvDemand demand) {
        long requestedAt = System.nanoTime();
        long bytes = demand.bytes();
        if (draining) {
            throw new Rejected("the server is shutting down", true);
        }
        if (bytes > budget.bytes()) {
            throw new Rejected("this request needs " + bytes + " bytes (" + ByteSize.human(bytes) + ") of KV cache for "
                    + demand.description() + "; the KV-cache budget (tandem.memory.budget) is " + budget.bytes()
                    + " bytes (" + ByteSize.human(budget.bytes()) + "), so it can never be admitted: ask for fewer tokens"
                    + " (prompt + max_tokens)", 413);
        }
        lock.lock();
        try {
            if (queue.isEmpty() && fits(bytes)) {
                return take(requestedAt, bytes);
            }
            if (queue.size() >= maxQueued) {
                throw new Rejected("the server is at capacity (" + running + " generating, " + queue.size() + " waiting"
                        + kvState(bytes, demand) + "); retry later", false);
            }
            Waiter me = new Waiter(bytes, lock.newCondition());
            queue.addLast(me);
            waiting = queue.size();
            boolean admitted = false;
            try {
                long left = queueTimeoutNanos;
                while (queue.peekFirst() != me || !fits(bytes)) {
                    if (refuseWaiting) {
                        throw new Rejected("the server is shutting down", true);
                    }
                    if (left <= 0) {
                        throw new Rejected("not admitted within " + TimeUnit.NANOSECONDS.toMillis(queueTimeoutNanos)
                                + " ms (" + running + " of " + maxConcurrent + " decoding slots busy, "
                                + (queue.size() - 1) + " others waiting" + kvState(bytes, demand) + "); retry later", false);
                    }
                    left = me.turn().awaitNanos(left);
                }
                admitted = true;
                return take(requestedAt, bytes);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Rejected("interrupted while waiting for a decoding slot", true);
            } finally {
                queue.remove(me);
                waiting = queue.size();
                if (!admitted || fitsHead()) {
                    signalHead();  // the next in line may fit now (it could not start while this one was ahead)
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private String kvState(long bytes, KvDemand demand) {
        if (!budget.limited()) {
            return "";
        }
        return "; KV cache: " + reserved + " of " + budget.bytes() + " bytes reserved (" + ByteSize.human(reserved) + " of "
                + ByteSize.human(budget.bytes()) + "), this request needs " + bytes + " bytes (" + ByteSize.human(bytes)
                + ") for " + demand.description();
    }

    private boolean fits(long bytes) {
        return running < maxConcurrent && bytes <= budget.bytes() - reserved;
    }

    private boolean fitsHead() {
        Waiter head = queue.peekFirst();
        return head != null && fits(head.bytes());
    }

    private Permit take(long requestedAt, long bytes) {
        running++;
        reserved += bytes;
        return new Permit(requestedAt, bytes);
    }

    private void signalHead() {
        Waiter head = queue.peekFirst();
        if (head != null) {
            head.turn().signal();
        }
    }

    private void release(long bytes) {
        lock.lock();
        try {
            running--;
            reserved -= bytes;
            signalHead();
        } finally {
            lock.unlock();
        }
    }

    public int running() {
        return running;
    }

    public int waiting() {
        return waiting;
    }

    /** KV-cache bytes reserved by running requests. */
    public long reservedKvBytes() {
        return reserved;
    }

    /** The KV-cache budget. */
    public MemoryBudget budget() {
        return budget;
    }

    /** True when the wait queue is full: new requests would be refused. */
    public boolean saturated() {
        int w = waiting;
        return w >= maxQueued && (running >= maxConcurrent || w > 0);
    }

    public boolean draining() {
        return draining;
    }

    /**
     * From now on every new request is refused with 503 (and readiness is DOWN); requests already
     * decoding or waiting in the queue go on. Called at once on SIGTERM ({@link GracefulShutdown}).
     */
    public void startDraining() {
        draining = true;
    }

    /** True when nothing decodes and nothing waits (read together, under the lock). */
    public boolean idle() {
        lock.lock();
        try {
            return running == 0 && queue.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Shutdown has stopped waiting: requests still in the queue are refused (503) instead of starting
     * on models about to close.
     */
    void refuseWaiting() {
        lock.lock();
        try {
            draining = true;
            refuseWaiting = true;
            queue.forEach(w -> w.turn().signal());
        } finally {
            lock.unlock();
        }
    }
}
