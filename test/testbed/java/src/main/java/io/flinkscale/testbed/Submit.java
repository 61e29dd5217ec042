package io.flinkscale.testbed;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Submits the workload to a running session cluster and exits, as a client does:
 *
 * <pre>
 * java -cp FLINK_CP:testbed.jar io.flinkscale.testbed.Submit --spec job.properties \
 *     --rest 127.0.0.1:8081 [-D key=value ...]
 * </pre>
 *
 * -D sets any Flink option of the submission: execution.savepoint.path to resume from a savepoint,
 * pipeline.jobvertex-parallelism-overrides, state.backend.type. The job's classes are on the
 * cluster's classpath (as in an application image's usrlib), so no jar is shipped. Prints
 * "JOB_ID <id>" on success; a bad spec exits 2 with every problem named.
 */
public final class Submit {
  private Submit() {}

  public static void main(String[] args) throws Exception {
    Path spec = null;
    String rest = null;
    Map<String, String> conf = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--spec") && i + 1 < args.length) {
        spec = Path.of(args[++i]);
      } else if (a.equals("--rest") && i + 1 < args.length) {
        rest = args[++i];
      } else if (a.equals("-D") && i + 1 < args.length) {
        put(conf, args[++i]);
      } else if (a.startsWith("-D") && a.length() > 2) {
        put(conf, a.substring(2));
      } else {
        usage("unexpected argument \"" + a + "\"");
      }
    }
    if (spec == null || rest == null) {
      usage("--spec and --rest are required");
    }
    int colon = rest.lastIndexOf(':');
    if (colon <= 0) {
      usage("--rest wants HOST:PORT, got \"" + rest + "\"");
    }
    Spec s;
    try {
      s = Spec.load(spec);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    conf.put("execution.target", "remote");
    conf.put("execution.attached", "false");
    conf.put("rest.address", rest.substring(0, colon));
    conf.put("rest.port", rest.substring(colon + 1));
    // The constructor, not getExecutionEnvironment(conf): outside Flink's
    // CLI that returns a local MiniCluster whatever execution.target says.
    StreamExecutionEnvironment env = new StreamExecutionEnvironment(Configuration.fromMap(conf));
    WorkloadJob.build(env, s);
    JobClient client = env.executeAsync(s.jobName);
    System.out.println("JOB_ID " + client.getJobID());
  }

  private static void put(Map<String, String> conf, String kv) {
    int eq = kv.indexOf('=');
    if (eq <= 0) {
      usage("-D wants key=value, got \"" + kv + "\"");
    }
    conf.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
  }

  private static void usage(String why) {
    System.err.println(
        "testbed Submit: "
            + why
            + "\nusage: Submit --spec FILE --rest HOST:PORT [-D key=value ...]");
    System.exit(2);
  }
}
