package fakeoperator

import (
	"fmt"
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

	until := func(what string, done func(Status) bool) Status { return h.follow(j, 600, what, done) }
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

// A FlinkDeployment's TaskManager memory (its flinkConfiguration's memory
// keys and spec.taskManager.resource.memory) reaches the simulated
// TaskManagers. Parallelism overrides alone that need more network buffers
// than the TaskManagers have leave the job failing (RESTARTING with
// Flink's IOException, never STABLE); the same overrides applied with the
// memory they need (scaling.TaskManagerMemory.FlinkConfiguration and the
// process size, as the controller's memory mode Apply writes them) deploy:
// the operator deletes the failing cluster and restores the job from the
// savepoint it started from, and nothing is lost.
func TestMemoryFromTheSpecDeploys(t *testing.T) {
	spec := sim.JobSpec{
		Name: "wide", FlinkVersion: "1.20", ConsumerGroup: "wide",
		Topics: []sim.TopicSpec{{Name: "events", Partitions: 32}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: events", Parallelism: 8, Capacity: 10000, Selectivity: 1, Topics: []string{"events"}},
			{Name: "KeyedProcess", Parallelism: 8, MaxParallelism: 128, Capacity: 1000, Selectivity: 1,
				Inputs: []sim.EdgeSpec{{From: "Source: events", Ship: "HASH"}}},
			{Name: "Sink: out", Parallelism: 8, Capacity: 10000, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "KeyedProcess", Ship: "REBALANCE"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 4, Slots: 4},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 10 * time.Second, TaskManagerStartup: 5 * time.Second},
	}
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return 5000 })
	j, err := sim.NewJob(spec, sim.Options{Start: t0, Seed: 5, Load: load})
	require.NoError(t, err)
	fd := baseSpec()
	conf(fd)[KeySlots] = "4"
	conf(fd)["taskmanager.memory.network.min"] = "16m"
	conf(fd)["taskmanager.memory.network.max"] = "16m"
	h := newKindHarness(t, false, j, nil, fd)
	until := func(what string, done func(Status) bool) Status { return h.follow(j, 900, what, done) }
	until("stable", func(s Status) bool { return s.LifecycleState == LifecycleStable })
	// 4096m of process with 16 MiB of network: 512 segments.
	mem := j.TaskManagerMemory()
	assert.EqualValues(t, 4096<<20, mem.ProcessBytes)
	assert.EqualValues(t, 16<<20, mem.NetworkBytes)

	// 24 subtasks per vertex: per slot the source's partition (25), the
	// keyed gate (2·24 + 1) and partition (25), the sink's gate (49): 148;
	// four slots 592 buffers > 512.
	ids := map[string]string{}
	for _, v := range spec.Vertices {
		ids[v.Name], _ = j.VertexID(v.Name)
	}
	overrides := ids["Source: events"] + ":24," + ids["KeyedProcess"] + ":24," + ids["Sink: out"] + ":24"
	h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = overrides })
	until("failing", func(s Status) bool { return s.JobStatus.State == "RESTARTING" })
	require.NoError(t, j.Advance(2*time.Minute))
	h.clock.SetTime(j.Now())
	st := h.reconcile()
	assert.NotEqual(t, LifecycleStable, st.LifecycleState)
	v := j.View()
	assert.Equal(t, "RESTARTING", v.Job.State)
	assert.Contains(t, v.Job.FailureCause, "Insufficient number of network buffers: required 592, but only 512 available")

	// The derived JVM overhead (a tenth of the process) is not whole KiB,
	// which FlinkConfiguration writes: every part in whole KiB, the task
	// heap what is left.
	want := mem
	want.NetworkBytes = 592 * 32 << 10
	want.OverheadBytes &^= 1023
	want.TaskHeapBytes = want.ProcessBytes - want.FrameworkHeapBytes - want.FrameworkOffHeapBytes - want.TaskOffHeapBytes -
		want.ManagedBytes&^1023 - want.NetworkBytes - want.MetaspaceBytes - want.OverheadBytes
	want.ManagedBytes &^= 1023
	h.edit(func(s map[string]any) {
		for k, val := range want.FlinkConfiguration() {
			conf(s)[k] = val
		}
		s["taskManager"].(map[string]any)["resource"].(map[string]any)["memory"] = fmt.Sprintf("%dm", want.ProcessBytes>>20)
	})
	failing := v.Job.ID
	until("stable on the new memory", func(s Status) bool {
		return s.LifecycleState == LifecycleStable && s.JobStatus.JobID != failing
	})
	v = j.View()
	assert.Equal(t, "RUNNING", v.Job.State)
	for _, x := range v.Job.Vertices {
		assert.Equal(t, 24, x.Parallelism, x.Name)
	}
	assert.Equal(t, want, j.TaskManagerMemory())
	require.NoError(t, j.Advance(5*time.Minute))
	stats := j.Stats()
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag)
	assert.Zero(t, stats.Reprocessed)

}

// follow reconciles once per simulated second of j, as the operator's
// resync does, until done (at most n seconds).
func (h *harness) follow(j *sim.Job, n int, what string, done func(Status) bool) Status {
	h.t.Helper()
	for range n {
		require.NoError(h.t, j.Advance(time.Second))
		h.clock.SetTime(j.Now())
		if st := h.reconcile(); done(st) {
			return st
		}
	}
	h.t.Fatalf("never %s: %+v", what, h.status())
	return Status{}
}
