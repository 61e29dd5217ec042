package io.flinkscale.testbed;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * A vertex behind HASH edges: cost and selectivity, and keyed state. Each key (one per key group,
 * see KeyPicker) holds a counter updated on every record and, once, a block of the configured
 * size, so the job's state and its checkpoints weigh what the scenario says (scaled).
 */
public final class KeyedVertexFunction extends KeyedProcessFunction<Integer, Long, Long> {
  private static final long serialVersionUID = 1L;

  private final Work work;
  private final long stateBytesPerKey;
  private transient ValueState<Long> count;
  private transient ValueState<byte[]> block;

  KeyedVertexFunction(Work work, long stateBytesPerKey) {
    this.work = work;
    this.stateBytesPerKey = stateBytesPerKey;
  }

  @Override
  public void open(OpenContext ctx) {
    work.open(getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks());
    count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
    block =
        getRuntimeContext()
            .getState(
                new ValueStateDescriptor<>("block", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
  }

  @Override
  public void processElement(Long value, Context ctx, Collector<Long> out) throws Exception {
    Long c = count.value();
    if (c == null) {
      c = 0L;
      if (stateBytesPerKey > 0) {
        byte[] b = new byte[(int) stateBytesPerKey];
        // Not all zeros, so that RocksDB's compression does not make it vanish.
        for (int i = 0; i < b.length; i += 8) {
          b[i] = (byte) Mix.mix(ctx.getCurrentKey() * 31L + i);
        }
        block.update(b);
      }
    }
    count.update(c + 1);
    work.process(value, out);
  }
}
