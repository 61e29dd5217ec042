package io.flinkscale.testbed;

/** SplitMix64's finalizer: a fast, well-spread 64-bit hash. */
public final class Mix {
  private Mix() {}

  public static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** A double uniform in [0, 1) from a 64-bit value. */
  public static double unit(long z) {
    return (mix(z) >>> 11) * 0x1.0p-53;
  }
}
