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
