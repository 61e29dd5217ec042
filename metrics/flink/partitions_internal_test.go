package flink

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/metrics"
)

// After an in-place rescale of a source 2 → 1, real Flink's metric store
// still lists subtask 1's gauges for partition 1 (stopped at offset 900)
// beside subtask 0's, which read it now (offset 1,150): one owner per
// partition, the live one.
func TestLiveOwnersDropsStaleGaugesOfGoneSubtasks(t *testing.T) {
	po := func(p, sub int, cur, com int64) metrics.PartitionOwner {
		return metrics.PartitionOwner{Topic: "clicks", Partition: p, Subtask: sub, CurrentOffset: cur, CommittedOffset: com}
	}
	for _, tc := range []struct {
		name string
		in   []metrics.PartitionOwner
		want []metrics.PartitionOwner
	}{
		{"one owner each: unchanged, sorted",
			[]metrics.PartitionOwner{po(1, 1, 900, 880), po(0, 0, 1000, 990)},
			[]metrics.PartitionOwner{po(0, 0, 1000, 990), po(1, 1, 900, 880)}},
		{"scale-in: the stale subtask 1 (900) loses to subtask 0 (1,150)",
			[]metrics.PartitionOwner{po(0, 0, 1200, 1100), po(1, 1, 900, 880), po(1, 0, 1150, 1100)},
			[]metrics.PartitionOwner{po(0, 0, 1200, 1100), po(1, 0, 1150, 1100)}},
		{"scale-out: the new subtask 3 took partition 1 and is ahead",
			[]metrics.PartitionOwner{po(1, 0, 700, 650), po(1, 3, 760, 700)},
			[]metrics.PartitionOwner{po(1, 3, 760, 700)}},
		{"just after the restart, offsets equal: the higher commit, then the lower subtask",
			[]metrics.PartitionOwner{po(0, 2, 500, 400), po(0, 1, 500, 500), po(1, 3, 600, 600), po(1, 0, 600, 600)},
			[]metrics.PartitionOwner{po(0, 1, 500, 500), po(1, 0, 600, 600)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, liveOwners(tc.in))
		})
	}
}

// A source's listing keeps its partition gauges alone, in their order,
// each id and topic cut from one string, kinds the package's constants.
func TestPartitionList(t *testing.T) {
	const (
		cur0 = "0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset"
		com0 = "0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.committedOffset"
		cur1 = "1.Source__Kafka_Source.KafkaSourceReader.topic.payments.partition.12.currentOffset"
	)
	list := []string{"0.busyTimeMsPerSecond", cur0, "1.numRecordsIn", com0, cur1, "0.Source__Kafka_Source.KafkaSourceReader.commitsSucceeded"}
	l := partitionList(list)
	assert.Equal(t, []string{cur0, com0, cur1}, l.ids)
	assert.Equal(t, []PartitionMetric{
		{Subtask: 0, Topic: "orders_v1", Partition: 3, Kind: kindCurrent},
		{Subtask: 0, Topic: "orders_v1", Partition: 3, Kind: kindCommitted},
		{Subtask: 1, Topic: "payments", Partition: 12, Kind: kindCurrent},
	}, l.parsed)
	assert.Equal(t, len(l.ids), cap(l.ids))
	assert.Equal(t, len(l.parsed), cap(l.parsed))
	// One backing string: each id starts where the one before it ends.
	for i := 1; i < len(l.ids); i++ {
		prev := unsafe.StringData(l.ids[i-1])
		assert.Equal(t, unsafe.Add(unsafe.Pointer(prev), len(l.ids[i-1])), unsafe.Pointer(unsafe.StringData(l.ids[i])), "id %d", i)
	}
	assert.Empty(t, partitionList([]string{"0.busyTimeMsPerSecond"}).ids)
}

// A non-source vertex's cached ids are the six task metrics it has, as one
// of the shared lists: no allocation, whatever else Flink listed and in
// whatever order, and an append to one copies it.
func TestTaskMetricIDs(t *testing.T) {
	listing := []string{"numBytesOut", mOutRate, "Map.numRecordsIn", mBusy, mIn, "buffers.inPoolUsage", mBackPressured}
	got := taskMetricIDs(listing)
	assert.Equal(t, []string{mBusy, mBackPressured, mIn, mOutRate}, got)
	assert.Equal(t, 0.0, testing.AllocsPerRun(100, func() { taskMetricIDs(listing) }))
	all := taskMetricIDs([]string{mOutRate, mInRate, mOut, mIn, mBackPressured, mBusy})
	assert.Equal(t, []string{mBusy, mBackPressured, mIn, mOut, mInRate, mOutRate}, all)
	_ = append(got, "extra")
	assert.Equal(t, []string{mBusy, mBackPressured, mIn, mOutRate}, taskMetricIDs(listing), "the shared list was written")
	assert.Empty(t, taskMetricIDs([]string{"numBytesOut"}))
}
