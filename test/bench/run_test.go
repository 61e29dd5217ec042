package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func library(t testing.TB, name string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(filepath.Join("..", "scenarios", name+".yaml"))
	require.NoError(t, err)
	return s
}

// The step scenario under flinkscale and under no autoscaler at all: the
// run accounts every record, and the numbers tell the two apart.
func TestRunStepScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-hour scenario")
	}
	s := library(t, "step-up-3x")
	ctx := context.Background()
	fs, err := Run(ctx, s, NewFlinkscale(), Options{})
	require.NoError(t, err)
	st, err := Run(ctx, s, Static{}, Options{})
	require.NoError(t, err)
	t.Logf("flinkscale: %+v", summary(fs))
	t.Logf("static: %+v", summary(st))
	for _, r := range []*Result{fs, st} {
		assert.Zero(t, r.RecordsLost, r.Policy)
	}
	assert.Zero(t, st.Rescales)
	assert.Positive(t, fs.Rescales)
	assert.Less(t, fs.OverSLO, st.OverSLO)
	assert.Greater(t, fs.SlotHours, st.SlotHours, "scaling up costs slots")
}

func summary(r *Result) map[string]any {
	return map[string]any{"rescales": r.Rescales, "overSLO": r.OverSLO, "maxLagS": r.MaxLagSeconds, "slotH": r.SlotHours,
		"converge": r.Converge, "events": len(r.Events), "lost": r.RecordsLost}
}

// scripted asks for one parallelism at its first observation.
type scripted struct {
	to    map[string]int
	asked bool
}

func (p *scripted) Name() string            { return "scripted" }
func (p *scripted) Interval() time.Duration { return 10 * time.Minute }
func (p *scripted) Rescaled(Rescale)        {}
func (p *scripted) Observe(Observation) *Plan {
	if p.asked {
		return nil
	}
	p.asked = true
	return &Plan{Parallelism: p.to}
}

// A run holds whole TaskManagers: its slot-hours count their slots, idle
// ones included, and its used slot-hours the slots its parallelism
// occupies, through a rescale.
func TestRunCountsWholeTaskManagers(t *testing.T) {
	// One vertex at 3 subtasks on TaskManagers of 2 slots and 2 cores: 3
	// slots used, ⌈3/2⌉ = 2 TaskManagers = 4 slots and 4 cores held.
	s := parse(t, oneVertex("tms", "5m", "default", 8, 3, 2, 2, 1000, 1000))
	ctx := context.Background()
	st, err := Run(ctx, s, Static{}, Options{})
	require.NoError(t, err)
	// 2 h: 3 × 2 = 6 used, 4 × 2 = 8 held, 2 TaskManagers × 2 cores × 2 h = 8.
	assert.InDelta(t, 6, st.UsedSlotHours, 1e-9)
	assert.InDelta(t, 8, st.SlotHours, 1e-9)
	assert.InDelta(t, 8, st.CoreHours, 1e-9)
	assert.Equal(t, 3, st.Timeline[0].UsedSlots)
	assert.Equal(t, 4, st.Timeline[0].Slots)

	// Rescaled to 5 at 10 min: 5 used, 3 TaskManagers = 6 slots held
	// from the restart on; before it 3 and 4. Used slot-hours lie between
	// 3 × 2 and 5 × 2, and the idle slot is the difference between held
	// and used: 1 × 2 h throughout.
	id, _ := job(t, s).VertexID("Source: s -> Sink")
	sc, err := Run(ctx, s, &scripted{to: map[string]int{id: 5}}, Options{})
	require.NoError(t, err)
	require.Len(t, sc.Events, 1)
	last := sc.Timeline[len(sc.Timeline)-1]
	assert.Equal(t, 5, last.UsedSlots)
	assert.Equal(t, 6, last.Slots)
	assert.Greater(t, sc.UsedSlotHours, 6.0)
	assert.Less(t, sc.UsedSlotHours, 10.0)
	assert.InDelta(t, 2, sc.SlotHours-sc.UsedSlotHours, 0.02, "one idle slot, give or take the restart's seconds")
}

// twoGroups is a job on Flink 1.18 (no slotSharingGroupId in its REST API)
// whose vertices are in two slot-sharing groups: it holds the slots of
// both, Σ over the groups of the widest vertex.
func twoGroups(scheduler string, keyed, async int) string {
	return fmt.Sprintf(`
name: two-groups
duration: 40m
job:
  flinkVersion: "1.18"
  scheduler: %s
  topics:
    - {name: readings, partitions: 8}
  vertices:
    - {name: "Source: readings", parallelism: 4, capacity: 10000, selectivity: 1, topics: [readings]}
    - {name: "KeyedProcess: sessionize", parallelism: %d, capacity: 2000, selectivity: 1, inputs: [{from: "Source: readings", ship: HASH}]}
    - {name: "Async: geo-lookup", parallelism: %d, capacity: 4000, selectivity: 0, slotSharingGroup: io, inputs: [{from: "KeyedProcess: sessionize", ship: REBALANCE}]}
  taskManager: {cpu: 4, slots: 4}
  checkpoints: {interval: 30s, base: 1s}
  restart: {time: 60s, taskManagerStartup: 30s}
load:
  - topic: readings
    segments: [{kind: constant, rate: 5000}]
`, scheduler, keyed, async)
}

// A plan names parallelism, never TaskManagers: Flink starts what the
// job's slots need, per slot-sharing group its widest vertex, however a
// policy counted them (on Flink 1.18 it cannot see the groups), and the
// run bills what the job holds.
func TestRunHoldsWhatTheSlotsNeed(t *testing.T) {
	ctx := context.Background()

	// Savepoint and restart: 8 + 3 = 11 slots (3 TaskManagers of 4) to
	// 16 + 5 = 21 (6 TaskManagers, 24 slots), though the largest
	// parallelism, 16, fits 4.
	s := parse(t, twoGroups("default", 8, 3))
	j := job(t, s)
	keyed, _ := j.VertexID("KeyedProcess: sessionize")
	async, _ := j.VertexID("Async: geo-lookup")
	src, _ := j.VertexID("Source: readings")
	r, err := Run(ctx, s, &scripted{to: map[string]int{src: 4, keyed: 16, async: 5}}, Options{})
	require.NoError(t, err)
	require.Len(t, r.Events, 1)
	assert.False(t, r.Events[0].Failed)
	first, last := r.Timeline[0], r.Timeline[len(r.Timeline)-1]
	assert.Equal(t, []int{11, 12}, []int{first.UsedSlots, first.Slots})
	assert.Equal(t, []int{21, 24}, []int{last.UsedSlots, last.Slots})
	assert.Equal(t, 16, last.Parallelism["KeyedProcess: sessionize"])
	assert.Positive(t, last.Capacity, "the job runs")
	assert.Zero(t, r.RecordsLost)

	// In place on the adaptive scheduler, down from 21 slots to 2 + 2: of
	// the 6 TaskManagers, those the 4 slots left do not spread over go,
	// TaskManagerTimeout after the job runs again; until then the job
	// holds (and the run bills) all 6.
	s = parse(t, twoGroups("adaptive", 16, 5))
	r, err = Run(ctx, s, &scripted{to: map[string]int{src: 2, keyed: 2, async: 2}}, Options{Record: 5 * time.Second})
	require.NoError(t, err)
	require.Len(t, r.Events, 1)
	ev := r.Events[0]
	require.True(t, ev.InPlace)
	held := func(at time.Duration) Point {
		for _, p := range r.Timeline {
			if p.T >= at {
				return p
			}
		}
		return r.Timeline[len(r.Timeline)-1]
	}
	assert.Equal(t, 24, held(ev.T-time.Minute).Slots)
	assert.Equal(t, 24, held(ev.Completed+10*time.Second).Slots, "idle TaskManagers live on for the timeout")
	assert.Equal(t, []int{4, 16}, []int{held(ev.Completed + 2*time.Minute).UsedSlots, held(ev.Completed + 2*time.Minute).Slots},
		"4 slots in use keep 4 TaskManagers")
}
