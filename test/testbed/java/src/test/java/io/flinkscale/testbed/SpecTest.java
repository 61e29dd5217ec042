package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
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

  /** GOOD with a sink: the keyed vertex keeps every record, as the audit needs. */
  static final String AUDITABLE =
      GOOD.replace("vertex.1.selectivity=0.5", "vertex.1.selectivity=1") + "\nsink.topic=audit";

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

  @Test
  void parsesTheSink() throws Exception {
    Spec s = Spec.parse(props(AUDITABLE));
    assertEquals(new Spec.Sink("audit", Spec.Guarantee.EXACTLY_ONCE, 300_000), s.sink);
    assertEquals("flinkscale-orders", s.transactionalIdPrefix());
    Spec.Vertex keyed = s.vertices.get(1);
    Spec.Vertex last = s.vertices.get(2);
    assertFalse(s.isTerminal(keyed));
    assertTrue(s.isTerminal(last));
    // "Sink: out" has selectivity 0; followed by the sink, it forwards every record once.
    assertEquals(0, last.selectivity());
    assertEquals(1, s.emitsPerRecord(last));
    assertEquals(1, s.emitsPerRecord(keyed));

    Spec alo =
        Spec.parse(props(AUDITABLE + "\nsink.guarantee=at-least-once"));
    assertEquals(Spec.Guarantee.AT_LEAST_ONCE, alo.sink.guarantee());
    Spec eo = Spec.parse(props(AUDITABLE + "\nsink.transactionTimeoutMs=60000"));
    assertEquals(60_000, eo.sink.transactionTimeoutMs());

    Spec none = Spec.parse(props(GOOD));
    assertNull(none.sink);
    assertEquals(0, none.emitsPerRecord(none.vertices.get(2)), "no sink: the selectivity holds");
  }

  @Test
  void refusesABadSinkNamingWhy() throws Exception {
    String fourth =
        String.join(
            "\n",
            "vertex.3.name=Sink: side",
            "vertex.3.parallelism=1",
            "vertex.3.maxParallelism=128",
            "vertex.3.costNanos=0",
            "vertex.3.selectivity=0",
            "vertex.3.inputs=0:REBALANCE");
    String[][] cases = {
      {AUDITABLE + "\nsink.guarantee=twice", "sink.guarantee: \"twice\" is not exactly-once or at-least-once"},
      {
        AUDITABLE + "\nsink.transactionTimeoutMs=900001",
        "sink.transactionTimeoutMs: 900001 exceeds the broker's transaction.max.timeout.ms (900000)"
      },
      {
        // checkpoint.interval.ms is 5000 in GOOD.
        AUDITABLE + "\nsink.transactionTimeoutMs=5000",
        "sink.transactionTimeoutMs: 5000 does not exceed checkpoint.interval.ms (5000)"
      },
      {
        AUDITABLE + "\nsink.guarantee=at-least-once\nsink.transactionTimeoutMs=60000",
        "sink.transactionTimeoutMs: only an exactly-once sink has transactions"
      },
      {AUDITABLE.replace("sink.topic=audit", "sink.topic=orders"), "sink.topic: \"orders\" is read by a source"},
      {
        AUDITABLE.replace("sink.topic=audit", "sink.guarantee=at-least-once"),
        "sink.topic: required with sink.guarantee"
      },
      {
        GOOD + "\nsink.topic=audit",
        "vertex.1.selectivity: 0.5 on \"KeyedProcess: dedupe\", which has consumers"
      },
      {
        AUDITABLE.replace("vertex.count=3", "vertex.count=4") + "\n" + fourth,
        "vertex.0.name: \"Source: orders -> Map\" has 2 outgoing edges (to vertices [1, 3])"
      },
      {
        AUDITABLE.replace("vertex.2.inputs=1:rebalance", "vertex.2.inputs=1:broadcast"),
        "vertex.2.inputs: BROADCAST from \"KeyedProcess: dedupe\" copies each record to every subtask"
      },
    };
    assertAll(
        java.util.Arrays.stream(cases)
            .map(
                c ->
                    () -> {
                      String m =
                          assertThrows(IllegalArgumentException.class, () -> Spec.parse(props(c[0])))
                              .getMessage();
                      assertTrue(m.contains(c[1]), "want \"" + c[1] + "\" in:\n" + m);
                    }));
    // Without a sink, the same graphs are fine: nothing is audited.
    Spec.parse(props(GOOD.replace("vertex.count=3", "vertex.count=4") + "\n" + fourth));
    Spec.parse(props(GOOD.replace("vertex.2.inputs=1:rebalance", "vertex.2.inputs=1:broadcast")));
  }
}
