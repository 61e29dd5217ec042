package flinkrest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
)

// The collector, run against the simulator, reads the TaskManagers' whole
// memory model and every memory metric it asks for, and the window turns
// them into a complete scaling.Memory: the figures are the simulator's own.
func TestCollectorReadsTheTaskManagersMemory(t *testing.T) {
	for _, version := range []string{"1.20", "2.1"} {
		t.Run(version, func(t *testing.T) {
			spec := sim.JobSpec{
				Name: "mem", FlinkVersion: version, ConsumerGroup: "mem", StateBackend: "hashmap",
				Topics: []sim.TopicSpec{{Name: "in", Partitions: 4}},
				Vertices: []sim.VertexSpec{
					{Name: "Source: in", Parallelism: 4, Capacity: 5000, Selectivity: 1, Topics: []string{"in"}},
					{Name: "Count -> Sink", Parallelism: 4, Capacity: 2000, Selectivity: 1, StateBytes: 512 << 20,
						Inputs: []sim.EdgeSpec{{From: "Source: in", Ship: "HASH"}}},
				},
				TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2, MemoryBytes: 2 << 30, FlinkConfiguration: map[string]string{
					"taskmanager.memory.managed.fraction": "0.2",
				}},
				Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
				Restart:     sim.RestartSpec{Time: 5 * time.Second},
			}
			job, err := sim.NewJob(spec, sim.Options{Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
				Load: sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return 1000 })})
			require.NoError(t, err)
			require.NoError(t, job.Submit(sim.Submission{}))
			require.NoError(t, job.Advance(2*time.Minute))
			srv := httptest.NewServer(flinkrest.NewHandler(job))
			defer srv.Close()

			// GET /taskmanagers: memoryConfiguration in Flink's names.
			res, err := http.Get(srv.URL + "/taskmanagers")
			require.NoError(t, err)
			var body struct {
				TaskManagers []flink.TaskManagerInfo `json:"taskmanagers"`
			}
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			res.Body.Close()
			m := job.TaskManagerMemory()
			require.Len(t, body.TaskManagers, 2)
			require.Equal(t, &flink.MemoryConfiguration{
				FrameworkHeap: m.FrameworkHeapBytes, TaskHeap: m.TaskHeapBytes, FrameworkOffHeap: m.FrameworkOffHeapBytes,
				TaskOffHeap: m.TaskOffHeapBytes, NetworkMemory: m.NetworkBytes, ManagedMemory: m.ManagedBytes,
				JVMMetaspace: m.MetaspaceBytes, JVMOverhead: m.OverheadBytes, TotalFlinkMemory: m.FlinkBytes(), TotalProcessMemory: m.ProcessBytes,
			}, body.TaskManagers[0].MemoryConfiguration)

			rc, err := flink.New(srv.URL)
			require.NoError(t, err)
			fc := flink.NewCollector(rc, flink.WithClock(job.Now),
				flink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() }))
			w := metrics.NewWindow(5 * time.Minute)
			for range 3 {
				s, err := fc.Collect(context.Background(), "")
				require.NoError(t, err)
				w.AddFlink(s)
				require.NoError(t, job.Advance(30*time.Second))
			}
			snap, _ := w.Snapshot()
			got := snap.TaskManagers.Memory
			require.NotNil(t, got)
			v := job.View()
			tm := v.TaskManagers[0]
			require.EqualValues(t, m.ProcessBytes, got.ProcessBytes)
			require.EqualValues(t, m.NetworkBytes, got.NetworkBytes)
			require.EqualValues(t, m.HeapBytes(), got.HeapBytes)
			require.EqualValues(t, m.TaskHeapBytes, got.TaskHeapBytes)
			require.EqualValues(t, m.OverheadBytes, got.OverheadBytes)
			// Each TaskManager holds 2 of the 4 slots: half the 512 MiB of
			// state, on the heap with the hashmap backend.
			require.NotNil(t, got.HeapUsedBytes)
			require.EqualValues(t, tm.HeapUsed, *got.HeapUsedBytes.Max)
			require.EqualValues(t, tm.HeapUsed, *got.HeapUsedBytes.Avg)
			require.Greater(t, tm.HeapUsed, int64(256<<20))
			require.EqualValues(t, m.HeapBytes(), *got.HeapMaxBytes)
			require.EqualValues(t, tm.MetaspaceUsed, *got.MetaspaceUsedBytes)
			require.EqualValues(t, 0, *got.ManagedUsedBytes)
			require.EqualValues(t, m.ManagedBytes, *got.ManagedTotalBytes)
			require.NotNil(t, got.GCTimeMsPerSecond)
			require.InDelta(t, tm.GCTimeMsPerSecond, float64(*got.GCTimeMsPerSecond.Max), 1e-9)
			require.EqualValues(t, m.NetworkBytes/(32<<10), *got.NetworkSegmentsTotal)
			require.EqualValues(t, tm.NetworkSegmentsUsed, *got.NetworkSegmentsUsed)
			require.Positive(t, tm.NetworkSegmentsUsed)
			require.Equal(t, "hashmap", snap.StateBackend)
			require.Equal(t, version, snap.FlinkVersion)
		})
	}
}
