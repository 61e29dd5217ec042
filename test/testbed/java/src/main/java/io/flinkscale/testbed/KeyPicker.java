package io.flinkscale.testbed;

import java.io.Serializable;
import java.util.Arrays;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

/**
 * The key of a record on a HASH edge, chosen so that key group g receives the share weights[g] of
 * the records: the simulator's key skew, realised exactly. Each key group is represented by one
 * Integer key that Flink's own assignment (murmur hash of hashCode, modulo max parallelism) puts
 * in that group; a record's value picks the group through the cumulative weights.
 */
public final class KeyPicker implements KeySelector<Long, Integer>, Serializable {
  private static final long serialVersionUID = 1L;

  private final int maxParallelism;
  private final long salt;
  private final double[] cumulative;
  private transient int[] keys;

  /** weights: one per key group (empty: equal shares); salt decorrelates two vertices' keys. */
  public KeyPicker(int maxParallelism, double[] weights, long salt) {
    if (maxParallelism < 1) {
      throw new IllegalArgumentException("maxParallelism " + maxParallelism + " < 1");
    }
    if (weights.length != 0 && weights.length != maxParallelism) {
      throw new IllegalArgumentException(
          weights.length + " key-group weights for " + maxParallelism + " key groups");
    }
    this.maxParallelism = maxParallelism;
    this.salt = salt;
    this.cumulative = new double[maxParallelism];
    double total = 0;
    for (int g = 0; g < maxParallelism; g++) {
      total += weights.length == 0 ? 1 : weights[g];
      cumulative[g] = total;
    }
    if (!(total > 0)) {
      throw new IllegalArgumentException("key-group weights sum to " + total);
    }
    for (int g = 0; g < maxParallelism; g++) {
      cumulative[g] /= total;
    }
  }

  /** The key group a record value is sent to. */
  public int group(long value) {
    double u = Mix.unit(value ^ salt);
    int i = Arrays.binarySearch(cumulative, u);
    int g = i >= 0 ? i + 1 : -i - 1;
    // u lies in [0, 1) and the last entry is 1 (up to rounding): clamp for the rounding.
    return Math.min(g, maxParallelism - 1);
  }

  @Override
  public Integer getKey(Long value) {
    if (keys == null) {
      keys = representatives(maxParallelism);
    }
    return keys[group(value)];
  }

  /** For each key group, the smallest non-negative int that Flink assigns to it. */
  static int[] representatives(int maxParallelism) {
    int[] keys = new int[maxParallelism];
    Arrays.fill(keys, -1);
    int found = 0;
    for (int k = 0; found < maxParallelism; k++) {
      int g = KeyGroupRangeAssignment.assignToKeyGroup(k, maxParallelism);
      if (keys[g] < 0) {
        keys[g] = k;
        found++;
      }
    }
    return keys;
  }
}
