package scaling

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Clusters the job does not own or cannot reshape: a session cluster whose
// TaskManagers cannot grow, fixed slots per TaskManager, reactive mode.
func TestClusterShapes(t *testing.T) {
	cases := []struct {
		name   string
		snap   func() Snapshot
		policy func(*Policy)
		want   map[string]int
		tms    int
		spt    int
		codes  []ReasonCode
	}{
		{
			// The quota example of TestDecide, with the cluster instead of
			// the quota binding: hot needs 6, cold 3 (9 slots); the job holds
			// 2+2 = 4 slots and 2 of the cluster's 12 are free, so it can hold
			// 6. Narrowed as the quota narrows: hot 6→5→4, cold 3→2.
			name:  "a standalone session cluster holds the plan to the slots it has free",
			snap:  func() Snapshot { return hotCold(2) },
			want:  map[string]int{"hot": 4, "cold": 2},
			tms:   6,
			spt:   1,
			codes: []ReasonCode{ReasonClusterCapacity},
		},
		{
			// The same job on a cluster with 5 free slots: 4+5 = 9 ≥ 9, so
			// nothing binds.
			name: "free slots enough: the cluster does not bind",
			snap: func() Snapshot { return hotCold(5) },
			want: map[string]int{"hot": 6, "cold": 3},
			tms:  9,
			spt:  1,
		},
		{
			// work: 1000 rec/s at p=2 fully busy → 500 a subtask; 1750 arrive
			// → 2500 needed at 70 % → p=5 (src stays at 2: its scale-down
			// waits). Reactive mode on TaskManagers of 2 slots: one group,
			// widest 5 → 3 TaskManagers, 6 slots, every vertex at 6.
			name: "reactive mode: the widest need, rounded up to TaskManagers, for every vertex",
			snap: func() Snapshot {
				s := snapshot(2,
					vtx{id: "src", p: 2, busy: 100, in: 1000, out: 1000, lag: F(0), arrival: F(1750), partitions: 32},
					vtx{id: "work", p: 2, busy: 1000, in: 1000, out: 1000, inputs: from("src", ShipRebalance)},
				)
				s.Reactive = true
				return s
			},
			want:  map[string]int{"src": 6, "work": 6},
			tms:   3,
			spt:   2,
			codes: []ReasonCode{ReasonReactiveMode},
		},
		{
			// The free-slot example of TestDecide on 4-core TaskManagers
			// whose slots are fixed at 2 (a session cluster): work needs 5;
			// in 2-slot TaskManagers the sixth slot is free and goes to work
			// (1750/3000 = 58 % > 40 %): 3 TaskManagers of 2, not 2 of 4.
			name: "fixed slots: plans keep the cluster's slots per TaskManager",
			snap: func() Snapshot {
				s := snapshot(4,
					vtx{id: "src", p: 2, busy: 100, in: 1000, out: 1000, lag: F(0), arrival: F(1750), partitions: 32},
					vtx{id: "work", p: 2, busy: 1000, in: 1000, out: 1000, inputs: from("src", ShipRebalance)},
				)
				s.TaskManagers.Slots, s.TaskManagers.FixedSlots = 2, true
				return s
			},
			want: map[string]int{"src": 2, "work": 6},
			tms:  3,
			spt:  2,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testPolicy()
			if c.policy != nil {
				c.policy(&p)
			}
			d := Decide(c.snap(), p, History{}, t0)
			require.Equal(t, ActionScale, d.Action, "%s: %v", d.Summary, d.Reasons)
			assert.Equal(t, c.want, d.Recommended.Parallelism)
			assert.Equal(t, c.tms, d.Recommended.TaskManagers)
			assert.Equal(t, c.spt, d.Recommended.SlotsPerTaskManager)
			for _, code := range c.codes {
				assert.Contains(t, allCodes(d), code)
			}
			if slices.Contains(c.codes, ReasonClusterCapacity) {
				assert.Equal(t, ReasonClusterCapacity, vertexByID(d, "hot").Limit, "held below its recommendation: a binding limit")
			}
		})
	}
}

// hotCold is the quota example of TestDecide on a standalone session
// cluster of 12 one-slot TaskManagers with free slots free.
func hotCold(free int) Snapshot {
	s := snapshot(1,
		vtx{id: "hot", group: "a", p: 2, busy: 1000, in: 1000, out: 1000, partitions: 64, lag: F(0), arrival: F(2000)},
		vtx{id: "cold", group: "b", p: 2, busy: 500, in: 1000, out: 1000, inputs: from("hot", ShipRebalance)},
	)
	s.TaskManagers.FixedTaskManagers, s.TaskManagers.SlotsTotal, s.TaskManagers.SlotsAvailable = true, 12, free
	return s
}

// On a shared session cluster the job's TaskManagers are its share of the
// cluster's, counted from its slots, not the cluster's replicas.
func TestSharedClusterCountsTheJobsShare(t *testing.T) {
	s := snapshot(2,
		vtx{id: "src", p: 4, busy: 500, in: 1000, out: 1000, lag: F(0), arrival: F(1000), partitions: 32},
	)
	s.TaskManagers.Replicas, s.TaskManagers.Shared = 10, true
	s.TaskManagers.SlotsTotal, s.TaskManagers.SlotsAvailable = 20, 6
	d := Decide(s, testPolicy(), History{}, t0)
	// 4 slots in 2-slot TaskManagers: 2 of the cluster's 10.
	assert.Equal(t, 2, d.Current.TaskManagers)
	assert.InDelta(t, 4.0, d.Current.Cores, 1e-9)
}
