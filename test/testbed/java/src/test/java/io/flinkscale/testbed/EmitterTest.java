package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

class EmitterTest {
  static long emitted(double selectivity, int records) {
    Emitter e = new Emitter(selectivity);
    long n = 0;
    for (int i = 0; i < records; i++) {
      n += e.next();
    }
    return n;
  }

  @Test
  void emitsSelectivityTimesTheInputExactly() {
    assertEquals(900, emitted(0.9, 1000), "a filter keeps 9 of 10");
    assertEquals(1500, emitted(1.5, 1000), "a flat map emits 3 for 2");
    assertEquals(1000, emitted(1, 1000));
    assertEquals(0, emitted(0, 1000), "a sink emits nothing");
    assertEquals(970, emitted(0.97, 1000));
  }

  @Test
  void copiesGetTheirOwnValues() {
    assertEquals(42, Emitter.copy(42, 0));
    assertNotEquals(Emitter.copy(42, 1), Emitter.copy(42, 2));
  }
}
