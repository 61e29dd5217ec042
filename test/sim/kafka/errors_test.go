package kafka

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flinkscale/flinkscale/test/sim"
)

// Broker-side failures of single partitions come back as errors naming the
// partition; the other partitions of the request are applied.
func TestPartitionErrorsFromTheBroker(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	a0 := sim.TopicPartition{Topic: "audit", Partition: 0}
	a1 := sim.TopicPartition{Topic: "audit", Partition: 1}

	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "audit", Partitions: []int32{1}, Err: kerr.KafkaStorageError})
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{a0: 10, a1: 10})
	require.ErrorIs(t, err, kerr.KafkaStorageError)
	assert.ErrorContains(t, err, "produce to audit-1")
	assert.NotContains(t, err.Error(), "audit-0")
	ends, err := b.EndOffsets(ctx, []sim.TopicPartition{a0, a1})
	require.NoError(t, err)
	assert.Equal(t, map[sim.TopicPartition]int64{a0: 10, a1: 0}, ends)
	got, err := b.Produce(ctx, map[sim.TopicPartition]int64{a0: 10, a1: 10}) // the fault fired once
	require.NoError(t, err)
	assert.Equal(t, map[sim.TopicPartition]int64{a0: 20, a1: 10}, got)

	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Topic: "audit", Partitions: []int32{0}, Err: kerr.OffsetMetadataTooLarge})
	err = b.Commit(ctx, "g", map[sim.TopicPartition]int64{a0: 5, a1: 5})
	require.ErrorIs(t, err, kerr.OffsetMetadataTooLarge)
	assert.ErrorContains(t, err, "commit audit-0")
	c, err := b.Committed(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, map[sim.TopicPartition]int64{a1: 5}, c)

	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DeleteRecords}, Topic: "audit", Partitions: []int32{1}, Err: kerr.PolicyViolation})
	err = b.Trim(ctx, map[sim.TopicPartition]int64{a0: 5, a1: 5})
	require.ErrorIs(t, err, kerr.PolicyViolation)
	assert.ErrorContains(t, err, "trim audit-1")
	assert.Equal(t, int64(5), b.Cluster().PartitionInfo("audit", 0).LogStartOffset)
	assert.Equal(t, int64(0), b.Cluster().PartitionInfo("audit", 1).LogStartOffset)
	require.NoError(t, b.Trim(ctx, map[sim.TopicPartition]int64{a0: 5, a1: 5}), "the failed partition is retried")
	assert.Equal(t, int64(5), b.Cluster().PartitionInfo("audit", 1).LogStartOffset)

	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "audit", Partitions: []int32{1}, Err: kerr.UnknownServerError})
	_, err = b.EndOffsets(ctx, []sim.TopicPartition{a0, a1})
	require.ErrorIs(t, err, kerr.UnknownServerError)
	assert.ErrorContains(t, err, "end offset of audit-1")
}

// Topics and partitions created behind the Broker's back are found.
func TestTopicsCreatedLater(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	require.NoError(t, b.Cluster().CreateTopic("late", 2, nil))
	tp := sim.TopicPartition{Topic: "late", Partition: 1}
	got, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp: 7})
	require.NoError(t, err)
	assert.Equal(t, int64(7), got[tp])
	require.NoError(t, b.Commit(ctx, "g", map[sim.TopicPartition]int64{tp: 7}))
	_, err = b.Produce(ctx, map[sim.TopicPartition]int64{{Topic: "late", Partition: 2}: 7})
	require.Error(t, err)
}
