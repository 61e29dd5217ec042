package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
)

// wide is a three-vertex job whose two edges are all-to-all (HASH, then
// REBALANCE), on 4-slot TaskManagers with 16 MiB of network memory: 512
// segments of 32 KiB.
func wide(p int) JobSpec {
	return JobSpec{
		Name: "wide", FlinkVersion: "1.20", ConsumerGroup: "wide",
		Topics: []TopicSpec{{Name: "events", Partitions: 32}},
		Vertices: []VertexSpec{
			{Name: "Source: events", Parallelism: p, Capacity: 10000, Selectivity: 1, Topics: []string{"events"}},
			{Name: "KeyedProcess", Parallelism: p, MaxParallelism: 128, Capacity: 1000, Selectivity: 1, StateBytes: 256 << 20,
				Inputs: []EdgeSpec{{From: "Source: events", Ship: "HASH"}}},
			{Name: "Sink: out", Parallelism: p, Capacity: 10000, Selectivity: 1, Inputs: []EdgeSpec{{From: "KeyedProcess", Ship: "REBALANCE"}}},
		},
		TaskManager: TaskManagerSpec{CPU: 4, Slots: 4, MemoryBytes: 4 << 30, FlinkConfiguration: map[string]string{
			"taskmanager.memory.network.min": "16m", "taskmanager.memory.network.max": "16m",
		}},
		Checkpoints: CheckpointSpec{Interval: 30 * time.Second, Timeout: 10 * time.Minute, Base: time.Second},
		Restart:     RestartSpec{Time: 10 * time.Second, TaskManagerStartup: 5 * time.Second},
	}
}

// wideRequired is the buffers the worst TaskManager of wide(p) needs on
// Flink 1.20 with every channel remote: per slot, the source's partition
// (p subpartitions: p + 1), the keyed vertex's gate (p channels, 2
// exclusive each, 1 required floating: 2p + 1) and partition (p + 1), the
// sink's gate (2p + 1): 6p + 4; four slots per TaskManager: 24p + 16.
func wideRequired(p int) int { return 4 * (6*p + 4) }

func TestTaskManagerMemoryFromTheSpec(t *testing.T) {
	j, err := NewJob(wide(8), Options{Start: t0})
	require.NoError(t, err)
	m := j.TaskManagerMemory()
	want, err := scaling.DeriveTaskManagerMemory(map[string]string{"taskmanager.memory.network.min": "16m", "taskmanager.memory.network.max": "16m"}, 4<<30)
	require.NoError(t, err)
	require.Equal(t, want, m)
	require.EqualValues(t, 16<<20, m.NetworkBytes)

	bad := wide(8)
	bad.TaskManager.FlinkConfiguration = map[string]string{"taskmanager.memory.task.heap.size": "8g"}
	_, err = NewJob(bad, Options{Start: t0})
	require.ErrorContains(t, err, "taskManager memory")
}

// A layout whose TaskManagers lack network buffers does not come up: every
// attempt fails with Flink's IOException and the restart strategy tries
// again after a growing backoff. Going back to a layout that fits (from the
// same savepoint) deploys, and no record is lost.
func TestInsufficientNetworkBuffersFailEveryAttempt(t *testing.T) {
	spec := wide(8)
	j, _ := start(t, spec, constant(spec, 2000))
	require.NoError(t, j.Advance(2*time.Minute))
	v := j.View()
	require.Equal(t, "RUNNING", v.Job.State, "8 subtasks per vertex need %d of 512 buffers", wideRequired(8))
	require.Less(t, wideRequired(8), 512)
	old := map[string]int{}
	for _, x := range v.Job.Vertices {
		old[x.ID] = 8
	}

	trig, err := j.TriggerSavepoint(SavepointRequest{JobID: v.Job.ID, Stop: true, TargetDirectory: "s3://sp"})
	require.NoError(t, err)
	var st SavepointStatus
	for st.Status != "COMPLETED" {
		require.NoError(t, j.Advance(time.Second))
		st, err = j.SavepointStatus(v.Job.ID, trig)
		require.NoError(t, err)
	}
	wideP := 24 // 24·24 + 16 = 592 buffers > 512
	require.Greater(t, wideRequired(wideP), 512)
	up := map[string]int{}
	for id := range old {
		up[id] = wideP
	}
	require.NoError(t, j.Submit(Submission{JobID: strings.Repeat("a", 32), Overrides: up, SavepointPath: st.Location}))
	// Restart time 10 s + TaskManager start-up 5 s, then the first attempt.
	require.NoError(t, j.Advance(15*time.Second))
	v = j.View()
	require.Equal(t, "RESTARTING", v.Job.State)
	require.Equal(t, 1, v.Job.NumRestarts)
	require.Equal(t, fmt.Sprintf("java.io.IOException: Insufficient number of network buffers: required %d, but only 512 available. "+
		"The total number of network buffers is currently set to 512 of 32768 bytes each. You can increase this number by setting "+
		"the configuration keys 'taskmanager.memory.network.fraction', 'taskmanager.memory.network.min', and 'taskmanager.memory.network.max'.",
		wideRequired(wideP)), v.Job.FailureCause)
	// Backoffs 1 s, 1.5 s, 2.25 s, 3.375 s, …: after 10 s more, attempts
	// at 1, 2.5, 4.75 and 8.125 s have failed too.
	require.NoError(t, j.Advance(10*time.Second))
	v = j.View()
	require.Equal(t, "RESTARTING", v.Job.State)
	require.Equal(t, 5, v.Job.NumRestarts)
	for _, tm := range v.TaskManagers {
		require.Zero(t, tm.NetworkSegmentsUsed, "no task runs")
	}
	s := j.Stats()
	require.Equal(t, s.Produced, s.Consumed+s.Lag)
	require.Zero(t, s.InFlight)

	// Rolled back: the failing job goes, the old layout deploys from the
	// same savepoint.
	require.NoError(t, j.Abort(v.Job.ID))
	require.NoError(t, j.Submit(Submission{JobID: strings.Repeat("b", 32), Overrides: old, SavepointPath: st.Location}))
	require.NoError(t, j.Advance(time.Minute))
	v = j.View()
	require.Equal(t, "RUNNING", v.Job.State)
	require.Empty(t, v.Job.FailureCause)
	require.NoError(t, j.Advance(10*time.Minute))
	s = j.Stats()
	require.Equal(t, s.Produced, s.Consumed+s.Lag)
	require.InDelta(t, float64(s.Consumed), s.Delivered+s.InFlight, 1e-6*float64(s.Consumed)+1e-6)
	require.Zero(t, s.Reprocessed)

	// With the network memory the layout needs, it deploys.
	v = j.View()
	trig, err = j.TriggerSavepoint(SavepointRequest{JobID: v.Job.ID, Stop: true, TargetDirectory: "s3://sp"})
	require.NoError(t, err)
	for st.Status = ""; st.Status != "COMPLETED"; {
		require.NoError(t, j.Advance(time.Second))
		st, err = j.SavepointStatus(v.Job.ID, trig)
		require.NoError(t, err)
	}
	mem := j.TaskManagerMemory()
	mem.NetworkBytes = int64(wideRequired(wideP)) * 32 << 10 // 592 segments
	mem.TaskHeapBytes -= mem.NetworkBytes - 16<<20
	require.NoError(t, j.Submit(Submission{JobID: strings.Repeat("c", 32), Overrides: up, SavepointPath: st.Location, Memory: &mem}))
	require.NoError(t, j.Advance(time.Minute))
	v = j.View()
	require.Equal(t, "RUNNING", v.Job.State)
	require.Equal(t, wideP, v.Job.Vertices[1].Parallelism)
	// The full TaskManagers use what the buffer pools require.
	require.EqualValues(t, wideRequired(wideP), v.TaskManagers[0].NetworkSegmentsUsed)
	require.Equal(t, mem, v.TaskManagers[0].Memory)
	s = j.Stats()
	require.Equal(t, s.Produced, s.Consumed+s.Lag)
	require.Zero(t, s.Reprocessed)
}

// The heap holds a base, a little per busy slot and, with the hashmap
// backend, the state of the slots a TaskManager holds; GC time grows as
// the heap fills. RocksDB keeps the state off the heap and uses managed
// memory per busy slot.
func TestTaskManagerMemoryUse(t *testing.T) {
	for _, tc := range []struct {
		backend string
		state   float64
	}{{"", 256 << 20}, {"rocksdb", 256 << 20}, {"", 6 << 30}} {
		t.Run(fmt.Sprintf("%s-%d", tc.backend, int64(tc.state)), func(t *testing.T) {
			spec := wide(8) // 8 slots: two TaskManagers of 4
			spec.StateBackend = tc.backend
			spec.Vertices[1].StateBytes = tc.state
			j, _ := start(t, spec, constant(spec, 1000))
			require.NoError(t, j.Advance(2*time.Minute))
			v := j.View()
			require.Len(t, v.TaskManagers, 2)
			tm := v.TaskManagers[0]
			m := tm.Memory
			base := int64(heapBaseBytes + 4*heapPerSlotBytes)
			switch {
			case tc.backend == "rocksdb":
				require.Equal(t, base, tm.HeapUsed)
				require.Equal(t, m.ManagedBytes, tm.ManagedUsed, "4 of 4 slots busy")
				require.Less(t, tm.GCTimeMsPerSecond, 2.0)
			case base+int64(tc.state)/2 < m.HeapBytes():
				require.Equal(t, base+int64(tc.state)/2, tm.HeapUsed, "half the state on each TaskManager")
				require.Zero(t, tm.ManagedUsed)
				require.Less(t, tm.GCTimeMsPerSecond, 2.0)
			default:
				require.Equal(t, m.HeapBytes(), tm.HeapUsed, "a full heap")
				require.Equal(t, 1000.0, tm.GCTimeMsPerSecond)
			}
			require.EqualValues(t, wideRequired(8), tm.NetworkSegmentsUsed)
			require.EqualValues(t, metaspaceUsed, tm.MetaspaceUsed)
		})
	}
}
