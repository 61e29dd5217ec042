package io.flinkscale.testbed;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.JobVertex;
import org.apache.flink.runtime.jobmanager.scheduler.SlotSharingGroup;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamingJobGraphGenerator;

/**
 * Prints the job vertices Flink makes of a workload spec, without a cluster:
 *
 * <pre>
 * java -cp FLINK_CP:testbed.jar io.flinkscale.testbed.Plan --spec job.properties
 * VERTEX	712a6f476cd6ee71f3f0d459a5814a97	2	128	0	Source: events -> Map
 * </pre>
 *
 * One tab-separated line per job vertex, sources first: "VERTEX", the job vertex id, the
 * parallelism, the max parallelism, the slot sharing group (numbered from 0 in order of first
 * appearance) and the name (last: it may hold spaces). A Flink Kubernetes Operator deployment
 * carries pipeline.jobvertex-parallelism-overrides keyed by these ids before the job ever runs;
 * Flink derives them from the operators' uids, so the ids come from Flink's own graph generator
 * here rather than from a reimplementation of its hashing. A bad spec exits 2.
 */
public final class Plan {
  private Plan() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2 || !args[0].equals("--spec")) {
      System.err.println("usage: Plan --spec FILE");
      System.exit(2);
    }
    Spec s;
    try {
      s = Spec.load(Path.of(args[1]));
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    print(jobGraph(s), System.out);
  }

  /** The job graph a submission of the spec would have (the workload's, built locally). */
  static JobGraph jobGraph(Spec s) {
    StreamExecutionEnvironment env = new StreamExecutionEnvironment(new Configuration());
    WorkloadJob.build(env, s);
    return StreamingJobGraphGenerator.createJobGraph(env.getStreamGraph());
  }

  static void print(JobGraph g, PrintStream out) {
    Map<SlotSharingGroup, Integer> groups = new HashMap<>();
    List<JobVertex> vs = new ArrayList<>(g.getVerticesSortedTopologicallyFromSources());
    for (JobVertex v : vs) {
      int group = groups.computeIfAbsent(v.getSlotSharingGroup(), k -> groups.size());
      out.println(
          String.join(
              "\t",
              "VERTEX",
              v.getID().toHexString(),
              Integer.toString(v.getParallelism()),
              Integer.toString(v.getMaxParallelism()),
              Integer.toString(group),
              v.getName()));
    }
  }
}
