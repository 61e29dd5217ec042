package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// saturating is a source feeding a keyed vertex that can take 800 of the
// 1000 records/s arriving, with 21-byte records (the testbed's).
func saturating(recordBytes float64) JobSpec {
	return JobSpec{
		Name: "saturating", FlinkVersion: "1.20", ConsumerGroup: "saturating", Scheduler: "adaptive", RecordBytes: recordBytes,
		Topics: []TopicSpec{{Name: "events", Partitions: 4}},
		Vertices: []VertexSpec{
			{Name: "Source: events", Parallelism: 2, Capacity: 1000, Selectivity: 1, Topics: []string{"events"}},
			{Name: "KeyedProcess", Parallelism: 2, MaxParallelism: 128, Capacity: 400, Selectivity: 1, StateBytes: 8 << 20,
				Inputs: []EdgeSpec{{From: "Source: events", Ship: "HASH"}}},
		},
		TaskManager: TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: CheckpointSpec{Interval: 10 * time.Second, Timeout: 2 * time.Minute, Throughput: 100 << 20},
		Restart:     RestartSpec{Time: 10 * time.Second, TaskManagerStartup: 5 * time.Second},
	}
}

func TestNetworkBuffersFollowFlinkDefaults(t *testing.T) {
	j, _ := start(t, saturating(21), nil)
	r := j.run
	keyed := j.g.vertices[1]
	// 2 source subtasks into each keyed subtask over one HASH gate: 2 × 2
	// exclusive + 8 floating, and from each sender's pool of 2 × 2 + 8 its
	// share for this subpartition, 6.
	assert.InDelta(t, 4+8+2*6, r.networkBuffers(keyed, 0), 1e-9)
	assert.InDelta(t, 24*32768/21.0, r.tasks[keyed.id][0].bufCap, 1e-6)
	assert.Equal(t, 10.0, senderShare(1), "at most 10 buffers for one subpartition")
	assert.InDelta(t, 2+8/3.0, senderShare(3), 1e-9)

	j2, _ := start(t, saturating(0), nil)
	assert.InDelta(t, 400, j2.run.tasks[j2.g.vertices[1].id][0].bufCap, 1e-9, "without recordBytes: one second of capacity")
}

// With Flink's buffers and small records, the records a saturated vertex
// cannot take pile up in flight for minutes before its source sees any
// backpressure, and a checkpoint's barrier waits behind them.
func TestSmallRecordsFillTheBuffersBeforeBackpressure(t *testing.T) {
	for _, tc := range []struct {
		recordBytes   float64
		backpressured bool
	}{{21, false}, {0, true}} {
		spec := saturating(tc.recordBytes)
		j, _ := start(t, spec, afterDeploy(spec, 1000))
		require.NoError(t, j.Advance(50*time.Second+2*time.Minute))
		v := j.View()
		src, keyed := vertex(v, "Source: events"), vertex(v, "KeyedProcess")
		read := sum(src, func(s SubtaskView) float64 { return s.SourceNumRecordsInPerSecond })
		bp := maxOf(src, func(s SubtaskView) float64 { return s.BackPressuredTimeMsPerSecond })
		if tc.backpressured {
			assert.InDelta(t, 800, read, 40, "one second of buffer: the source reads what the keyed vertex takes")
			assert.Greater(t, bp, 300.0)
			continue
		}
		assert.InDelta(t, 1000, read, 40, "recordBytes %g: the source reads everything", tc.recordBytes)
		assert.Less(t, bp, 1.0)
		assert.InDelta(t, 800, sum(keyed, func(s SubtaskView) float64 { return s.NumRecordsInPerSecond }), 40)
		st := j.Stats()
		assert.InDelta(t, 200*120, st.InFlight, 2000, "200 records/s in flight for 2 minutes")
		// The last checkpoint's barrier waited behind ~20,000 records at
		// 800/s: far more than the 80 ms its 8 MiB take.
		lc := v.Job.Checkpoints.LatestCompleted
		require.NotNil(t, lc)
		assert.Greater(t, lc.EndToEndDurationMs, int64(15_000))
		assert.Equal(t, int64(8<<20), lc.CheckpointedSize, "hashmap checkpoints are full")
	}
}

func TestSessionSubmissionStartsNoTaskManager(t *testing.T) {
	spec := saturating(0)
	for _, session := range []bool{false, true} {
		j, err := NewJob(spec, Options{Start: t0, Seed: 1, Kafka: NewMemoryKafka(spec.Topics)})
		require.NoError(t, err)
		require.NoError(t, j.Submit(Submission{Session: session}))
		want := spec.Restart.Time
		if !session {
			want += spec.Restart.TaskManagerStartup
		}
		require.NoError(t, j.Advance(want-time.Second))
		assert.NotEqual(t, "RUNNING", j.View().Job.State, "session %v", session)
		require.NoError(t, j.Advance(time.Second))
		assert.Equal(t, "RUNNING", j.View().Job.State, "session %v", session)
	}
}
