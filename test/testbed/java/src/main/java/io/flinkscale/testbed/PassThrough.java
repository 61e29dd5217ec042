package io.flinkscale.testbed;

import org.apache.flink.api.common.functions.MapFunction;

/**
 * A chained operator that does nothing: the later operators of a vertex named "A -> B -> C", so
 * that the vertex's name and its operators' metric scopes are those of a real chained job (the
 * head operator, which does the vertex's work, names the operator metrics, as in Flink).
 */
public final class PassThrough implements MapFunction<Long, Long> {
  private static final long serialVersionUID = 1L;

  @Override
  public Long map(Long value) {
    return value;
  }
}
