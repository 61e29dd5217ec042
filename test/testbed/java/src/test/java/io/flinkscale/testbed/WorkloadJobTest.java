package io.flinkscale.testbed;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.runtime.jobgraph.JobEdge;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.JobVertex;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamingJobGraphGenerator;
import org.junit.jupiter.api.Test;

/** The job graph Flink makes of a spec has the scenario's vertices, ids, edges and groups. */
class WorkloadJobTest {
  @Test
  void jobVerticesAreTheSpecsVertices() throws Exception {
    Spec spec = Spec.parse(SpecTest.props(SpecTest.GOOD));
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    WorkloadJob.build(env, spec);
    JobGraph g = StreamingJobGraphGenerator.createJobGraph(env.getStreamGraph());
    StreamExecutionEnvironment again = StreamExecutionEnvironment.getExecutionEnvironment();
    WorkloadJob.build(again, spec);
    JobGraph g2 = StreamingJobGraphGenerator.createJobGraph(again.getStreamGraph());

    List<JobVertex> vs = new ArrayList<>();
    for (JobVertex v : g.getVerticesSortedTopologicallyFromSources()) {
      vs.add(v);
    }
    assertEquals(3, vs.size());
    String[] names = {"Source: orders -> Map", "KeyedProcess: dedupe", "Sink: out"};
    int[] par = {2, 3, 1};
    int[] maxPar = {128, 4, 128};
    for (int i = 0; i < 3; i++) {
      JobVertex v = vs.get(i);
      assertEquals(names[i], v.getName());
      assertEquals(
          g2.getVerticesSortedTopologicallyFromSources().get(i).getID(),
          v.getID(),
          "the vertex id, derived from the uid, is the same on every build");
      assertEquals(par[i], v.getParallelism());
      assertEquals(maxPar[i], v.getMaxParallelism());
    }
    JobEdge hash = vs.get(1).getInputs().get(0);
    assertEquals("HASH", hash.getShipStrategyName());
    JobEdge rebalance = vs.get(2).getInputs().get(0);
    assertEquals("REBALANCE", rebalance.getShipStrategyName());
    // The sink has a slot sharing group of its own.
    assertEquals(vs.get(0).getSlotSharingGroup(), vs.get(1).getSlotSharingGroup());
    org.junit.jupiter.api.Assertions.assertNotEquals(
        vs.get(0).getSlotSharingGroup(), vs.get(2).getSlotSharingGroup());
  }

  /**
   * With a sink, the terminal vertex ends in the Kafka sink's writer and committer, chained: the
   * job keeps its three vertices, their ids, parallelism and max parallelism.
   */
  @Test
  void theSinkIsChainedIntoTheTerminalVertex() throws Exception {
    for (String guarantee : new String[] {"exactly-once", "at-least-once"}) {
      Spec spec = Spec.parse(SpecTest.props(SpecTest.AUDITABLE + "\nsink.guarantee=" + guarantee));
      List<JobVertex> with = vertices(spec);
      List<JobVertex> without =
          vertices(Spec.parse(SpecTest.props(SpecTest.AUDITABLE.replace("sink.topic=audit", ""))));
      assertEquals(3, with.size(), guarantee);
      for (int i = 0; i < 3; i++) {
        assertEquals(without.get(i).getID(), with.get(i).getID(), "the sink leaves vertex ids alone");
        assertEquals(without.get(i).getParallelism(), with.get(i).getParallelism());
        assertEquals(without.get(i).getMaxParallelism(), with.get(i).getMaxParallelism());
      }
      assertEquals("Source: orders -> Map", with.get(0).getName());
      assertEquals("KeyedProcess: dedupe", with.get(1).getName());
      JobVertex last = with.get(2);
      assertEquals(
          "Sink: out -> KafkaSink: audit: Writer -> KafkaSink: audit: Committer", last.getName(), guarantee);
      assertEquals(3, last.getOperatorIDs().size(), "head, writer and committer in one chain");
      assertEquals(1, without.get(2).getOperatorIDs().size());
    }
  }

  private static List<JobVertex> vertices(Spec spec) {
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    WorkloadJob.build(env, spec);
    JobGraph g = StreamingJobGraphGenerator.createJobGraph(env.getStreamGraph());
    return new ArrayList<>(g.getVerticesSortedTopologicallyFromSources());
  }
}
