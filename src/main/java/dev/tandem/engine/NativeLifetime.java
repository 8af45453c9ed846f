package dev.tandem.engine;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Keeps a model's native resources alive while calls are inside them. Every call into the runtime
 * runs between {@link #enter()} and {@link #exit()}; {@link #close} waits for the calls inside to
 * leave, refuses new ones (an {@link EngineException} saying the model is closed) and only then
 * releases. Freeing a session while another thread is inside {@code run} is a native crash, and at
 * shutdown (or on any other path that closes a model while requests are still decoding) that
 * order of events is possible; with this it is an exception in the request instead.
 *
 * <p>Many calls may be inside at once (one per sequence); the cost is an uncontended read lock per
 * forward pass.
 */
public final class NativeLifetime {
    private final String what;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile boolean closed;

    /** @param what names the model in the exception a call after close gets */
    public NativeLifetime(String what) {
        this.what = what;
    }

    /** Before a call into the runtime; pair with {@link #exit()} in a finally block. */
    public void enter() {
        lock.readLock().lock();
        if (closed) {
            lock.readLock().unlock();
            throw new EngineException(what + " is closed (the server is shutting down)");
        }
    }

    /** After the call. */
    public void exit() {
        lock.readLock().unlock();
    }

    /** Waits for the calls inside to end, then runs {@code release} once; later calls do nothing. */
    public void close(Runnable release) {
        lock.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            release.run();
        } finally {
            lock.writeLock().unlock();
        }
    }

    public boolean closed() {
        return closed;
    }
}
