package io.flinkscale.testbed;

import java.nio.ByteBuffer;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * The sink's records: each value the 8-byte big-endian id it carried from the producer (see
 * SourceRecords), no key, no partition, so the Kafka producer spreads them. The audit compares
 * these ids with the producer's.
 */
final class SinkRecords implements KafkaRecordSerializationSchema<Long> {
  private static final long serialVersionUID = 1L;

  private final String topic;

  SinkRecords(String topic) {
    this.topic = topic;
  }

  @Override
  public ProducerRecord<byte[], byte[]> serialize(Long value, KafkaSinkContext context, Long timestamp) {
    return new ProducerRecord<>(topic, ByteBuffer.allocate(Long.BYTES).putLong(value).array());
  }
}
