package io.flinkscale.testbed;

import java.io.Serializable;
import org.apache.flink.util.Collector;

/**
 * What every vertex does per record, whatever its kind: pay the record's cost at the vertex's
 * current parallelism and emit selectivity × records (Spec.emitsPerRecord: a terminal vertex
 * followed by the sink forwards each record once). One instance per subtask.
 */
final class Work implements Serializable {
  private static final long serialVersionUID = 1L;

  private final Spec.Vertex vertex;
  private final double slowdown;
  private final Emitter emitter;
  private transient Pacer pacer;

  /**
   * slowdown: slots per core where a TaskManager has more slots than cores, else 1; selectivity:
   * records out per record in.
   */
  Work(Spec.Vertex vertex, double slowdown, double selectivity) {
    this.vertex = vertex;
    this.slowdown = slowdown;
    this.emitter = new Emitter(selectivity);
  }

  /** Called from open(): the parallelism is the running subtask count. */
  void open(int parallelism) {
    pacer = new Pacer(vertex.costAt(parallelism) * slowdown, Pacer.SYSTEM);
  }

  void process(long value, Collector<Long> out) {
    pacer.pay();
    int n = emitter.next();
    for (int i = 0; i < n; i++) {
      out.collect(Emitter.copy(value, i));
    }
  }
}
