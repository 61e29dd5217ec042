package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On Flink 2 an in-place rescale waits for the next completed checkpoint
// (after a 30 s cooldown since the job started running), then restarts
// from it: less is read twice than on Flink 1.20, which restarts at once
// from the last checkpoint.
func TestFlink2RescalesOnTheNextCheckpoint(t *testing.T) {
	replayed := map[string]int64{}
	for _, version := range []string{"1.20", "2.1"} {
		spec := saturating(0)
		spec.FlinkVersion = version
		j, err := NewJob(spec, Options{Start: t0, Seed: 1, Load: afterDeploy(spec, 500), Kafka: NewMemoryKafka(spec.Topics), Step: 100 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, j.Submit(Submission{TaskManagers: 2}))
		// Running from 15 s, checkpoints every 10 s from 25 s: at 163 s
		// the last completed at 155 s, the next is due at 165 s.
		require.NoError(t, j.Advance(163*time.Second))
		v := j.View()
		require.Equal(t, "RUNNING", v.Job.State)
		keyed, _ := j.VertexID("KeyedProcess")
		req, err := j.ResourceRequirements(v.Job.ID)
		require.NoError(t, err)
		req[keyed] = Bounds{LowerBound: 1, UpperBound: 3}
		require.NoError(t, j.UpdateResourceRequirements(v.Job.ID, req))
		got, err := j.ResourceRequirements(v.Job.ID)
		require.NoError(t, err)
		assert.Equal(t, 3, got[keyed].UpperBound, "the new requirements are the job's at once")

		require.NoError(t, j.Advance(time.Second))
		if version == "1.20" {
			assert.Equal(t, "RESTARTING", j.View().Job.State, "Flink 1.20 restarts at once")
		} else {
			assert.Equal(t, "RUNNING", j.View().Job.State, "Flink 2 runs on until a checkpoint completes")
			assert.Equal(t, 2, vertex(j.View(), "KeyedProcess").Parallelism)
			require.NoError(t, j.Advance(2*time.Second))
			assert.Equal(t, "RESTARTING", j.View().Job.State, "the checkpoint of 165 s completed")
		}
		require.NoError(t, j.Advance(time.Minute))
		assert.Equal(t, 3, vertex(j.View(), "KeyedProcess").Parallelism)
		replayed[version] = j.Stats().Reprocessed
	}
	assert.InDelta(t, 8*500, replayed["1.20"], 100, "8 s of reads since the last checkpoint")
	assert.Less(t, replayed["2.1"], int64(500))
}

// A Flink 2 rescale requested within the cooldown waits for it, and one
// whose checkpoints never complete goes ahead after three intervals.
func TestFlink2RescaleCooldownAndMaximumDelay(t *testing.T) {
	spec := saturating(0)
	spec.FlinkVersion = "2.1"
	spec.Checkpoints.Timeout = time.Second
	spec.Checkpoints.Base = 2 * time.Second // every checkpoint expires
	j, err := NewJob(spec, Options{Start: t0, Seed: 1, Load: afterDeploy(spec, 500), Kafka: NewMemoryKafka(spec.Topics), Step: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, j.Submit(Submission{TaskManagers: 2, Session: true}))
	require.NoError(t, j.Advance(15*time.Second)) // running since 10 s
	v := j.View()
	require.Equal(t, "RUNNING", v.Job.State)
	keyed, _ := j.VertexID("KeyedProcess")
	req, err := j.ResourceRequirements(v.Job.ID)
	require.NoError(t, err)
	req[keyed] = Bounds{LowerBound: 1, UpperBound: 3}
	require.NoError(t, j.UpdateResourceRequirements(v.Job.ID, req))
	// The cooldown ends at 40 s, the maximum delay 30 s later.
	require.NoError(t, j.Advance(54*time.Second))
	assert.Equal(t, "RUNNING", j.View().Job.State)
	assert.Equal(t, 2, vertex(j.View(), "KeyedProcess").Parallelism)
	require.NoError(t, j.Advance(2*time.Second))
	assert.Equal(t, "RESTARTING", j.View().Job.State)
}

func TestInPlaceTaskManagers(t *testing.T) {
	for _, c := range []struct {
		name              string
		held, need, slots int
		want              int
	}{
		{"scale-up: what it needs", 1, 2, 8, 2},
		// real-step-down on Flink 1.20.3: 8 → 4 slots on 2 TaskManagers
		// of 4 keeps both (2 + 2 slots in use), 4 → 3 too.
		{"scale-down keeps TaskManagers the slots spread over", 2, 1, 4, 2},
		{"three slots on two TaskManagers", 2, 1, 3, 2},
		// 4 TaskManagers, 2 slots left: two TaskManagers hold none.
		{"fewer slots than TaskManagers", 4, 1, 2, 2},
		{"no change", 3, 3, 10, 3},
	} {
		assert.Equal(t, c.want, inPlaceTaskManagers(c.held, c.need, c.slots), c.name)
	}
}
