package io.flinkscale.testbed;

import java.nio.ByteBuffer;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * A source vertex's work, done where the Kafka source hands each record to the job: in the task
 * thread (the source reader's emit path), so the time counts as the source task's busy time, as
 * parsing and the chained maps of a real source vertex do. A record's value is the producer's
 * 8-byte big-endian id; any other payload is hashed.
 */
public final class SourceRecords implements KafkaRecordDeserializationSchema<Long> {
  private static final long serialVersionUID = 1L;

  private final Work work;
  private transient boolean opened;

  SourceRecords(Work work) {
    this.work = work;
  }

  @Override
  public void open(DeserializationSchema.InitializationContext context) {
    // A source's cost does not depend on its parallelism (Spec refuses USL
    // on sources): the cost at parallelism 1 is the cost.
    work.open(1);
    opened = true;
  }

  @Override
  public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Long> out) {
    if (!opened) {
      open(null);
    }
    work.process(value(record.value(), record.partition(), record.offset()), out);
  }

  static long value(byte[] b, int partition, long offset) {
    if (b != null && b.length == 8) {
      return ByteBuffer.wrap(b).getLong();
    }
    return Mix.mix(((long) partition << 48) ^ offset);
  }

  @Override
  public TypeInformation<Long> getProducedType() {
    return Types.LONG;
  }
}
