package io.flinkscale.testbed;

import java.util.concurrent.locks.LockSupport;

/**
 * Makes each record cost a fixed time without burning a core: the time is owed per record and
 * paid by parking the task thread once a quantum has built up, so that a thread's capacity is
 * 1e9 / cost records per second, whatever the machine's core count, and Flink counts the parked
 * time as busy (it is spent inside processElement). The Flink operator's load-simulation example
 * makes per-record cost a sleep for the same reason.
 *
 * <p>Park overshoots (tens of microseconds on Linux); the overshoot is carried as credit, so over
 * many records the mean cost is exact.
 */
public final class Pacer {
  /** The least time worth parking for; below it, debt accumulates. */
  public static final long QUANTUM_NANOS = 1_000_000;

  /** Clock and sleep, so tests can run without time passing. */
  public interface Clock {
    long nanoTime();

    void park(long nanos);
  }

  public static final Clock SYSTEM =
      new Clock() {
        @Override
        public long nanoTime() {
          return System.nanoTime();
        }

        @Override
        public void park(long nanos) {
          LockSupport.parkNanos(nanos);
        }
      };

  private final Clock clock;
  private double costNanos;
  private double debt;

  public Pacer(double costNanos, Clock clock) {
    this.costNanos = costNanos;
    this.clock = clock;
  }

  public void setCost(double costNanos) {
    this.costNanos = costNanos;
  }

  public double cost() {
    return costNanos;
  }

  /** Owes one record's cost, and parks when a quantum is owed. */
  public void pay() {
    payFor(1);
  }

  /** Owes the cost of n records. */
  public void payFor(long n) {
    debt += costNanos * n;
    if (debt < QUANTUM_NANOS) {
      return;
    }
    long start = clock.nanoTime();
    clock.park((long) debt);
    debt -= clock.nanoTime() - start;
    // A long stall (GC, a descheduled thread) must not turn into a free burst
    // afterwards: carry at most one quantum of credit.
    if (debt < -QUANTUM_NANOS) {
      debt = -QUANTUM_NANOS;
    }
  }

  double debt() {
    return debt;
  }
}
