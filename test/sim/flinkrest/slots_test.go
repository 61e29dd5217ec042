package flinkrest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/promreporter"
)

// A job on Flink 1.18 whose vertices are in two slot-sharing groups: its
// REST API does not say which vertex shares slots with which (no
// vertices[].slotSharingGroupId before 1.20), yet the job holds the slots
// of both groups, Σ over the groups of the widest vertex, more than its
// largest parallelism; /overview, /taskmanagers and the JobManager's
// metrics (over REST and from the Prometheus reporter) say what it really
// holds, as real Flink's do.
func TestSlotsOfAJobInTwoSlotSharingGroups(t *testing.T) {
	for _, version := range []string{"1.18", "1.20"} {
		t.Run(version, func(t *testing.T) {
			spec := sim.JobSpec{
				Name: "telemetry", FlinkVersion: version, ConsumerGroup: "telemetry",
				Topics: []sim.TopicSpec{{Name: "readings", Partitions: 8}},
				Vertices: []sim.VertexSpec{
					{Name: "Source: readings", Parallelism: 4, Capacity: 10000, Selectivity: 1, Topics: []string{"readings"}},
					{Name: "KeyedProcess: sessionize", Parallelism: 16, Capacity: 2000, Selectivity: 1,
						Inputs: []sim.EdgeSpec{{From: "Source: readings", Ship: "HASH"}}},
					{Name: "Async: geo-lookup", Parallelism: 5, Capacity: 4000, Selectivity: 1, SlotSharingGroup: "io",
						Inputs: []sim.EdgeSpec{{From: "KeyedProcess: sessionize", Ship: "REBALANCE"}}},
					{Name: "Sink: alerts", Parallelism: 3, Capacity: 8000, Selectivity: 0, SlotSharingGroup: "io",
						Inputs: []sim.EdgeSpec{{From: "Async: geo-lookup", Ship: "REBALANCE"}}},
				},
				TaskManager: sim.TaskManagerSpec{CPU: 4, Slots: 4},
				Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
				Restart:     sim.RestartSpec{Time: 20 * time.Second},
			}
			load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return 10000 })
			j, err := sim.NewJob(spec, sim.Options{Start: time.Unix(0, 0), Seed: 1, Load: load})
			require.NoError(t, err)
			require.NoError(t, j.Submit(sim.Submission{}))
			require.NoError(t, j.Advance(time.Minute))
			h := NewHandler(j)
			jobID := j.View().Job.ID

			// Slots: default 16 (sessionize) + io 5 (geo-lookup) = 21, on
			// ⌈21/4⌉ = 6 TaskManagers of 4: 24 slots, 3 free.
			var details struct {
				Vertices []map[string]json.RawMessage `json:"vertices"`
			}
			require.NoError(t, json.Unmarshal(get(t, h, "/jobs/"+jobID), &details))
			groups := map[string]bool{}
			for _, v := range details.Vertices {
				g, ok := v["slotSharingGroupId"]
				assert.Equal(t, version != "1.18", ok, "slotSharingGroupId from 1.20 on")
				groups[string(g)] = true
			}
			if version != "1.18" {
				assert.Len(t, groups, 2)
			}

			overview := obj(t, get(t, h, "/overview"))
			assert.Equal(t, json.Number("6"), overview["taskmanagers"])
			assert.Equal(t, json.Number("24"), overview["slots-total"])
			assert.Equal(t, json.Number("3"), overview["slots-available"])

			tms := obj(t, get(t, h, "/taskmanagers"))["taskmanagers"].([]any)
			require.Len(t, tms, 6)
			total, free := 0, 0
			for _, x := range tms {
				tm := x.(map[string]any)
				n, _ := tm["slotsNumber"].(json.Number).Int64()
				f, _ := tm["freeSlots"].(json.Number).Int64()
				assert.Equal(t, int64(4), n)
				total, free = total+int(n), free+int(f)
			}
			assert.Equal(t, 24, total)
			assert.Equal(t, 3, free, "21 slots in use")

			assert.JSONEq(t, `[{"id":"numRegisteredTaskManagers","value":"6"},{"id":"taskSlotsAvailable","value":"3"},{"id":"taskSlotsTotal","value":"24"}]`,
				string(get(t, h, "/jobmanager/metrics?get=taskSlotsTotal,taskSlotsAvailable,numRegisteredTaskManagers")))
			prom := strings.Split(string(promreporter.JobManager(j.View())), "\n")
			for _, line := range []string{
				`flink_jobmanager_taskSlotsTotal{host="telemetry_jobmanager",} 24.0`,
				`flink_jobmanager_taskSlotsAvailable{host="telemetry_jobmanager",} 3.0`,
				`flink_jobmanager_numRegisteredTaskManagers{host="telemetry_jobmanager",} 6.0`,
			} {
				assert.Contains(t, prom, line)
			}
		})
	}
}
