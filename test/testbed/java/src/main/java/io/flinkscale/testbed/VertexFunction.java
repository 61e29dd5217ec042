package io.flinkscale.testbed;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

/** A vertex without keyed inputs: cost and selectivity, no state. */
public final class VertexFunction extends ProcessFunction<Long, Long> {
  private static final long serialVersionUID = 1L;

  private final Work work;

  VertexFunction(Work work) {
    this.work = work;
  }

  @Override
  public void open(OpenContext ctx) {
    work.open(getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks());
  }

  @Override
  public void processElement(Long value, Context ctx, Collector<Long> out) {
    work.process(value, out);
  }
}
