package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringReader;
import java.util.Properties;
import org.junit.jupiter.api.Test;

class SpecTest {
  static final String GOOD =
      String.join(
          "\n",
          "job.name=orders",
          "kafka.bootstrap=127.0.0.1:9092",
          "checkpoint.interval.ms=5000",
          "vertex.count=3",
          "vertex.0.name=Source: orders -> Map",
          "vertex.0.parallelism=2",
          "vertex.0.maxParallelism=128",
          "vertex.0.costNanos=100000",
          "vertex.0.selectivity=1",
          "vertex.0.topics=orders",
          "vertex.1.name=KeyedProcess: dedupe",
          "vertex.1.parallelism=3",
          "vertex.1.maxParallelism=4",
          "vertex.1.costNanos=200000",
          "vertex.1.selectivity=0.5",
          "vertex.1.inputs=0:HASH",
          "vertex.1.keyGroupWeights=1,1,1,5",
          "vertex.1.stateBytesPerKeyGroup=1024",
          "vertex.1.usl.sigma=0.1",
          "vertex.2.name=Sink: out",
          "vertex.2.parallelism=1",
          "vertex.2.maxParallelism=128",
          "vertex.2.costNanos=0",
          "vertex.2.selectivity=0",
          "vertex.2.inputs=1:rebalance",
          "vertex.2.slotSharingGroup=sinks");

  static Properties props(String s) throws Exception {
    Properties p = new Properties();
    p.load(new StringReader(s));
    return p;
  }

  @Test
  void parsesAGoodSpec() throws Exception {
    Spec s = Spec.parse(props(GOOD));
    assertEquals("orders", s.jobName);
    assertEquals("orders", s.group, "the group defaults to the job name");
    assertEquals(5000, s.checkpointIntervalMs);
    assertEquals(600_000, s.checkpointTimeoutMs);
    assertEquals(3, s.vertices.size());
    Spec.Vertex src = s.vertices.get(0);
    assertTrue(src.isSource());
    Spec.Vertex keyed = s.vertices.get(1);
    assertTrue(keyed.isKeyed());
    assertEquals(4, keyed.keyGroupWeights().length);
    // USL: cost × (1 + σ(n−1) + κn(n−1)) = 200 µs × (1 + 0.1 × 2) at n = 3.
    assertEquals(240_000, keyed.costAt(3), 1e-6);
    Spec.Vertex sink = s.vertices.get(2);
    assertEquals(Spec.Ship.REBALANCE, sink.inputs().get(0).ship());
    assertEquals("sinks", sink.slotSharingGroup());
  }

  @Test
  void reportsEveryProblemWithItsKey() throws Exception {
    String bad =
        GOOD.replace("vertex.1.inputs=0:HASH", "vertex.1.inputs=2:HASH")
            .replace("vertex.0.parallelism=2", "vertex.0.parallelism=two")
            .replace("vertex.1.keyGroupWeights=1,1,1,5", "vertex.1.keyGroupWeights=1,1")
            + "\nvertex.0.capcity=3\n";
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Spec.parse(props(bad)));
    String m = e.getMessage();
    assertTrue(m.contains("vertex.0.parallelism: \"two\" is not an integer"), m);
    assertTrue(m.contains("vertex.1.inputs: input 2 is not an earlier vertex"), m);
    assertTrue(m.contains("vertex.1.keyGroupWeights: has 2 weights for 4 key groups"), m);
    assertTrue(m.contains("vertex.0.capcity: unknown key"), m);
  }

  @Test
  void refusesWhatTheTestbedCannotRealise() throws Exception {
    String mixed =
        GOOD.replace("vertex.2.inputs=1:rebalance", "vertex.2.inputs=0:HASH,1:REBALANCE")
            .replace("vertex.0.name=Source: orders -> Map", "vertex.0.name=orders");
    String m = assertThrows(IllegalArgumentException.class, () -> Spec.parse(props(mixed))).getMessage();
    assertTrue(m.contains("mixes HASH with other ship strategies"), m);
    assertTrue(m.contains("starts with \"Source: \""), m);
  }

  @Test
  void aConsumedVertexMustEmit() throws Exception {
    String m =
        assertThrows(
                IllegalArgumentException.class,
                () -> Spec.parse(props(GOOD.replace("vertex.1.selectivity=0.5", "vertex.1.selectivity=0"))))
            .getMessage();
    assertTrue(m.contains("vertex.1.selectivity: 0, but vertex 2 consumes it"), m);
  }
}
