package io.flinkscale.testbed;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.KafkaSinkBuilder;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * Builds the workload's DataStream graph from a Spec: one chain per scenario vertex, so Flink's
 * job vertices are the scenario's, with its names, parallelism, max parallelism, edges and slot
 * sharing groups. A vertex named "Source: orders -> Filter -> Map" is a Kafka source named
 * "orders", which does the vertex's work, chained with pass-through operators "Filter" and "Map",
 * as a real job's chain is named; every vertex's head starts a new chain, so vertices never merge.
 * The head operator's uid is the vertex name, which fixes the job vertex id across submissions.
 * With a sink (Spec.sink), every terminal vertex ends in a Kafka sink chained into it, so the job
 * vertex's name grows the sink's operators ("Sink: counts -> KafkaSink: audit: Writer -> …").
 */
public final class WorkloadJob {
  private WorkloadJob() {}

  public static void build(StreamExecutionEnvironment env, Spec spec) {
    env.enableCheckpointing(spec.checkpointIntervalMs);
    env.getCheckpointConfig().setCheckpointTimeout(spec.checkpointTimeoutMs);

    List<DataStream<Long>> streams = new ArrayList<>();
    for (Spec.Vertex v : spec.vertices) {
      String[] ops = v.name().split(" -> ");
      SingleOutputStreamOperator<Long> op;
      if (v.isSource()) {
        KafkaSource<Long> source =
            KafkaSource.<Long>builder()
                .setBootstrapServers(spec.bootstrap)
                .setTopics(v.topics())
                .setGroupId(spec.group)
                // Committed offsets on a start without state, so a job resubmitted without a
                // savepoint resumes where it committed; the earliest offset on the first start.
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setProperty("commit.offsets.on.checkpoint", "true")
                .setProperty("client.id.prefix", spec.group + "-" + v.index())
                .setDeserializer(new SourceRecords(work(spec, v)))
                .build();
        op = env.fromSource(source, WatermarkStrategy.noWatermarks(), ops[0].substring(Spec.SOURCE_PREFIX.length()));
      } else {
        Work work = work(spec, v);
        if (v.isKeyed()) {
          DataStream<Long> in = null;
          for (Spec.Input e : v.inputs()) {
            DataStream<Long> up = streams.get(e.from());
            in = in == null ? up : in.union(up);
          }
          KeyPicker keys = new KeyPicker(v.maxParallelism(), v.keyGroupWeights(), Mix.mix(v.index() + 1L));
          op = in.keyBy(keys).process(new KeyedVertexFunction(work, v.stateBytesPerKeyGroup()));
        } else {
          DataStream<Long> in = null;
          for (Spec.Input e : v.inputs()) {
            DataStream<Long> edge = partition(streams.get(e.from()), e.ship());
            in = in == null ? edge : in.union(edge);
          }
          op = in.process(new VertexFunction(work));
        }
        op.name(ops[0]).startNewChain();
      }
      op.uid(v.name());
      place(op, v);
      for (int i = 1; i < ops.length; i++) {
        op = op.map(new PassThrough()).name(ops[i]).uid(v.name() + " #" + i);
        place(op, v);
      }
      if (spec.sink != null && spec.isTerminal(v)) {
        // Chained into the vertex (same parallelism, group, FORWARD), so the
        // job keeps the scenario's vertices; the uid keeps its state's id
        // across submissions, as the head's does.
        op.sinkTo(kafkaSink(spec))
            .name("KafkaSink: " + spec.sink.topic())
            .uid(v.name() + " sink")
            .setParallelism(v.parallelism())
            .setMaxParallelism(v.maxParallelism())
            .slotSharingGroup(v.slotSharingGroup());
      }
      streams.add(op);
    }
  }

  private static Work work(Spec spec, Spec.Vertex v) {
    return new Work(v, spec.costFactor, spec.emitsPerRecord(v));
  }

  /**
   * Flink's Kafka sink writing each record's id: transactional (EXACTLY_ONCE, one transaction per
   * subtask and checkpoint, committed when the checkpoint completes) or flushing on checkpoints
   * (AT_LEAST_ONCE).
   */
  static KafkaSink<Long> kafkaSink(Spec spec) {
    KafkaSinkBuilder<Long> b =
        KafkaSink.<Long>builder()
            .setBootstrapServers(spec.bootstrap)
            .setRecordSerializer(new SinkRecords(spec.sink.topic()));
    if (spec.sink.guarantee() == Spec.Guarantee.EXACTLY_ONCE) {
      b.setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
          .setTransactionalIdPrefix(spec.transactionalIdPrefix())
          .setProperty("transaction.timeout.ms", Long.toString(spec.sink.transactionTimeoutMs()));
    } else {
      b.setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE);
    }
    return b.build();
  }

  private static void place(SingleOutputStreamOperator<Long> op, Spec.Vertex v) {
    op.setParallelism(v.parallelism());
    op.setMaxParallelism(v.maxParallelism());
    op.slotSharingGroup(v.slotSharingGroup());
  }

  private static DataStream<Long> partition(DataStream<Long> up, Spec.Ship ship) {
    switch (ship) {
      case FORWARD:
        return up.forward();
      case REBALANCE:
        return up.rebalance();
      case RESCALE:
        return up.rescale();
      case BROADCAST:
        return up.broadcast();
      default:
        throw new IllegalArgumentException("ship " + ship + " is not a plain partitioner");
    }
  }
}
