package io.flinkscale.testbed;

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Set;

/**
 * The workload job as the Go side (test/testbed, from a scenario) writes it: a Java properties
 * file, so this module needs no parser beyond the JDK's. Every number is already scaled for the
 * testbed; this class only reads and checks.
 *
 * <pre>
 * job.name=order-enrichment
 * kafka.bootstrap=127.0.0.1:9092
 * kafka.group=order-enrichment
 * checkpoint.interval.ms=30000
 * checkpoint.timeout.ms=600000
 * job.costFactor=1                   # slots per core, where slots outnumber cores
 * vertex.count=2
 * vertex.0.name=Source: orders -> Map
 * vertex.0.parallelism=2
 * vertex.0.maxParallelism=128
 * vertex.0.costNanos=50000            # per record, per subtask, at parallelism 1
 * vertex.0.selectivity=0.9
 * vertex.0.topics=orders
 * vertex.1.inputs=0:HASH              # upstream index : ship strategy
 * vertex.1.keyGroupWeights=0.1,0.2,…  # one per key group (HASH inputs only)
 * vertex.1.stateBytesPerKeyGroup=4096
 * vertex.1.usl.sigma=0.03
 * vertex.1.usl.kappa=0.0005
 * vertex.1.slotSharingGroup=default
 * sink.topic=audit                   # optional: a Kafka sink behind every terminal vertex
 * sink.guarantee=exactly-once        # or at-least-once; default exactly-once
 * sink.transactionTimeoutMs=300000   # exactly-once only; default 300000
 * </pre>
 *
 * <h2>The sink and its audit</h2>
 *
 * With sink.topic set, every terminal vertex (one no vertex reads) is followed by a Kafka sink
 * chained into it (see WorkloadJob), which writes each record's value, the producer's 8-byte id,
 * to the topic. The point is an audit (test/testbed/audit.go): every record produced reaches the
 * sink exactly once, so the output can be compared with what the producer wrote, id by id. Hence:
 *
 * <ul>
 *   <li>a terminal vertex forwards every record it processes once: its selectivity only shaped
 *       output that no one consumed, and is ignored (see {@link #emitsPerRecord});
 *   <li>every other vertex has selectivity 1 and exactly one outgoing edge, and no edge is
 *       BROADCAST, so that no record is dropped or copied on its way;
 *   <li>the sink's topic is not one the job reads.
 * </ul>
 *
 * sink.transactionTimeoutMs is the Kafka producer's transaction.timeout.ms. An exactly-once sink
 * keeps a transaction open from one checkpoint to the next and commits it when the checkpoint
 * completes (so output becomes visible to read_committed consumers only then): the timeout must
 * exceed checkpoint.interval.ms, and stay within the broker's transaction.max.timeout.ms (900000
 * by default), or the producer cannot begin a transaction at all.
 */
public final class Spec implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How records travel on an edge, with Flink's names. */
  public enum Ship {
    FORWARD,
    HASH,
    REBALANCE,
    RESCALE,
    BROADCAST
  }

  /** One input edge of a vertex. */
  public record Input(int from, Ship ship) implements Serializable {}

  /**
   * One job vertex: a chain of operators (see WorkloadJob) whose head's uid is the vertex name,
   * so Flink derives the same job vertex id from it on every submission (a savepoint restore and
   * pipeline.jobvertex-parallelism-overrides rely on that).
   */
  public record Vertex(
      int index,
      String name,
      int parallelism,
      int maxParallelism,
      double costNanos,
      double uslSigma,
      double uslKappa,
      double selectivity,
      List<String> topics,
      List<Input> inputs,
      double[] keyGroupWeights,
      long stateBytesPerKeyGroup,
      String slotSharingGroup)
      implements Serializable {

    public boolean isSource() {
      return !topics.isEmpty();
    }

    public boolean isKeyed() {
      return !inputs.isEmpty() && inputs.get(0).ship() == Ship.HASH;
    }

    /**
     * Nanoseconds one record costs a subtask when the vertex runs at parallelism n: the
     * universal scalability law's per-subtask slow-down, as the simulator applies it.
     */
    public double costAt(int n) {
      return costNanos * (1 + uslSigma * (n - 1) + uslKappa * n * (double) (n - 1));
    }
  }

  /** The sink's delivery guarantee, with the spec's names for Flink's DeliveryGuarantee. */
  public enum Guarantee {
    EXACTLY_ONCE("exactly-once"),
    AT_LEAST_ONCE("at-least-once");

    public final String key;

    Guarantee(String key) {
      this.key = key;
    }

    static Guarantee of(String key) {
      for (Guarantee g : values()) {
        if (g.key.equals(key)) {
          return g;
        }
      }
      return null;
    }
  }

  /** The Kafka sink behind every terminal vertex. */
  public record Sink(String topic, Guarantee guarantee, long transactionTimeoutMs)
      implements Serializable {}

  public static final String SOURCE_PREFIX = "Source: ";

  /** The producer's default transaction.timeout.ms for an exactly-once sink. */
  public static final long DEFAULT_TRANSACTION_TIMEOUT_MS = 300_000;

  /** Kafka brokers' default transaction.max.timeout.ms: a longer timeout is refused. */
  public static final long BROKER_MAX_TRANSACTION_TIMEOUT_MS = 900_000;

  public final String jobName;
  public final String bootstrap;
  public final String group;
  public final long checkpointIntervalMs;
  public final long checkpointTimeoutMs;
  /** Per-record costs are multiplied by this: slots per core where slots outnumber cores. */
  public final double costFactor;
  public final List<Vertex> vertices;
  /** The Kafka sink (sink.topic), or null: the job writes nowhere. */
  public final Sink sink;

  private Spec(
      String jobName,
      String bootstrap,
      String group,
      long checkpointIntervalMs,
      long checkpointTimeoutMs,
      double costFactor,
      List<Vertex> vertices,
      Sink sink) {
    this.jobName = jobName;
    this.bootstrap = bootstrap;
    this.group = group;
    this.checkpointIntervalMs = checkpointIntervalMs;
    this.checkpointTimeoutMs = checkpointTimeoutMs;
    this.costFactor = costFactor;
    this.vertices = Collections.unmodifiableList(vertices);
    this.sink = sink;
  }

  /** Whether no vertex reads v: with a sink, the sink follows it. */
  public boolean isTerminal(Vertex v) {
    return outgoing(vertices, v.index()).isEmpty();
  }

  /**
   * Records a vertex emits per record it processes: its selectivity, except that a terminal vertex
   * followed by the sink forwards each record once. That vertex's selectivity shaped output no one
   * consumed; the audit needs every record at the sink.
   */
  public double emitsPerRecord(Vertex v) {
    return sink != null && isTerminal(v) ? 1 : v.selectivity();
  }

  /**
   * The sink's transactional.id prefix: one per job name, so that two jobs on one broker never
   * fence each other's transactions, and the same across the job's resubmissions, so that a job
   * restored from a savepoint finds and aborts the transactions its previous run left open.
   */
  public String transactionalIdPrefix() {
    return "flinkscale-" + jobName;
  }

  /** The indices of the vertices reading vertex i, once per edge. */
  private static List<Integer> outgoing(List<Vertex> vs, int i) {
    List<Integer> out = new ArrayList<>();
    for (Vertex w : vs) {
      for (Input in : w.inputs()) {
        if (in.from() == i) {
          out.add(w.index());
        }
      }
    }
    return out;
  }

  public static Spec load(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      Properties p = new Properties();
      p.load(in);
      return parse(p);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  /** Reads and checks a spec; every problem is reported at once, naming its key. */
  public static Spec parse(Properties p) {
    Reader r = new Reader(p);
    String jobName = r.string("job.name", null);
    String bootstrap = r.string("kafka.bootstrap", null);
    String group = r.string("kafka.group", jobName);
    long interval = r.longValue("checkpoint.interval.ms", 60_000, 10, Long.MAX_VALUE);
    long timeout = r.longValue("checkpoint.timeout.ms", 600_000, 10, Long.MAX_VALUE);
    double costFactor = r.doubleValue("job.costFactor", 1, 1, 1e3);
    int n = (int) r.longValue("vertex.count", -1, 1, 1000);
    List<Vertex> vs = new ArrayList<>();
    Set<String> names = new HashSet<>();
    Set<String> topics = new HashSet<>();
    for (int i = 0; i < n; i++) {
      String k = "vertex." + i + ".";
      String name = r.string(k + "name", null);
      if (name != null && !names.add(name)) {
        r.bad(k + "name", "duplicate vertex name \"" + name + "\"");
      }
      int par = (int) r.longValue(k + "parallelism", -1, 1, 32768);
      int maxPar = (int) r.longValue(k + "maxParallelism", -1, 1, 32768);
      if (par > 0 && maxPar > 0 && maxPar < par) {
        r.bad(k + "maxParallelism", "below the parallelism " + par);
      }
      double cost = r.doubleValue(k + "costNanos", -1, 0, 1e12);
      double sigma = r.doubleValue(k + "usl.sigma", 0, 0, 1e3);
      double kappa = r.doubleValue(k + "usl.kappa", 0, 0, 1e3);
      double sel = r.doubleValue(k + "selectivity", -1, 0, 1e6);
      List<String> tops = r.list(k + "topics");
      for (String t : tops) {
        if (!topics.add(t)) {
          r.bad(k + "topics", "topic \"" + t + "\" is read by two sources");
        }
      }
      List<Input> inputs = new ArrayList<>();
      for (String in : r.list(k + "inputs")) {
        String[] parts = in.split(":", 2);
        try {
          int from = Integer.parseInt(parts[0].trim());
          Ship ship = Ship.valueOf(parts[1].trim().toUpperCase(Locale.ROOT));
          if (from < 0 || from >= i) {
            r.bad(k + "inputs", "input " + from + " is not an earlier vertex (write vertices in topological order)");
          }
          inputs.add(new Input(from, ship));
        } catch (RuntimeException e) {
          r.bad(k + "inputs", "\"" + in + "\" is not <vertex index>:<FORWARD|HASH|REBALANCE|RESCALE|BROADCAST>");
        }
      }
      if (tops.isEmpty() == inputs.isEmpty()) {
        r.bad(k + "topics", "a vertex reads topics (a source) or has inputs, not both and not neither");
      }
      if (!tops.isEmpty() && name != null && !name.startsWith(SOURCE_PREFIX)) {
        r.bad(k + "name", "a source vertex's name starts with \"" + SOURCE_PREFIX + "\", as Flink names it");
      }
      if (!tops.isEmpty() && (sigma != 0 || kappa != 0)) {
        r.bad(k + "usl", "a Kafka source's deserializer cannot see its parallelism; USL is for other vertices");
      }
      boolean anyHash = inputs.stream().anyMatch(x -> x.ship() == Ship.HASH);
      boolean allHash = !inputs.isEmpty() && inputs.stream().allMatch(x -> x.ship() == Ship.HASH);
      if (anyHash && !allHash) {
        r.bad(k + "inputs", "mixes HASH with other ship strategies; a keyed vertex has only HASH inputs");
      }
      double[] weights = r.doubles(k + "keyGroupWeights");
      if (allHash && maxPar > 0 && weights.length != 0 && weights.length != maxPar) {
        r.bad(k + "keyGroupWeights", "has " + weights.length + " weights for " + maxPar + " key groups");
      }
      if (!allHash && weights.length != 0) {
        r.bad(k + "keyGroupWeights", "only a vertex with HASH inputs has key groups");
      }
      long state = r.longValue(k + "stateBytesPerKeyGroup", 0, 0, 1L << 30);
      if (state > 0 && !allHash) {
        r.bad(k + "stateBytesPerKeyGroup", "state is keyed: the vertex needs HASH inputs");
      }
      String ssg = r.string(k + "slotSharingGroup", "default");
      vs.add(
          new Vertex(i, name, par, maxPar, cost, sigma, kappa, sel, tops, inputs, weights, state, ssg));
    }
    // Every vertex with consumers must emit something.
    for (Vertex v : vs) {
      for (Input in : v.inputs()) {
        if (in.from() >= 0 && in.from() < vs.size()) {
          Vertex up = vs.get(in.from());
          if (up.selectivity() == 0) {
            r.bad("vertex." + up.index() + ".selectivity", "0, but vertex " + v.index() + " consumes it");
          }
          if (in.ship() == Ship.FORWARD && up.parallelism() != v.parallelism()) {
            r.bad("vertex." + v.index() + ".inputs", "a FORWARD edge needs equal parallelism on both ends");
          }
        }
      }
    }
    Sink sink = parseSink(r, topics, interval);
    if (sink != null) {
      checkAuditable(r, vs);
    }
    r.unknownKeys(n);
    r.throwIfBad();
    return new Spec(jobName, bootstrap, group, interval, timeout, costFactor, vs, sink);
  }

  /** Reads sink.*: null without sink.topic. */
  private static Sink parseSink(Reader r, Set<String> sourceTopics, long checkpointIntervalMs) {
    String topic = r.string("sink.topic", "");
    String g = r.raw("sink.guarantee");
    boolean timeoutSet = r.raw("sink.transactionTimeoutMs") != null;
    if (topic.isEmpty()) {
      if (g != null || timeoutSet) {
        r.bad("sink.topic", "required with sink.guarantee or sink.transactionTimeoutMs");
      }
      return null;
    }
    if (sourceTopics.contains(topic)) {
      r.bad("sink.topic", "\"" + topic + "\" is read by a source: the job would read its own output");
    }
    Guarantee guarantee = Guarantee.EXACTLY_ONCE;
    if (g != null && !g.isEmpty()) {
      guarantee = Guarantee.of(g);
      if (guarantee == null) {
        r.bad("sink.guarantee", "\"" + g + "\" is not exactly-once or at-least-once");
        guarantee = Guarantee.EXACTLY_ONCE;
      }
    }
    long txTimeout =
        r.longValue("sink.transactionTimeoutMs", DEFAULT_TRANSACTION_TIMEOUT_MS, 1, Long.MAX_VALUE);
    if (timeoutSet && guarantee != Guarantee.EXACTLY_ONCE) {
      r.bad("sink.transactionTimeoutMs", "only an exactly-once sink has transactions");
    }
    if (txTimeout > BROKER_MAX_TRANSACTION_TIMEOUT_MS) {
      r.bad(
          "sink.transactionTimeoutMs",
          txTimeout
              + " exceeds the broker's transaction.max.timeout.ms ("
              + BROKER_MAX_TRANSACTION_TIMEOUT_MS
              + "): the sink could not begin a transaction");
    }
    if (guarantee == Guarantee.EXACTLY_ONCE && txTimeout <= checkpointIntervalMs) {
      r.bad(
          "sink.transactionTimeoutMs",
          txTimeout
              + " does not exceed checkpoint.interval.ms ("
              + checkpointIntervalMs
              + "): a transaction stays open from one checkpoint to the next");
    }
    return new Sink(topic, guarantee, txTimeout);
  }

  /**
   * The audit's constraints (see the class comment): every record travels from its source to
   * exactly one terminal vertex, neither dropped nor copied.
   */
  private static void checkAuditable(Reader r, List<Vertex> vs) {
    String why = ": with sink.topic every record must reach the sink exactly once";
    for (Vertex v : vs) {
      List<Integer> outs = outgoing(vs, v.index());
      String k = "vertex." + v.index() + ".";
      if (outs.isEmpty()) {
        continue;
      }
      if (outs.size() > 1) {
        r.bad(
            k + "name",
            "\"" + v.name() + "\" has " + outs.size() + " outgoing edges (to vertices "
                + outs + ")" + why + ", so a vertex with consumers has exactly one");
      }
      if (v.selectivity() != 1) {
        r.bad(
            k + "selectivity",
            v.selectivity() + " on \"" + v.name() + "\", which has consumers" + why
                + ", so only a terminal vertex may have a selectivity other than 1");
      }
      for (int o : outs) {
        for (Input in : vs.get(o).inputs()) {
          if (in.from() == v.index() && in.ship() == Ship.BROADCAST) {
            r.bad(
                "vertex." + o + ".inputs",
                "BROADCAST from \"" + v.name() + "\" copies each record to every subtask" + why);
          }
        }
      }
    }
  }

  /** Reads typed values and collects every problem. */
  private static final class Reader {
    private final Properties p;
    private final Set<String> used = new HashSet<>();
    private final List<String> problems = new ArrayList<>();

    Reader(Properties p) {
      this.p = p;
    }

    void bad(String key, String why) {
      problems.add(key + ": " + why);
    }

    String raw(String key) {
      used.add(key);
      String v = p.getProperty(key);
      return v == null ? null : v.trim();
    }

    String string(String key, String dflt) {
      String v = raw(key);
      if (v == null || v.isEmpty()) {
        if (dflt == null) {
          bad(key, "required");
        }
        return dflt;
      }
      return v;
    }

    long longValue(String key, long dflt, long min, long max) {
      String v = raw(key);
      if (v == null || v.isEmpty()) {
        if (dflt < 0) {
          bad(key, "required");
        }
        return dflt;
      }
      try {
        long x = Long.parseLong(v);
        if (x < min || x > max) {
          bad(key, x + " is outside [" + min + ", " + max + "]");
        }
        return x;
      } catch (NumberFormatException e) {
        bad(key, "\"" + v + "\" is not an integer");
        return dflt;
      }
    }

    double doubleValue(String key, double dflt, double min, double max) {
      String v = raw(key);
      if (v == null || v.isEmpty()) {
        if (dflt < 0) {
          bad(key, "required");
        }
        return dflt;
      }
      try {
        double x = Double.parseDouble(v);
        if (!(x >= min && x <= max)) {
          bad(key, v + " is outside [" + min + ", " + max + "]");
        }
        return x;
      } catch (NumberFormatException e) {
        bad(key, "\"" + v + "\" is not a number");
        return dflt;
      }
    }

    List<String> list(String key) {
      String v = raw(key);
      List<String> out = new ArrayList<>();
      if (v == null || v.isEmpty()) {
        return out;
      }
      for (String s : v.split(",")) {
        if (!s.trim().isEmpty()) {
          out.add(s.trim());
        }
      }
      return out;
    }

    double[] doubles(String key) {
      List<String> l = list(key);
      double[] out = new double[l.size()];
      for (int i = 0; i < out.length; i++) {
        try {
          out[i] = Double.parseDouble(l.get(i));
          if (!(out[i] >= 0) || Double.isInfinite(out[i])) {
            bad(key, "weight " + i + " is not a finite number ≥ 0");
          }
        } catch (NumberFormatException e) {
          bad(key, "weight " + i + " \"" + l.get(i) + "\" is not a number");
        }
      }
      return out;
    }

    void unknownKeys(int vertices) {
      for (String k : p.stringPropertyNames()) {
        if (used.contains(k)) {
          continue;
        }
        bad(k, "unknown key" + (k.startsWith("vertex.") ? " (vertex.count is " + vertices + ")" : ""));
      }
    }

    void throwIfBad() {
      if (!problems.isEmpty()) {
        Collections.sort(problems);
        throw new IllegalArgumentException("invalid workload spec:\n  " + String.join("\n  ", problems));
      }
    }
  }
}
