package flinkprom

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
)

func f64(x float64) *float64 { return &x }

func TestMergeRule(t *testing.T) {
	rest := metrics.FlinkSample{
		At: time.Unix(100, 0), JobID: "j", JobName: "orders-agg", State: "RUNNING", RunningSince: time.Unix(50, 0),
		Vertices: []metrics.VertexSample{
			{ID: "src", Name: "Source: orders", Parallelism: 2, MaxParallelism: 128,
				BusyTimeMsPerSecond: &metrics.Agg{Avg: 1, Max: 2}},
			{ID: "map", Name: "Map", Parallelism: 3, Inputs: []scaling.Input{{ID: "src", ShipStrategy: "REBALANCE"}}},
		},
		Checkpoints: &metrics.CheckpointSample{Interval: time.Minute, Timeout: time.Hour, Completed: 5},
		Missing: []string{
			"src: backPressuredTimeMsPerSecond", "src: numRecordsInPerSecond: aggregated metrics returned []",
			"src: pendingRecords", "map: busyTimeMsPerSecond", "kafka: something",
		},
	}
	prom := metrics.FlinkSample{
		JobID: "j", JobName: "orders_agg",
		Vertices: []metrics.VertexSample{
			{ID: "src", Name: "Source:_orders", Parallelism: 2,
				BusyTimeMsPerSecond:          &metrics.Agg{Avg: 10, Max: 20},
				BackPressuredTimeMsPerSecond: &metrics.Agg{Avg: 30, Max: 40},
				NumRecordsInPerSecond:        f64(1000),
				PendingRecords:               f64(7),
				Partitions:                   []metrics.PartitionOwner{{Topic: "orders", Partition: 0, CurrentOffset: 5, CommittedOffset: 4}}},
			{ID: "map", Name: "Map", Parallelism: 2, BusyTimeMsPerSecond: &metrics.Agg{Avg: 1, Max: 1}},
			{ID: "gone", Parallelism: 1},
		},
		Checkpoints: &metrics.CheckpointSample{Completed: 6, LastDuration: time.Second},
		Missing: []string{
			"taskmanager http://tm-2:9249: HTTP 500", "src: subtasks: 2 reported; a TaskManager could not be scraped",
			"map: subtasks: 2 reported; a TaskManager could not be scraped", "src: numRecordsOutPerSecond: 1 of 2 subtasks reported",
			"gone: busyTimeMsPerSecond",
		},
	}

	m := Merge(rest, prom)
	assert.Equal(t, "orders-agg", m.JobName, "REST's")
	assert.Equal(t, rest.RunningSince, m.RunningSince)
	assert.Len(t, m.Vertices, 2, "REST's vertices only")
	src, mp := m.Vertices[0], m.Vertices[1]
	assert.Equal(t, "Source: orders", src.Name)
	assert.Equal(t, 128, src.MaxParallelism)
	assert.Equal(t, &metrics.Agg{Avg: 1, Max: 2}, src.BusyTimeMsPerSecond, "REST's value wins")
	assert.Equal(t, &metrics.Agg{Avg: 30, Max: 40}, src.BackPressuredTimeMsPerSecond, "Prometheus fills the gap")
	assert.Equal(t, 1000.0, *src.NumRecordsInPerSecond)
	assert.Equal(t, 7.0, *src.PendingRecords)
	assert.Len(t, src.Partitions, 1)
	assert.Nil(t, mp.BusyTimeMsPerSecond, "2 of 3 subtasks: not used")
	assert.Equal(t, rest.Vertices[1].Inputs, mp.Inputs)
	assert.Equal(t, 5, m.Checkpoints.Completed, "REST's checkpoints")
	assert.ElementsMatch(t, []string{
		"map: busyTimeMsPerSecond", "kafka: something",
		"taskmanager http://tm-2:9249: HTTP 500", // kept: map is incomplete
		"src: numRecordsOutPerSecond: 1 of 2 subtasks reported",
		"map: subtasks: prometheus reported 2 of 3",
	}, m.Missing)
	// The inputs are not modified.
	assert.Equal(t, &metrics.Agg{Avg: 1, Max: 2}, rest.Vertices[0].BusyTimeMsPerSecond)
	assert.Nil(t, rest.Vertices[0].BackPressuredTimeMsPerSecond)

	p := MergeWith(rest, prom, MergeOptions{PreferPrometheus: true})
	assert.Equal(t, &metrics.Agg{Avg: 10, Max: 20}, p.Vertices[0].BusyTimeMsPerSecond, "Prometheus' value wins")
	assert.Equal(t, metrics.CheckpointSample{Interval: time.Minute, Timeout: time.Hour, Completed: 6, LastDuration: time.Second}, *p.Checkpoints)

	// Without REST checkpoints, Prometheus' are taken.
	rest.Checkpoints = nil
	rest.Missing = append(rest.Missing, "checkpoints: HTTP 503")
	prom.Vertices[1].Parallelism = 3
	m = Merge(rest, prom)
	assert.Equal(t, 6, m.Checkpoints.Completed)
	assert.NotContains(t, m.Missing, "checkpoints: HTTP 503")
	assert.Equal(t, &metrics.Agg{Avg: 1, Max: 1}, m.Vertices[1].BusyTimeMsPerSecond, "complete now")
	assert.NotContains(t, m.Missing, "taskmanager http://tm-2:9249: HTTP 500", "it cost nothing")
	assert.NotContains(t, m.Missing, "map: busyTimeMsPerSecond")
}

func TestMergeMetricPrefixes(t *testing.T) {
	m := newMissing([]string{"v: numRecordsIn", "v: numRecordsInPerSecond", "v: numRecordsIn: why"})
	m.drop("v: numRecordsIn", "numRecordsIn")
	assert.Equal(t, []string{"v: numRecordsInPerSecond"}, m.kept())
}

// The cluster's slots are a job fact: REST's (its /overview is live),
// else the reporter's, whatever PreferPrometheus says; neither is unknown.
func TestMergeSlots(t *testing.T) {
	restSlots, promSlots := &metrics.SlotsSample{Total: 8, Available: 2}, &metrics.SlotsSample{Total: 8, Available: 3}
	for _, tc := range []struct {
		name       string
		rest, prom *metrics.SlotsSample
		want       *metrics.SlotsSample
	}{
		{"both: REST's", restSlots, promSlots, restSlots},
		{"REST's only", restSlots, nil, restSlots},
		{"the reporter's only", nil, promSlots, promSlots},
		{"neither: unknown", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest := metrics.FlinkSample{JobID: "j", Slots: tc.rest}
			prom := metrics.FlinkSample{JobID: "j", Slots: tc.prom}
			assert.Equal(t, tc.want, Merge(rest, prom).Slots)
			assert.Equal(t, tc.want, MergeWith(rest, prom, MergeOptions{PreferPrometheus: true}).Slots)
		})
	}
	// Slot sharing, unknown before Flink 1.20, is REST's say: the reporter
	// knows no job graph.
	assert.True(t, Merge(metrics.FlinkSample{JobID: "j", SlotSharingUnknown: true}, metrics.FlinkSample{JobID: "j"}).SlotSharingUnknown)
	assert.False(t, Merge(metrics.FlinkSample{JobID: "j"}, metrics.FlinkSample{JobID: "j", SlotSharingUnknown: true}).SlotSharingUnknown)
}
