package dev.tandem.serving;

import io.quarkus.runtime.LaunchMode;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.ShutdownDelayInitiatedEvent;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;
import sun.misc.Signal;

/**
 * Shutdown as Kubernetes does it (SIGTERM at every rolling update), in this order:
 * <ol>
 *   <li>at once: admission drains (new generation requests get 503) and readiness is DOWN;</li>
 *   <li>generations already decoding or queued run to their end, streams included
 *       ({@code quarkus.shutdown.delay}, then Quarkus waits for in-flight HTTP requests up to
 *       {@code quarkus.shutdown.timeout});</li>
 *   <li>then, with nothing decoding, the models are closed; only after that does the JVM exit.</li>
 * </ol>
 *
 * <p>Why the signals are handled here rather than left to the JVM: on SIGTERM the JVM starts every
 * shutdown hook at once, and ONNX Runtime's Java binding registers one that frees its environment
 * (and the global thread pool every session runs on) while Quarkus, in another hook, is still
 * draining: sessions still running crash the process (SIGSEGV in {@code OrtSession.run}). So in the
 * packaged application TERM, INT and HUP start Quarkus' own shutdown ({@link Quarkus#asyncExit}) on
 * the main thread, which ends with the models closed by {@link #onShutdown} before {@code
 * System.exit} runs the hooks. A second signal stops the remaining generations at their next step.
 * Dev mode and tests keep the JVM's handling ({@code tandem.shutdown.handle-signals=false} does too).
 *
 * <p>If shutdown comes another way (a {@code System.exit}, the delay event), admission still drains
 * first, and the engines refuse, rather than crash on, a forward pass after their close.
 */
@ApplicationScoped
public class GracefulShutdown {
    private static final Logger LOG = Logger.getLogger(GracefulShutdown.class);
    private static final List<String> SIGNALS = List.of("TERM", "INT", "HUP");

    private final AdmissionControl admission;
    private final GenerationService generation;
    private final ModelRegistry registry;
    private final boolean handleSignals;
    private final Duration delay;
    private final Duration timeout;
    private final AtomicInteger signals = new AtomicInteger();
    /** System.nanoTime() when draining began; 0 before. */
    private volatile long drainStarted;

    GracefulShutdown(AdmissionControl admission, GenerationService generation, ModelRegistry registry,
                     @ConfigProperty(name = "tandem.shutdown.handle-signals", defaultValue = "true") boolean handleSignals,
                     @ConfigProperty(name = "quarkus.shutdown.delay", defaultValue = "0s") Duration delay,
                     @ConfigProperty(name = "quarkus.shutdown.timeout", defaultValue = "30s") Duration timeout) {
        this.admission = admission;
        this.generation = generation;
        this.registry = registry;
        this.handleSignals = handleSignals;
        this.delay = delay;
        this.timeout = timeout;
    }

    /** Before the models load (a signal during loading must not race ONNX Runtime's hook either). */
    void onStart(@Observes @Priority(1) StartupEvent event) {
        if (!handleSignals || LaunchMode.current() != LaunchMode.NORMAL) {
            return;
        }
        // The JVM runs a handler on a new thread whose context class loader is the system one, which
        // cannot see the application's classes (a bean created lazily then fails): give it Quarkus' loader.
        ClassLoader app = Thread.currentThread().getContextClassLoader();
        for (String name : SIGNALS) {
            try {
                Signal.handle(new Signal(name), signal -> {
                    Thread.currentThread().setContextClassLoader(app);
                    onSignal(signal);
                });
            } catch (IllegalArgumentException e) {  // reserved or unknown on this platform
                LOG.debugf("SIG%s not handled: %s", name, e.getMessage());
            }
        }
    }

    private void onSignal(Signal signal) {
        int n = signals.incrementAndGet();
        if (n > 1) {
            LOG.warnf("SIG%s again: stopping the %d running generation(s) at their next step", signal.getName(),
                    admission.running());
            generation.abandonAll();
            return;
        }
        drain();
        LOG.infof("SIG%s: draining (readiness DOWN, new requests get 503); %d generation(s) decoding and %d queued will"
                + " finish first (at most %s)", signal.getName(), admission.running(), admission.waiting(), timeout);
        Quarkus.asyncExit(0);
    }

    /** Quarkus' shutdown delay began (readiness DOWN): refuse new work from now on. */
    void onShutdownDelay(@Observes ShutdownDelayInitiatedEvent event) {
        drain();
    }

    private synchronized void drain() {
        if (drainStarted == 0) {
            drainStarted = System.nanoTime();
            admission.startDraining();
        }
    }

    /**
     * After Quarkus has drained the HTTP requests: make sure no generation still runs (one may outlive
     * its HTTP request only if the drain timed out), then close the models.
     */
    void onShutdown(@Observes @Priority(1) ShutdownEvent event) {
        drain();
        long deadline = drainStarted + delay.toNanos() + timeout.toNanos();
        boolean idle = awaitIdle(deadline);
        if (!idle) {
            LOG.warnf("shutdown: %d generation(s) still running and %d queued after %s; stopping them at their next step",
                    admission.running(), admission.waiting(), timeout);
            admission.refuseWaiting();
            generation.abandonAll();
            idle = awaitIdle(System.nanoTime() + TimeUnit.SECONDS.toNanos(5));
            if (!idle) {
                LOG.warnf("shutdown: %d generation(s) did not stop; closing the engines, leaving the tokenizers to the"
                        + " process exit", admission.running());
            }
        }
        registry.close(idle);
        LOG.infof("shutdown: models closed %d ms after draining began", (System.nanoTime() - drainStarted) / 1_000_000);
    }

    private boolean awaitIdle(long deadlineNanos) {
        while (!admission.idle()) {
            if (System.nanoTime() >= deadlineNanos) {
                return false;
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return admission.idle();
            }
        }
        return true;
    }
}
