package fakeoperator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// The whole path on a real simulated job: a FlinkDeployment's parallelism
// overrides change, the operator stops the job with a savepoint, resubmits
// it at the new parallelism from that savepoint, and the job runs on with
// nothing lost or read twice. The same for a FlinkSessionJob's job.
func TestUpgradeRescalesASimulatedJob(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { testUpgradeRescalesASimulatedJob(t, k.session) })
	}
}

func testUpgradeRescalesASimulatedJob(t *testing.T, session bool) {
	spec := sim.JobSpec{
		Name: "orders", FlinkVersion: "1.18", ConsumerGroup: "orders",
		Topics: []sim.TopicSpec{{Name: "orders", Partitions: 6}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: orders", Parallelism: 2, Capacity: 5000, Selectivity: 1, Topics: []string{"orders"}},
			{Name: "Enrich -> Sink", Parallelism: 2, Capacity: 1000, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "Source: orders", Ship: "REBALANCE"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: 2 * time.Second},
		Restart:     sim.RestartSpec{Time: 20 * time.Second, TaskManagerStartup: 10 * time.Second},
	}
	// 3000 rec/s against 2×1000 of enrichment: it needs a bigger job.
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return 3000 })
	j, err := sim.NewJob(spec, sim.Options{Start: t0, Seed: 5, Load: load})
	require.NoError(t, err)
	h := newKindHarness(t, session, j, nil, baseSpec())

	// Reconcile once per simulated second, as the operator's resync does.
	until := func(what string, done func(Status) bool) Status {
		t.Helper()
		for range 600 {
			require.NoError(t, j.Advance(time.Second))
			h.clock.SetTime(j.Now())
			if st := h.reconcile(); done(st) {
				return st
			}
		}
		t.Fatalf("never %s: %+v", what, h.status())
		return Status{}
	}
	st := until("stable", func(s Status) bool { return s.LifecycleState == LifecycleStable })
	firstJob := st.JobStatus.JobID
	require.NoError(t, j.Advance(2*time.Minute))

	src, _ := j.VertexID("Source: orders")
	enrich, _ := j.VertexID("Enrich -> Sink")
	h.edit(func(s map[string]any) {
		conf(s)[KeyOverrides] = src + ":3," + enrich + ":4"
	})
	seen := map[string]bool{}
	st = until("rescaled", func(s Status) bool {
		seen[s.LifecycleState] = true
		return s.LifecycleState == LifecycleStable && s.JobStatus.JobID != firstJob
	})
	assert.True(t, seen[LifecycleUpgrading], "went through UPGRADING")
	assert.NotEmpty(t, st.JobStatus.UpgradeSavepointPath)
	v := j.View()
	assert.Equal(t, st.JobStatus.JobID, v.Job.ID)
	par := map[string]int{}
	for _, x := range v.Job.Vertices {
		par[x.ID] = x.Parallelism
	}
	assert.Equal(t, map[string]int{src: 3, enrich: 4}, par)
	assert.Equal(t, st.JobStatus.UpgradeSavepointPath, v.Job.Checkpoints.LatestRestored.ExternalPath)

	// 4×1000 now carries the 3000 rec/s and drains what piled up.
	require.NoError(t, j.Advance(15*time.Minute))
	stats := j.Stats()
	assert.Zero(t, stats.Reprocessed, "a savepoint upgrade replays nothing")
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag)
	assert.Less(t, stats.Lag, int64(10000))
}
