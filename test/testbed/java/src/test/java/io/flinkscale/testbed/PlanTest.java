package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Plan prints the job vertices a real cluster runs, before any cluster exists. */
class PlanTest {
  /** scenarios/saturate-step.yaml as WorkloadSpec writes it (the numbers do not matter here). */
  static final String SATURATE_STEP =
      String.join(
          "\n",
          "job.name=saturate-step",
          "kafka.bootstrap=127.0.0.1:9092",
          "vertex.count=3",
          "vertex.0.name=Source: events -> Map",
          "vertex.0.parallelism=2",
          "vertex.0.maxParallelism=128",
          "vertex.0.costNanos=1000000",
          "vertex.0.selectivity=1",
          "vertex.0.topics=events",
          "vertex.1.name=KeyedProcess: count",
          "vertex.1.parallelism=3",
          "vertex.1.maxParallelism=128",
          "vertex.1.costNanos=2500000",
          "vertex.1.selectivity=1",
          "vertex.1.inputs=0:HASH",
          "vertex.2.name=Sink: counts",
          "vertex.2.parallelism=1",
          "vertex.2.maxParallelism=128",
          "vertex.2.costNanos=500000",
          "vertex.2.selectivity=0",
          "vertex.2.inputs=1:REBALANCE");

  private static String plan(String spec) throws Exception {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    Plan.print(Plan.jobGraph(Spec.parse(SpecTest.props(spec))), new PrintStream(buf, true, "UTF-8"));
    return buf.toString(StandardCharsets.UTF_8);
  }

  @Test
  void printsTheIdsARealClusterReports() throws Exception {
    // The ids are those real Flink 1.20.3 and 2.2.0 reported for this job
    // (test/testbed/testdata/golden/flink-*/rest.json): Flink hashes each
    // chain head's uid, the vertex name, so they depend on nothing else.
    assertEquals(
        String.join(
            "\n",
            "VERTEX\t712a6f476cd6ee71f3f0d459a5814a97\t2\t128\t0\tSource: events -> Map",
            "VERTEX\tdf85b03322cf860d36bf7bbdbc498ff0\t3\t128\t0\tKeyedProcess: count",
            "VERTEX\t9325f30f8c374edd52441089d38b2d6b\t1\t128\t0\tSink: counts",
            ""),
        plan(SATURATE_STEP));
  }

  @Test
  void numbersSlotSharingGroupsInOrderOfAppearance() throws Exception {
    String[] lines = plan(SpecTest.GOOD).split("\n");
    assertEquals(3, lines.length);
    String[] groups = new String[lines.length];
    for (int i = 0; i < lines.length; i++) {
      String[] f = lines[i].split("\t");
      assertEquals(6, f.length, lines[i]);
      groups[i] = f[4];
    }
    // The sink is in slot sharing group "sinks", the others in "default".
    assertEquals("0", groups[0]);
    assertEquals("0", groups[1]);
    assertEquals("1", groups[2]);
    assertEquals("4", lines[1].split("\t")[3], "KeyedProcess: dedupe's max parallelism");
  }
}
