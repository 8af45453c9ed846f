package dev.tandem.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.memory.MemoryBudget;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Admission by decoding slots and KV-cache bytes: never over the budget, no deadlock, first come first served. */
class AdmissionControlTest {
    static final long BUDGET = 1000;
    /** Waiting requests block their threads: not the common pool (one thread on a two-core machine). */
    static final ExecutorService EXEC = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "admission-test");
        t.setDaemon(true);
        return t;
    });

    static AdmissionControl control(int slots, int queued, Duration timeout) {
        return new AdmissionControl(slots, queued, timeout, new MemoryBudget(BUDGET, "test"));
    }

    static KvDemand demand(long bytes) {
        return new KvDemand(bytes, bytes + "-byte test request");
    }

    @Test
    void theBudgetIsNeverExceededUnderConcurrentLoad() throws Exception {
        AdmissionControl ac = control(8, 10_000, Duration.ofSeconds(60));
        AtomicLong inUse = new AtomicLong();
        AtomicLong highWater = new AtomicLong();
        AtomicInteger decoding = new AtomicInteger();
        AtomicInteger mostDecoding = new AtomicInteger();
        AtomicInteger admitted = new AtomicInteger();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        int threads = 32;
        int perThread = 300;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CountDownLatch start = new CountDownLatch(1);
        for (int t = 0; t < threads; t++) {
            long seed = t;
            pool.submit(() -> {
                Random rnd = new Random(seed);
                try {
                    start.await();
                    for (int i = 0; i < perThread; i++) {
                        long bytes = rnd.nextInt(10) == 0 ? BUDGET : 1 + rnd.nextInt((int) BUDGET / 2);  // some take it all
                        try (AdmissionControl.Permit p = ac.admit(demand(bytes))) {
                            long now = inUse.addAndGet(bytes);
                            highWater.accumulateAndGet(now, Math::max);
                            mostDecoding.accumulateAndGet(decoding.incrementAndGet(), Math::max);
                            admitted.incrementAndGet();
                            if (rnd.nextBoolean()) {
                                Thread.sleep(0, rnd.nextInt(200_000));
                            } else {
                                Thread.yield();
                            }
                            decoding.decrementAndGet();
                            inUse.addAndGet(-bytes);
                        }
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            });
        }
        start.countDown();
        pool.shutdown();
        assertTrue(pool.awaitTermination(120, TimeUnit.SECONDS), "deadlock: requests still waiting after 120 s, "
                + ac.waiting() + " waiting, " + ac.running() + " running, " + ac.reservedKvBytes() + " bytes reserved");
        assertTrue(failures.isEmpty(), () -> "failures: " + failures);
        assertEquals(threads * perThread, admitted.get());
        assertTrue(highWater.get() <= BUDGET, "KV bytes in use peaked at " + highWater.get() + " > " + BUDGET);
        assertTrue(highWater.get() > BUDGET / 2, "the load never came near the budget: " + highWater.get());
        assertTrue(mostDecoding.get() <= 8, "more than 8 decoding at once: " + mostDecoding.get());
        assertEquals(0, ac.reservedKvBytes());
        assertEquals(0, ac.running());
        assertEquals(0, ac.waiting());
    }

    @Test
    void aRequestLargerThanTheWholeBudgetIsRefusedAtOnceWithTheNumbers() {
        AdmissionControl ac = control(4, 4, Duration.ofSeconds(30));
        long t0 = System.nanoTime();
        AdmissionControl.Rejected r = assertThrows(AdmissionControl.Rejected.class, () -> ac.admit(demand(1001)));
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(1));
        assertEquals(413, r.status());
        assertFalse(r.unavailable());
        assertTrue(r.getMessage().contains("needs 1001 bytes") && r.getMessage().contains("1001-byte test request")
                && r.getMessage().contains("budget (tandem.memory.budget) is 1000 bytes"), r.getMessage());
        assertEquals(0, ac.waiting());
        ac.admit(demand(1000)).close();  // the whole budget is fine
    }

    @Test
    void waitingRequestsAreAdmittedWhenMemoryIsReleased() throws Exception {
        AdmissionControl ac = control(4, 4, Duration.ofSeconds(30));
        AdmissionControl.Permit held = ac.admit(demand(800));
        CompletableFuture<AdmissionControl.Permit> waiter = CompletableFuture.supplyAsync(() -> ac.admit(demand(500)), EXEC);
        awaitWaiting(ac, 1);
        assertFalse(waiter.isDone(), "500 bytes do not fit beside 800");
        assertEquals(800, ac.reservedKvBytes());
        held.close();
        AdmissionControl.Permit p = waiter.get(5, TimeUnit.SECONDS);
        assertEquals(500, ac.reservedKvBytes());
        p.close();
        p.close();  // idempotent
        assertEquals(0, ac.reservedKvBytes());
        assertEquals(0, ac.running());
    }

    @Test
    void firstComeFirstServedSmallRequestsDoNotOvertakeALargeOne() throws Exception {
        AdmissionControl ac = control(4, 4, Duration.ofSeconds(30));
        AdmissionControl.Permit held = ac.admit(demand(500));
        CompletableFuture<AdmissionControl.Permit> large = CompletableFuture.supplyAsync(() -> ac.admit(demand(600)), EXEC);
        awaitWaiting(ac, 1);
        CompletableFuture<AdmissionControl.Permit> small = CompletableFuture.supplyAsync(() -> ac.admit(demand(100)), EXEC);
        awaitWaiting(ac, 2);
        Thread.sleep(200);
        assertFalse(small.isDone(), "100 bytes would fit beside 500, but the 600-byte request came first");
        held.close();
        AdmissionControl.Permit l = large.get(5, TimeUnit.SECONDS);
        AdmissionControl.Permit s = small.get(5, TimeUnit.SECONDS);
        // admission times are taken under the lock, in admission order
        assertTrue(l.requestedAt() + l.queueNanos() <= s.requestedAt() + s.queueNanos(), "the small request went first");
        assertEquals(700, ac.reservedKvBytes());
        l.close();
        s.close();
    }

    @Test
    void aTimedOutHeadLetsTheNextInLineIn() throws Exception {
        AdmissionControl ac = control(4, 4, Duration.ofMillis(600));
        AdmissionControl.Permit held = ac.admit(demand(500));
        CompletableFuture<Integer> large = CompletableFuture.supplyAsync(() -> {
            try {
                ac.admit(demand(600)).close();
                return 200;
            } catch (AdmissionControl.Rejected e) {
                return e.status();
            }
        }, EXEC);
        awaitWaiting(ac, 1);
        Thread.sleep(300);
        CompletableFuture<AdmissionControl.Permit> small = CompletableFuture.supplyAsync(() -> ac.admit(demand(100)), EXEC);
        assertEquals(429, large.get(5, TimeUnit.SECONDS));  // waited its 600 ms
        AdmissionControl.Permit s = small.get(250, TimeUnit.MILLISECONDS);  // admitted as soon as it was first in line
        s.close();
        held.close();
        assertEquals(0, ac.reservedKvBytes());
    }

    @Test
    void refusalsAfterWaitingAndFromAFullQueueCarryTheNumbers() throws Exception {
        AdmissionControl ac = control(4, 1, Duration.ofMillis(300));
        AdmissionControl.Permit held = ac.admit(demand(900));
        CompletableFuture<AdmissionControl.Rejected> waited = CompletableFuture.supplyAsync(() ->
                assertThrows(AdmissionControl.Rejected.class, () -> ac.admit(demand(200))), EXEC);
        awaitWaiting(ac, 1);
        AdmissionControl.Rejected full = assertThrows(AdmissionControl.Rejected.class, () -> ac.admit(demand(50)));
        assertEquals(429, full.status());
        assertTrue(full.getMessage().contains("at capacity") && full.getMessage().contains("900 of 1000 bytes reserved")
                && full.getMessage().contains("needs 50 bytes"), full.getMessage());
        AdmissionControl.Rejected r = waited.get(5, TimeUnit.SECONDS);
        assertEquals(429, r.status());
        assertTrue(r.getMessage().contains("not admitted within 300 ms") && r.getMessage().contains("900 of 1000 bytes reserved")
                && r.getMessage().contains("needs 200 bytes (200 B) for 200-byte test request"), r.getMessage());
        held.close();
    }

    @Test
    void slotsStillBoundRequestsThatNeedNoMemory() throws Exception {
        AdmissionControl ac = control(2, 8, Duration.ofSeconds(30));
        List<AdmissionControl.Permit> held = new ArrayList<>(List.of(ac.admit(), ac.admit()));
        CompletableFuture<AdmissionControl.Permit> third = CompletableFuture.supplyAsync(ac::admit, EXEC);
        awaitWaiting(ac, 1);
        assertFalse(ac.saturated());
        held.removeFirst().close();
        third.get(5, TimeUnit.SECONDS).close();
        held.forEach(AdmissionControl.Permit::close);
        assertEquals(0, ac.running());
    }

    static void awaitWaiting(AdmissionControl ac, int n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (ac.waiting() < n) {
            assertTrue(System.nanoTime() < deadline, "never " + n + " waiting");
            Thread.sleep(2);
        }
    }

    /** Draining refuses new requests at once; once shutdown stops waiting, queued ones are refused too. */
    @Test
    void drainingRefusesNewRequestsAndShutdownRefusesTheQueue() throws Exception {
        AdmissionControl ac = new AdmissionControl(1, 4, Duration.ofSeconds(30), new MemoryBudget(BUDGET, "test"));
        AdmissionControl.Permit running = ac.admit();
        CompletableFuture<Integer> queued = CompletableFuture.supplyAsync(() -> {
            try (AdmissionControl.Permit p = ac.admit()) {
                return 200;
            } catch (AdmissionControl.Rejected r) {
                return r.status();
            }
        });
        while (ac.waiting() == 0) {
            Thread.sleep(1);
        }
        ac.startDraining();
        assertEquals(503, assertThrows(AdmissionControl.Rejected.class, ac::admit).status());
        assertFalse(ac.idle());
        assertFalse(queued.isDone(), "a request queued before the drain keeps its place");
        ac.refuseWaiting();
        assertEquals(503, queued.get(5, TimeUnit.SECONDS));
        assertFalse(ac.idle(), "one still running");
        running.close();
        assertTrue(ac.idle());
    }
}
