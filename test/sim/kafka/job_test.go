package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flinkscale/flinkscale/test/sim"
)

// A simulated job on the real protocol: what the brokers report to a kadm
// client is what the job did — end offsets are what was produced, committed
// offsets are the last checkpoint's barrier, and the group lag is their
// difference.
func TestSimulatedJobOnTheBrokers(t *testing.T) {
	spec := sim.JobSpec{
		Name: "clicks", ConsumerGroup: "clicks-enrich",
		Topics: []sim.TopicSpec{{Name: "clicks", Partitions: 6, Skew: 0.5}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: clicks", Parallelism: 2, Capacity: 3000, Selectivity: 1, Topics: []string{"clicks"}},
			{Name: "Enrich -> Sink: Kafka", Parallelism: 2, Capacity: 1000, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "Source: clicks", Ship: "REBALANCE"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 20 * time.Second},
	}
	b, err := Start(spec.Topics)
	require.NoError(t, err)
	defer b.Close()
	// 2500 rec/s against 2000 of capacity: the lag grows by ~500 rec/s.
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return 2500 })
	j, err := sim.NewJob(spec, sim.Options{Start: time.Unix(0, 0), Seed: 3, Load: load, Kafka: b, ProduceEvery: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))
	require.NoError(t, j.Advance(10*time.Minute))

	cl, err := kgo.NewClient(b.ClientOpts()...)
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "clicks")
	require.NoError(t, err)
	committed, err := adm.FetchOffsets(ctx, "clicks-enrich")
	require.NoError(t, err)
	stats := j.Stats()
	var end, lag int64
	ends.Each(func(o kadm.ListedOffset) {
		end += o.Offset
		c, ok := committed.Lookup("clicks", o.Partition)
		require.True(t, ok, "partition %d has a commit", o.Partition)
		lag += o.Offset - c.At
	})
	// The brokers trail the job by at most one 5 s produce batch.
	assert.InDelta(t, float64(stats.Produced), float64(end), 5*2500)
	// Committed lag = Flink's lag plus what was read since the last checkpoint
	// (at most 30 s at 2000 rec/s).
	assert.GreaterOrEqual(t, lag+5*2500, stats.Lag)
	assert.LessOrEqual(t, lag, stats.Lag+30*2000+5*2500)
	// About 10 min − 20 s of downtime at 500 rec/s short, plus 20 s at 2500.
	assert.InDelta(t, 9*60*500+20*2500+40*500, float64(stats.Lag), 15000)
}

// KafkaSource commits offsets to the consumer group only when a checkpoint
// completes (commit.offsets.on.checkpoint), at the position of that
// checkpoint's barrier, while Flink's pendingRecords is the end offset less
// the reader's current position: the true backlog. With checkpoints every
// 2 minutes the lag read from the brokers' committed offsets exceeds
// pendingRecords by the records read since the latest completed
// checkpoint's barrier (Σ currentOffset − committedOffset), about the
// arrival rate × the time since that barrier: hundreds of thousands of
// records of a job that keeps up.
func TestCommittedLagExceedsPendingRecordsBySinceTheBarrier(t *testing.T) {
	const rate = 3000.0
	spec := sim.JobSpec{
		Name: "payments", ConsumerGroup: "payments-ledger",
		Topics: []sim.TopicSpec{{Name: "payments", Partitions: 6}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: payments", Parallelism: 2, Capacity: 10000, Selectivity: 1, Topics: []string{"payments"}},
			{Name: "Ledger -> Sink: Kafka", Parallelism: 2, Capacity: 5000, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "Source: payments", Ship: "HASH"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		// 2 min between checkpoints, each 5 s from its barrier to its
		// completion (and the commit).
		Checkpoints: sim.CheckpointSpec{Interval: 2 * time.Minute, Base: 5 * time.Second},
		Restart:     sim.RestartSpec{Time: 20 * time.Second},
	}
	b, err := Start(spec.Topics)
	require.NoError(t, err)
	defer b.Close()
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return rate })
	// Every arrival on the brokers at once (no produce batching), so that
	// the brokers' end offsets are the job's.
	j, err := sim.NewJob(spec, sim.Options{Start: time.Unix(0, 0), Seed: 5, Load: load, Kafka: b})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))

	cl, err := kgo.NewClient(b.ClientOpts()...)
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The job runs from 20 s; its first checkpoint is triggered 2 min
	// later and completes 5 s after that.
	require.NoError(t, j.Advance(2*time.Minute+20*time.Second))
	committed, err := adm.FetchOffsets(ctx, "payments-ledger")
	if err == nil {
		assert.Empty(t, committed.Offsets(), "nothing committed before the first checkpoint completes")
	} else {
		assert.ErrorContains(t, err, "GROUP_ID_NOT_FOUND", "nothing committed before the first checkpoint completes")
	}

	var largest int64
	for step := range 30 { // every 10 s over 5 min: more than two checkpoint cycles
		require.NoError(t, j.Advance(10*time.Second))
		v := j.View()
		require.Equal(t, "RUNNING", v.Job.State)
		ends, err := adm.ListEndOffsets(ctx, "payments")
		require.NoError(t, err)
		committed, err := adm.FetchOffsets(ctx, "payments-ledger")
		if err != nil || len(committed.Offsets()) == 0 {
			require.True(t, err == nil || step == 0, "step %d: %v", step, err)
			continue // the first checkpoint is still to complete
		}
		var committedLag int64
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup("payments", o.Partition)
			require.True(t, ok, "partition %d", o.Partition)
			committedLag += o.Offset - c.At
		})
		var pending float64
		var sinceBarrier int64
		for _, vx := range v.Job.Vertices {
			for _, st := range vx.Subtasks {
				if !vx.IsSource {
					continue
				}
				require.NotNil(t, st.PendingRecords)
				pending += *st.PendingRecords
				for _, p := range st.Partitions {
					c, _ := committed.Lookup(p.Topic, int32(p.Partition))
					require.Equal(t, c.At, p.CommittedOffset, "the committedOffset gauge is the group's commit")
					sinceBarrier += p.CurrentOffset - p.CommittedOffset
				}
			}
		}
		assert.Equal(t, committedLag, int64(pending)+sinceBarrier, "step %d: committed lag = pendingRecords + what was read since the barrier", step)
		assert.Less(t, pending, 2*rate, "step %d: the job keeps up: its true backlog is a second or so of arrivals", step)
		barrier := time.UnixMilli(v.Job.Checkpoints.LatestCompleted.TriggerTimestamp)
		assert.InDelta(t, rate*v.Now.Sub(barrier).Seconds(), float64(sinceBarrier), 2*rate,
			"step %d: read since the barrier %s ago", step, v.Now.Sub(barrier))
		largest = max(largest, committedLag)
	}
	// Just before a checkpoint completes the committed lag is about 2 min
	// 5 s of arrivals; the true backlog stayed under 2 s of them.
	assert.Greater(t, float64(largest), 115*rate, "the committed lag at its largest")
	t.Logf("committed lag up to %d records (%.0f s of arrivals)", largest, float64(largest)/rate)
}
