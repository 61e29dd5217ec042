package sim

import (
	"context"
	"fmt"
	"sync"
)

// TopicPartition names a Kafka partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Kafka is the broker side of a simulation. The job appends the records that
// arrive and commits its consumer group's offsets on checkpoints; flinkscale's
// collectors read end offsets, committed offsets and lag from the same
// brokers over the Kafka protocol. The kfake-backed implementation lives in
// package sim/kafka; MemoryKafka is an in-process stand-in for unit tests.
type Kafka interface {
	// Produce appends counts[tp] records to each partition and returns the
	// new end offsets (high watermarks) of the partitions it touched.
	Produce(ctx context.Context, counts map[TopicPartition]int64) (map[TopicPartition]int64, error)
	// Commit commits offsets for a consumer group (as KafkaSource does on
	// checkpoint completion).
	Commit(ctx context.Context, group string, offsets map[TopicPartition]int64) error
	// EndOffsets returns the end offsets of the given partitions.
	EndOffsets(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error)
	// Committed returns the group's committed offsets (absent: none yet).
	Committed(ctx context.Context, group string) (map[TopicPartition]int64, error)
	// Trim lets the brokers drop records below the given offsets (all
	// consumers are past them); it bounds memory in long runs.
	Trim(ctx context.Context, below map[TopicPartition]int64) error
}

// MemoryKafka keeps offsets in memory: the same contract as the real
// brokers, without the protocol, for fast unit tests of the job model.
type MemoryKafka struct {
	mu        sync.Mutex
	end       map[TopicPartition]int64
	committed map[string]map[TopicPartition]int64
}

// NewMemoryKafka creates topics with the given partition counts.
func NewMemoryKafka(topics []TopicSpec) *MemoryKafka {
	k := &MemoryKafka{end: map[TopicPartition]int64{}, committed: map[string]map[TopicPartition]int64{}}
	for _, t := range topics {
		for p := range t.Partitions {
			k.end[TopicPartition{t.Name, int32(p)}] = 0
		}
	}
	return k
}

// Produce implements Kafka.
func (k *MemoryKafka) Produce(_ context.Context, counts map[TopicPartition]int64) (map[TopicPartition]int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for tp, n := range counts { // all or nothing, as the brokers do
		if _, ok := k.end[tp]; !ok {
			return nil, fmt.Errorf("produce to %s: unknown topic or partition", tp)
		}
		if n < 0 {
			return nil, fmt.Errorf("produce to %s: negative count %d", tp, n)
		}
	}
	out := make(map[TopicPartition]int64, len(counts))
	for tp, n := range counts {
		k.end[tp] += n
		out[tp] = k.end[tp]
	}
	return out, nil
}

// Commit implements Kafka.
func (k *MemoryKafka) Commit(_ context.Context, group string, offsets map[TopicPartition]int64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for tp, o := range offsets { // all or nothing
		end, ok := k.end[tp]
		if !ok {
			return fmt.Errorf("commit %s: unknown topic or partition", tp)
		}
		if o < 0 || o > end {
			return fmt.Errorf("commit %s: offset %d outside [0, %d]", tp, o, end)
		}
	}
	g := k.committed[group]
	if g == nil {
		g = map[TopicPartition]int64{}
		k.committed[group] = g
	}
	for tp, o := range offsets {
		g[tp] = o
	}
	return nil
}

// EndOffsets implements Kafka.
func (k *MemoryKafka) EndOffsets(_ context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[TopicPartition]int64, len(tps))
	for _, tp := range tps {
		end, ok := k.end[tp]
		if !ok {
			return nil, fmt.Errorf("end offset of %s: unknown topic or partition", tp)
		}
		out[tp] = end
	}
	return out, nil
}

// Committed implements Kafka.
func (k *MemoryKafka) Committed(_ context.Context, group string) (map[TopicPartition]int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[TopicPartition]int64, len(k.committed[group]))
	for tp, o := range k.committed[group] {
		out[tp] = o
	}
	return out, nil
}

// Trim implements Kafka (a no-op: nothing is stored but offsets).
func (k *MemoryKafka) Trim(context.Context, map[TopicPartition]int64) error { return nil }
