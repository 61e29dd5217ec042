package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.junit.jupiter.api.Test;

class KeyPickerTest {
  @Test
  void eachRepresentativeLandsInItsKeyGroup() {
    for (int maxP : new int[] {1, 7, 128, 1024}) {
      int[] keys = KeyPicker.representatives(maxP);
      for (int g = 0; g < maxP; g++) {
        assertEquals(g, KeyGroupRangeAssignment.assignToKeyGroup(keys[g], maxP), "maxP " + maxP + " group " + g);
      }
    }
  }

  @Test
  void keyGroupsReceiveTheirWeights() throws Exception {
    // Weights 1:1:2:4 over 4 key groups: shares 1/8, 1/8, 2/8, 4/8 of 80,000
    // records = 10,000, 10,000, 20,000, 40,000, each within 2 % (binomial
    // sd ≤ √(80,000 × ½ × ½) ≈ 141, so 2 % is over 5 sd).
    KeyPicker k = new KeyPicker(4, new double[] {1, 1, 2, 4}, 7);
    int[] keys = KeyPicker.representatives(4);
    long[] count = new long[4];
    for (long v = 0; v < 80_000; v++) {
      int key = k.getKey(v);
      int g = KeyGroupRangeAssignment.assignToKeyGroup(key, 4);
      assertEquals(keys[g], key);
      count[g]++;
    }
    long[] want = {10_000, 10_000, 20_000, 40_000};
    for (int g = 0; g < 4; g++) {
      assertEquals(want[g], count[g], want[g] * 0.02, "group " + g);
    }
  }

  @Test
  void noWeightsMeansEqualShares() {
    KeyPicker k = new KeyPicker(128, new double[0], 1);
    long[] count = new long[128];
    for (long v = 0; v < 128_000; v++) {
      count[k.group(v)]++;
    }
    for (int g = 0; g < 128; g++) {
      // 1,000 each; sd ≈ 31.5, so ±15 % is over 4.5 sd.
      assertEquals(1000, count[g], 150, "group " + g);
    }
  }

  @Test
  void refusesMismatchedWeights() {
    assertThrows(IllegalArgumentException.class, () -> new KeyPicker(4, new double[] {1, 2}, 0));
    assertThrows(IllegalArgumentException.class, () -> new KeyPicker(2, new double[] {0, 0}, 0));
  }
}
