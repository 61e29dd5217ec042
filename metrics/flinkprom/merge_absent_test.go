package flinkprom

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
)

// mergeBoth merges a REST and a Prometheus sample with and without
// PreferPrometheus.
func mergeBoth(rest, prom metrics.FlinkSample) (def, prefer metrics.FlinkSample) {
	return Merge(rest, prom), MergeWith(rest, prom, MergeOptions{PreferPrometheus: true})
}

// TestMergeAbsentIsNotZero: a vertex value one side lacks (nil) never
// replaces the other's, whichever side lacks it and whichever is
// preferred; a 0 is a value.
func TestMergeAbsentIsNotZero(t *testing.T) {
	fields := map[string]func(*metrics.VertexSample) **float64{
		mRecordsOut:     func(v *metrics.VertexSample) **float64 { return &v.NumRecordsOut },
		mRecordsOutRate: func(v *metrics.VertexSample) **float64 { return &v.NumRecordsOutPerSecond },
		mPending:        func(v *metrics.VertexSample) **float64 { return &v.PendingRecords },
	}
	for _, tc := range []struct {
		name              string
		metric            string
		rest, prom        *float64
		restMiss          []string
		promMiss          []string
		wantDef, wantPref *float64
		wantMissing       []string // in both modes
	}{{
		name: "the reporter has no numRecordsOut family: REST's 1000 stands", metric: mRecordsOut,
		rest: f64(1000), prom: nil, promMiss: []string{"src: numRecordsOut: 0 of 2 subtasks reported"},
		wantDef: f64(1000), wantPref: f64(1000),
	}, {
		name: "REST lacks numRecordsOut, the reporter has 1000", metric: mRecordsOut,
		rest: nil, restMiss: []string{"src: numRecordsOut: not reported"}, prom: f64(1000),
		wantDef: f64(1000), wantPref: f64(1000),
	}, {
		name: "neither has numRecordsOut: nil, and both sides say why", metric: mRecordsOut,
		restMiss: []string{"src: numRecordsOut: not reported"}, promMiss: []string{"src: numRecordsOut: 0 of 2 subtasks reported"},
		wantMissing: []string{"src: numRecordsOut: not reported", "src: numRecordsOut: 0 of 2 subtasks reported"},
	}, {
		name: "a non-Kafka source has no pendingRecords on either side: nil, never 0", metric: mPending,
		restMiss: []string{"src: pendingRecords: not registered yet"}, promMiss: []string{"src: pendingRecords: 0 of 2 subtasks reported"},
		wantMissing: []string{"src: pendingRecords: not registered yet", "src: pendingRecords: 0 of 2 subtasks reported"},
	}, {
		name: "pendingRecords: REST's 48210, the reporter's not registered yet", metric: mPending,
		rest: f64(48210), promMiss: []string{"src: pendingRecords: 1 of 2 subtasks reported"},
		wantDef: f64(48210), wantPref: f64(48210),
	}, {
		name: "pendingRecords: REST's not registered yet, the reporter's 48210", metric: mPending,
		restMiss: []string{"src: pendingRecords: not registered yet"}, prom: f64(48210),
		wantDef: f64(48210), wantPref: f64(48210),
	}, {
		name: "both have the rate: REST's 10 by default, the reporter's 20 when preferred", metric: mRecordsOutRate,
		rest: f64(10), prom: f64(20),
		wantDef: f64(10), wantPref: f64(20),
	}, {
		name: "0 is a value: REST's 0 by default, the reporter's 5 when preferred", metric: mRecordsOutRate,
		rest: f64(0), prom: f64(5),
		wantDef: f64(0), wantPref: f64(5),
	}, {
		name: "0 is a value: the reporter's 0 when preferred over REST's 5", metric: mRecordsOutRate,
		rest: f64(5), prom: f64(0),
		wantDef: f64(5), wantPref: f64(0),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rv := metrics.VertexSample{ID: "src", Parallelism: 2}
			pv := metrics.VertexSample{ID: "src", Parallelism: 2}
			*fields[tc.metric](&rv), *fields[tc.metric](&pv) = tc.rest, tc.prom
			rest := metrics.FlinkSample{JobID: "j", Vertices: []metrics.VertexSample{rv}, Missing: tc.restMiss}
			prom := metrics.FlinkSample{JobID: "j", Vertices: []metrics.VertexSample{pv}, Missing: tc.promMiss}
			def, pref := mergeBoth(rest, prom)
			assert.Equal(t, tc.wantDef, *fields[tc.metric](&def.Vertices[0]), "default")
			assert.Equal(t, tc.wantPref, *fields[tc.metric](&pref.Vertices[0]), "PreferPrometheus")
			assert.ElementsMatch(t, tc.wantMissing, def.Missing, "default")
			assert.ElementsMatch(t, tc.wantMissing, pref.Missing, "PreferPrometheus")
		})
	}
}

// TestMergeCheckpointsFieldByField: a checkpoint gauge one side lacks
// (named in its Missing; the field then zero) never replaces the other's.
func TestMergeCheckpointsFieldByField(t *testing.T) {
	restCP := func() *metrics.CheckpointSample {
		return &metrics.CheckpointSample{Interval: time.Minute, Timeout: 10 * time.Minute, Completed: 5, Failed: 1, InProgress: 1, LastDuration: 2 * time.Second, LastStateSize: 100}
	}
	promCP := func() *metrics.CheckpointSample {
		return &metrics.CheckpointSample{Completed: 6, Failed: 2, InProgress: 0, LastDuration: 3 * time.Second, LastStateSize: 200}
	}
	with := func(cp *metrics.CheckpointSample, f func(*metrics.CheckpointSample)) *metrics.CheckpointSample {
		f(cp)
		return cp
	}
	for _, tc := range []struct {
		name               string
		rest, prom         *metrics.CheckpointSample
		restMiss, promMiss []string
		wantDef, wantPref  *metrics.CheckpointSample
		missDef, missPref  []string
	}{{
		name: "the JobManager was not scraped: REST's, whole",
		rest: restCP(), promMiss: []string{"checkpoints: no JobManager target"},
		wantDef: restCP(), wantPref: restCP(),
	}, {
		name: "the JobManager target failed: REST's, and the failure costs nothing",
		rest: restCP(), promMiss: []string{"jobmanager http://jm:9249: HTTP 503"},
		wantDef: restCP(), wantPref: restCP(),
	}, {
		name:     "REST's statistics failed: the reporter's (interval and timeout unknown: 0)",
		restMiss: []string{"checkpoints: HTTP 503"}, prom: promCP(),
		wantDef: promCP(), wantPref: promCP(),
	}, {
		name:     "REST's statistics and interval failed: the reporter's, and the interval stays missing",
		restMiss: []string{"checkpoints: HTTP 503", "checkpoints: interval: HTTP 503; HTTP 503"}, prom: promCP(),
		wantDef: promCP(), wantPref: promCP(),
		missDef: []string{"checkpoints: interval: HTTP 503; HTTP 503"}, missPref: []string{"checkpoints: interval: HTTP 503; HTTP 503"},
	}, {
		name: "the reporter lacks numberOfFailedCheckpoints: REST's Failed 1 stands when preferred",
		rest: restCP(), prom: with(promCP(), func(c *metrics.CheckpointSample) { c.Failed = 0 }),
		promMiss: []string{"checkpoints: numberOfFailedCheckpoints: its metric family on jobmanager jm did not parse"},
		wantDef:  restCP(),
		wantPref: with(restCP(), func(c *metrics.CheckpointSample) {
			c.Completed, c.InProgress, c.LastDuration, c.LastStateSize = 6, 0, 3*time.Second, 200
		}),
	}, {
		name: "no checkpoint completed yet on the reporter (-1): REST's last duration and size stand when preferred",
		rest: restCP(), prom: with(promCP(), func(c *metrics.CheckpointSample) { c.LastDuration, c.LastStateSize = 0, 0 }),
		promMiss: []string{"checkpoints: lastCheckpointDuration: -1 (none yet)", "checkpoints: lastCheckpointSize: -1 (none yet)"},
		wantDef:  restCP(),
		wantPref: with(restCP(), func(c *metrics.CheckpointSample) { c.Completed, c.Failed, c.InProgress = 6, 2, 0 }),
	}, {
		name:     "REST has no completed checkpoint yet, the reporter has: its last duration and size fill the gap",
		rest:     with(restCP(), func(c *metrics.CheckpointSample) { c.LastDuration, c.LastStateSize = 0, 0 }),
		restMiss: []string{"checkpoints: lastDuration: no completed checkpoint yet"}, prom: promCP(),
		wantDef:  with(restCP(), func(c *metrics.CheckpointSample) { c.LastDuration, c.LastStateSize = 3*time.Second, 200 }),
		wantPref: with(promCP(), func(c *metrics.CheckpointSample) { c.Interval, c.Timeout = time.Minute, 10*time.Minute }),
	}, {
		name:     "neither has a completed checkpoint: zero, and both sides say so",
		rest:     with(restCP(), func(c *metrics.CheckpointSample) { c.LastDuration, c.LastStateSize = 0, 0 }),
		restMiss: []string{"checkpoints: lastDuration: no completed checkpoint yet"},
		prom:     with(promCP(), func(c *metrics.CheckpointSample) { c.LastDuration, c.LastStateSize = 0, 0 }),
		promMiss: []string{"checkpoints: lastCheckpointDuration: -1 (none yet)", "checkpoints: lastCheckpointSize: -1 (none yet)"},
		wantDef:  with(restCP(), func(c *metrics.CheckpointSample) { c.LastDuration, c.LastStateSize = 0, 0 }),
		wantPref: with(restCP(), func(c *metrics.CheckpointSample) {
			c.Completed, c.Failed, c.InProgress, c.LastDuration, c.LastStateSize = 6, 2, 0, 0, 0
		}),
		missDef:  []string{"checkpoints: lastDuration: no completed checkpoint yet", "checkpoints: lastCheckpointDuration: -1 (none yet)", "checkpoints: lastCheckpointSize: -1 (none yet)"},
		missPref: []string{"checkpoints: lastDuration: no completed checkpoint yet", "checkpoints: lastCheckpointDuration: -1 (none yet)", "checkpoints: lastCheckpointSize: -1 (none yet)"},
	}, {
		name:     "neither has statistics: none, and both sides say why",
		restMiss: []string{"checkpoints: HTTP 503"}, promMiss: []string{"checkpoints: no JobManager target"},
		missDef: []string{"checkpoints: HTTP 503", "checkpoints: no JobManager target"}, missPref: []string{"checkpoints: HTTP 503", "checkpoints: no JobManager target"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rest := metrics.FlinkSample{JobID: "j", Checkpoints: tc.rest, Missing: tc.restMiss}
			prom := metrics.FlinkSample{JobID: "j", Checkpoints: tc.prom, Missing: tc.promMiss}
			def, pref := mergeBoth(rest, prom)
			assert.Equal(t, tc.wantDef, def.Checkpoints, "default")
			assert.Equal(t, tc.wantPref, pref.Checkpoints, "PreferPrometheus")
			assert.ElementsMatch(t, tc.missDef, def.Missing, "default")
			assert.ElementsMatch(t, tc.missPref, pref.Missing, "PreferPrometheus")
		})
	}
}

// TestMergeOffsetsSentinels: REST passes Flink's offset gauges through; a
// negative one (no fetch or commit yet) is -1, unknown, after the merge,
// whichever side's partitions are taken.
func TestMergeOffsetsSentinels(t *testing.T) {
	restParts := []metrics.PartitionOwner{
		{Topic: "orders_v1", Partition: 0, Subtask: 0, CurrentOffset: 100, CommittedOffset: -915623761776},
		{Topic: "orders_v1", Partition: 1, Subtask: 1, CurrentOffset: -1, CommittedOffset: 50},
	}
	normalized := []metrics.PartitionOwner{
		{Topic: "orders_v1", Partition: 0, Subtask: 0, CurrentOffset: 100, CommittedOffset: -1},
		{Topic: "orders_v1", Partition: 1, Subtask: 1, CurrentOffset: -1, CommittedOffset: 50},
	}
	promParts := []metrics.PartitionOwner{
		{Topic: "orders_v1", Partition: 0, Subtask: 0, CurrentOffset: 101, CommittedOffset: -1},
		{Topic: "orders_v1", Partition: 1, Subtask: 1, CurrentOffset: 7, CommittedOffset: 50},
	}
	for _, tc := range []struct {
		name              string
		rest, prom        []metrics.PartitionOwner
		promParallelism   int
		wantDef, wantPref []metrics.PartitionOwner
	}{
		{"REST's only: its sentinel is -1", restParts, nil, 2, normalized, normalized},
		{"both: REST's (sentinel -1) by default, the reporter's when preferred", restParts, promParts, 2, normalized, promParts},
		{"REST lacks them: the reporter's", nil, promParts, 2, promParts, promParts},
		{"the reporter's vertex is incomplete: REST's, still -1", restParts, promParts, 1, normalized, normalized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest := metrics.FlinkSample{Vertices: []metrics.VertexSample{{ID: "src", Parallelism: 2, Partitions: tc.rest}}}
			prom := metrics.FlinkSample{Vertices: []metrics.VertexSample{{ID: "src", Parallelism: tc.promParallelism, Partitions: tc.prom}}}
			def, pref := mergeBoth(rest, prom)
			assert.Equal(t, tc.wantDef, def.Vertices[0].Partitions, "default")
			assert.Equal(t, tc.wantPref, pref.Vertices[0].Partitions, "PreferPrometheus")
		})
	}
	require.Equal(t, int64(-915623761776), restParts[0].CommittedOffset, "the input is not modified")
}

func TestMergeKeepsDropped(t *testing.T) {
	rest := metrics.FlinkSample{Dropped: []string{"a"}}
	prom := metrics.FlinkSample{Dropped: []string{"taskmanager http://tm:9249: family x skipped: line 3: …", "a"}}
	assert.Equal(t, []string{"a", "taskmanager http://tm:9249: family x skipped: line 3: …"}, Merge(rest, prom).Dropped)
}
