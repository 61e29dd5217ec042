package metrics_test

import (
	"context"
	"math"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// For every scenario of the library, the collectors read the simulated job
// over real HTTP (Flink's REST API) and the real Kafka protocol (kfake), the
// window assembles a snapshot, and the snapshot equals the simulator's
// ground truth within the stated tolerances; the model then sizes the job
// without holding for data.
func TestCollectedSnapshotMatchesTheSimulator(t *testing.T) {
	all, err := scenario.All(filepath.Join("..", "test", "scenarios"))
	require.NoError(t, err)
	for _, s := range all {
		t.Run(s.Name, func(t *testing.T) { checkScenario(t, s) })
	}
}

// truth is what the simulator itself says at one sample.
type truth struct {
	at      time.Time
	busyMax map[string]float64
	counter map[string]float64 // records in, summed (the source operator's for sources)
	ckptMs  float64            // the latest completed checkpoint's duration, 0 without one
}

func checkScenario(t *testing.T, s *scenario.Scenario) {
	ctx := context.Background()
	broker, err := simkafka.Start(s.Job.Topics)
	require.NoError(t, err)
	defer broker.Close()
	start := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	j, err := s.NewJob(broker, start, 5*time.Second)
	require.NoError(t, err)
	srv := httptest.NewServer(flinkrest.NewHandler(j))
	defer srv.Close()
	rest, err := flink.New(srv.URL)
	require.NoError(t, err)
	// The fetcher is primed on the job's clock; waiting changes nothing:
	// the simulator's clock stands still during a Collect and its
	// JobManager's fetches land at once.
	// Every request at every poll: the simulator's truth is of the
	// moment (the controller reuses the checkpoint statistics and the
	// TaskManagers for a minute, flink.WithSlowRefresh).
	fc := flink.NewCollector(rest, flink.WithClock(j.Now), flink.WithSlowRefresh(0),
		flink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() }))
	kc, err := kafka.New(kafka.Config{BootstrapServers: broker.Addrs()})
	require.NoError(t, err)
	defer kc.Close()
	kc.Now = j.Now
	var topics []string
	for _, tp := range s.Job.Topics {
		topics = append(topics, tp.Name)
	}

	// Deploy and warm up (restart + TaskManager start-up + the policy's
	// 2 minute warm-up), then sample every 30 s over a 5 minute window.
	require.NoError(t, j.Advance(s.Job.Restart.Time+s.Job.Restart.TaskManagerStartup+3*time.Minute))
	w := metrics.NewWindow(5 * time.Minute)
	var truths []truth
	for range 11 {
		require.NoError(t, j.Advance(30*time.Second))
		fs, err := fc.Collect(ctx, "")
		require.NoError(t, err)
		ks, err := kc.Collect(ctx, s.Job.ConsumerGroup, topics)
		require.NoError(t, err)
		w.AddFlink(fs)
		w.AddKafka(ks)
		truths = append(truths, observe(j))
	}
	snap, missing := w.Snapshot()
	assert.Empty(t, missing)
	require.Len(t, snap.Vertices, len(s.Job.Vertices))
	first, last := truths[0], truths[len(truths)-1]
	dt := last.at.Sub(first.at).Seconds()
	require.Equal(t, 300.0, dt)
	view := j.View()
	lag := 0.0
	for _, v := range snap.Vertices {
		// Busy time: Flink sends doubles, the window averages them.
		mean := 0.0
		for _, tr := range truths {
			mean += tr.busyMax[v.ID] / float64(len(truths))
		}
		assert.InDelta(t, mean, float64(*v.BusyTimeMsPerSecond.Max), 1e-6*max(1, mean), "%s busy", v.Name)
		// Records in per second from counter growth; Flink sends counters
		// as whole numbers, so each subtask may lose up to one record.
		want := (last.counter[v.ID] - first.counter[v.ID]) / dt
		assert.InDelta(t, want, float64(*v.NumRecordsInPerSecond), float64(2*v.Parallelism)/dt+1e-9, "%s records in", v.Name)
		if len(v.Inputs) > 0 {
			continue
		}
		// Sources: every partition of their topics, and the arrival rate
		// from end-offset growth. The brokers trail the job by at most one
		// 5 s append, so the rate is off by at most 2 × 5 s of arrivals
		// over the 300 s window.
		want = 0
		parts := 0
		for _, name := range vertexTopics(s, v.Name) {
			want += s.Arrivals(name, first.at.Sub(start), last.at.Sub(start)) / dt
			tp, _ := s.Topic(name)
			parts += tp.Partitions
		}
		assert.Equal(t, parts, v.Partitions, "%s partitions", v.Name)
		require.NotNil(t, v.ArrivalRatePerSecond, "%s arrival", v.Name)
		assert.InDelta(t, want, float64(*v.ArrivalRatePerSecond), 2*5*want/dt+1, "%s arrival rate", v.Name)
		assert.Len(t, v.PartitionRates, parts)
		require.NotNil(t, v.LagRecords)
		assert.Equal(t, scaling.LagFromPendingRecords, v.LagSource, "%s lag source", v.Name)
		lag += float64(*v.LagRecords)
	}
	// The lag is Flink's pendingRecords, the readers' own backlog: the
	// simulator's lag (end − position), not the brokers' end − committed,
	// which trails it by what was read since the last completed checkpoint.
	t.Logf("lag %.0f, the simulator's %d", lag, j.Stats().Lag)
	assert.InDelta(t, float64(j.Stats().Lag), lag, 1, "lag")
	require.NotNil(t, snap.Checkpoints)
	assert.Equal(t, float64(s.Job.Checkpoints.Interval.Milliseconds()), float64(snap.Checkpoints.IntervalMs))
	// The window averages the latest completed checkpoint's duration over
	// its samples (durations vary: a growing state, slow checkpoints).
	ckpts, sum := 0, 0.0
	for _, tr := range truths {
		if tr.ckptMs > 0 {
			ckpts, sum = ckpts+1, sum+tr.ckptMs
		}
	}
	if ckpts > 0 {
		assert.InDelta(t, sum/float64(ckpts), float64(snap.Checkpoints.DurationMs), 1, "checkpoint duration")
	}
	assert.Equal(t, len(view.TaskManagers), snap.TaskManagers.Replicas)
	assert.Equal(t, s.Job.TaskManager.CPU, float64(snap.TaskManagers.CPU))
	// The slots Flink's resource manager reports (/overview), as the
	// TaskManagers hold them.
	total, free := 0, 0
	for _, tm := range view.TaskManagers {
		total += tm.SlotsNumber
		free += tm.FreeSlots
	}
	assert.Equal(t, total, snap.TaskManagers.SlotsTotal, "slots total")
	assert.Equal(t, free, snap.TaskManagers.SlotsAvailable, "slots available")
	// Flink's REST API reports slot-sharing groups from 1.20 on.
	assert.Equal(t, s.Job.FlinkVersion == "1.18", snap.SlotSharingUnknown, "slot sharing unknown on Flink %s", s.Job.FlinkVersion)

	d := scaling.Decide(snap, scaling.DefaultPolicy(), scaling.History{}, snap.WindowEnd)
	assert.True(t, d.Sized, "the model trusts the collected snapshot: %s", d.Summary)
	t.Logf("%s: %s", s.Name, d.Summary)
}

// observe reads the simulator's ground truth.
func observe(j *sim.Job) truth {
	v := j.View()
	tr := truth{at: v.Now, busyMax: map[string]float64{}, counter: map[string]float64{}}
	if c := v.Job.Checkpoints.LatestCompleted; c != nil {
		tr.ckptMs = float64(c.EndToEndDurationMs)
	}
	for _, vv := range v.Job.Vertices {
		m := 0.0
		for _, st := range vv.Subtasks {
			m = math.Max(m, st.BusyTimeMsPerSecond)
			if vv.IsSource {
				tr.counter[vv.ID] += st.SourceNumRecordsIn
			} else {
				tr.counter[vv.ID] += st.NumRecordsIn
			}
		}
		tr.busyMax[vv.ID] = m
	}
	return tr
}

func vertexTopics(s *scenario.Scenario, name string) []string {
	for _, v := range s.Job.Vertices {
		if v.Name == name {
			return v.Topics
		}
	}
	return nil
}
