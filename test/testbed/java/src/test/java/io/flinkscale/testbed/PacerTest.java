package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PacerTest {
  /** A clock that advances by what is parked, plus a fixed overshoot per park. */
  static final class FakeClock implements Pacer.Clock {
    long now;
    long parks;
    long parked;
    final long overshoot;

    FakeClock(long overshoot) {
      this.overshoot = overshoot;
    }

    @Override
    public long nanoTime() {
      return now;
    }

    @Override
    public void park(long nanos) {
      parks++;
      parked += nanos;
      now += nanos + overshoot;
    }
  }

  @Test
  void parksOncePerQuantumAndChargesTheExactMean() {
    // 50 µs a record: 20 records make the 1 ms quantum, so 10,000 records
    // park 500 times and take 10,000 × 50 µs = 500 ms.
    FakeClock c = new FakeClock(0);
    Pacer p = new Pacer(50_000, c);
    for (int i = 0; i < 10_000; i++) {
      p.pay();
    }
    assertEquals(500, c.parks);
    assertEquals(500_000_000L, c.now);
  }

  @Test
  void overshootIsCarriedAsCredit() {
    // Each park overshoots by 60 µs. The overshoot is credited, so the total
    // stays within one quantum plus one overshoot of 10,000 × 50 µs.
    FakeClock c = new FakeClock(60_000);
    Pacer p = new Pacer(50_000, c);
    for (int i = 0; i < 10_000; i++) {
      p.pay();
    }
    long want = 500_000_000L;
    assertEquals(want, c.now, Pacer.QUANTUM_NANOS + 60_000);
  }

  @Test
  void aLongStallIsNotRepaidAsABurst() {
    // A 1 s stall during a park would otherwise leave ~1 s of credit and let
    // 20,000 records through for free.
    Pacer.Clock stall =
        new Pacer.Clock() {
          long now;
          boolean stalled;

          @Override
          public long nanoTime() {
            return now;
          }

          @Override
          public void park(long nanos) {
            now += nanos + (stalled ? 0 : 1_000_000_000L);
            stalled = true;
          }
        };
    Pacer p = new Pacer(50_000, stall);
    for (int i = 0; i < 20; i++) {
      p.pay();
    }
    assertEquals(-Pacer.QUANTUM_NANOS, p.debt(), 1e-9);
  }

  @Test
  void zeroCostNeverParks() {
    FakeClock c = new FakeClock(0);
    Pacer p = new Pacer(0, c);
    for (int i = 0; i < 1000; i++) {
      p.pay();
    }
    assertEquals(0, c.parks);
  }
}
