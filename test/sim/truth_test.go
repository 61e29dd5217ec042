package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCapacityIsTheBusiestSubtasks(t *testing.T) {
	spec := JobSpec{
		Name: "j", FlinkVersion: "1.20", ConsumerGroup: "g",
		Topics: []TopicSpec{{Name: "t", Partitions: 4, Weights: []float64{4, 2, 1, 1}}},
		Vertices: []VertexSpec{
			{Name: "src", Parallelism: 2, Capacity: 1000, Selectivity: 1, Topics: []string{"t"}},
			{Name: "keyed", Parallelism: 2, MaxParallelism: 8, Capacity: 500, Selectivity: 1,
				Inputs: []EdgeSpec{{From: "src", Ship: "HASH"}}},
			{Name: "map", Parallelism: 2, Capacity: 300, Selectivity: 0, USL: USLSpec{Sigma: 0.1},
				Inputs: []EdgeSpec{{From: "keyed", Ship: "REBALANCE"}}},
		},
		TaskManager: TaskManagerSpec{CPU: 1, Slots: 2},
		Checkpoints: CheckpointSpec{Interval: time.Minute},
		Restart:     RestartSpec{Time: time.Second},
	}
	j, err := NewJob(spec, Options{})
	require.NoError(t, err)
	src, _ := j.VertexID("src")
	keyed, _ := j.VertexID("keyed")
	mp, _ := j.VertexID("map")

	// Source at p=4: every reader owns one partition; the busiest has the
	// weight-4 partition, 4/8 = 1/2 of the records: 1000 / (1/2) = 2000.
	c, ok := j.Capacity(src, 4, 1, nil)
	require.True(t, ok)
	assert.InDelta(t, 2000, c, 1e-9)
	// With 2 slots on 1 core each subtask has half a core: 1000.
	c, _ = j.Capacity(src, 4, 2, nil)
	assert.InDelta(t, 1000, c, 1e-9)

	// Keyed, uniform keys: 8 key groups over 3 subtasks → 3,3,2: the
	// busiest owns 3/8: 500 / (3/8) = 1333.3.
	c, _ = j.Capacity(keyed, 3, 1, nil)
	assert.InDelta(t, 500*8.0/3, c, 1e-9)
	// More subtasks than key groups cannot help: p=20 is p=8.
	c20, _ := j.Capacity(keyed, 20, 1, nil)
	c8, _ := j.Capacity(keyed, 8, 1, nil)
	assert.InDelta(t, c8, c20, 1e-9)

	// USL σ=0.1 at p=3: per subtask 300/(1+0.2) = 250, even share: 750.
	c, _ = j.Capacity(mp, 3, 1, nil)
	assert.InDelta(t, 750, c, 1e-9)

	_, ok = j.Capacity("nope", 1, 1, nil)
	assert.False(t, ok)
	assert.Len(t, j.Truth(), 3)
	assert.Equal(t, []string{src}, j.Truth()[1].Inputs)
}
