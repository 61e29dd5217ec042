package io.flinkscale.testbed;

import java.io.Serializable;

/**
 * Turns a selectivity into whole records: a filter of 0.9 lets nine records of ten through, a
 * flat map of 1.5 emits three for two, exactly, with no randomness. Each emitted copy gets its
 * own value, so that copies spread over keys.
 */
public final class Emitter implements Serializable {
  private static final long serialVersionUID = 1L;

  private final double selectivity;
  private double owed;

  public Emitter(double selectivity) {
    this.selectivity = selectivity;
  }

  /** How many records the next input produces. */
  public int next() {
    owed += selectivity;
    // The tolerance keeps 0.1 added ten times (0.9999999999999999) from
    // losing a record to rounding.
    int n = (int) (owed + 1e-9);
    owed -= n;
    return n;
  }

  /** The value of copy i of a record whose value is v (copy 0 is v itself). */
  public static long copy(long v, int i) {
    return i == 0 ? v : Mix.mix(v + 0x9E3779B97F4A7C15L * i);
  }
}
