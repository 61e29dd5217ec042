package scaling

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Each case shows its working: the model's numbers, by hand, in the comment.
func TestDecideSizing(t *testing.T) {
	noWindow := func(p *Policy) { p.Behavior.ScaleDown.StabilizationWindow = D(0) }
	for _, tc := range []struct {
		name   string
		snap   Snapshot
		policy func(*Policy)
		action Action
		want   map[string]int // recommended parallelism per vertex
		codes  []ReasonCode   // must all appear somewhere in the decision
	}{
		{
			// busy 500 ms/s at p=10 taking 50 rec/s → true rate 50/0.5 = 100 rec/s;
			// target 50 at util 0.8 → 62.5 rec/s. 720 key groups: at p=10 the busiest
			// subtask has 72 of them and handles 72/720·50 = 5 rec/s at 50 % busy, so
			// one subtask does 10 rec/s. p=7 puts ceil(720/7) = 103 key groups on the
			// busiest → 10/(103/720) = 69.9 rec/s ≥ 62.5 (p=6: 120 → 60 < 62.5). A
			// divisor (8 divides 720) would cost a subtask for 0.1 % of balance.
			name: "keyed vertex scales down to the smallest parallelism that meets the target",
			snap: snapshot(1,
				vtx{id: "src", p: 10, busy: 500, in: 50, out: 50},
				vtx{id: "agg", p: 10, maxP: 720, busy: 500, in: 50, out: 50, inputs: from("src", ShipHash)},
			),
			policy: func(p *Policy) { noWindow(p); p.Utilization = Utilization{Target: 0.8, Min: 0.6, Max: 0.9} },
			action: ActionScale,
			// src: 10 rec/s per subtask, 62.5 needed → 7 (rebalanced input, even spread).
			want:  map[string]int{"src": 7, "agg": 7},
			codes: []ReasonCode{ReasonUnderutilized},
		},
		{
			// 8 partitions, p=8 busy 950 taking 8000 rec/s: each subtask reads one
			// partition at 1000/0.95 = 1053 rec/s. 12000 arrive → 12000/0.7 = 17143
			// needed, more than 8 readers (8421) can give, and a ninth reader would
			// own no partition.
			name: "partition count caps a source that needs more",
			snap: snapshot(1,
				vtx{id: "src", p: 8, busy: 950, in: 8000, out: 8000, partitions: 8, lag: F(5e5), arrival: F(12000)},
			),
			action: ActionHold,
			want:   map[string]int{"src": 8},
			codes:  []ReasonCode{ReasonOverloaded, ReasonPartitionLimited, ReasonNoChange},
		},
		{
			// The source is backpressured (800 ms/s) and busy only 100 ms/s: it waits
			// on "map", which is busy 1000 ms/s, the bottleneck. map: 1000 rec/s at
			// p=2 fully busy → 500 rec/s a subtask; 3000 arrive → 3000/0.7 = 4286 →
			// 8.57 → p=9. src: 1000 rec/s at busy 0.1 → 10000 rec/s, 5000 a subtask
			// → p=1 carries 4286 (DS2 sizes both in one step; window 0 here).
			name: "a backpressured vertex is not the bottleneck; the busy one downstream is",
			snap: snapshot(1,
				vtx{id: "src", p: 2, busy: 100, bp: 800, in: 1000, out: 1000, partitions: 4, lag: F(0), arrival: F(3000)},
				vtx{id: "map", p: 2, busy: 1000, in: 1000, out: 1000, inputs: from("src", ShipRebalance)},
			),
			policy: noWindow,
			action: ActionScale,
			want:   map[string]int{"src": 1, "map": 9},
			codes:  []ReasonCode{ReasonBackpressured, ReasonBottleneck, ReasonOverloaded},
		},
		{
			// 2 cores per TaskManager → 2 slots each. work: p=2 fully busy taking
			// 1000 → 500 rec/s a subtask; 1750 arrive → 2500 needed → p=5 → 3
			// TaskManagers, 6 slots. The sixth slot is paid for: work goes to 6
			// (1750/3000 = 58 %, above the 40 % minimum).
			name: "free slots of the last TaskManager go to the most loaded vertex",
			snap: snapshot(2,
				vtx{id: "src", p: 2, busy: 100, in: 1000, out: 1000, lag: F(0), arrival: F(1750), partitions: 32},
				vtx{id: "work", p: 2, busy: 1000, in: 1000, out: 1000, inputs: from("src", ShipRebalance)},
			),
			action: ActionScale,
			// src: 1000/0.1 = 10000 rec/s → 5000 a subtask; 2500 needed → p=1, but
			// scale-down waits for its window, so it stays at 2.
			want:  map[string]int{"src": 2, "work": 6},
			codes: []ReasonCode{ReasonFreeSlots, ReasonScaleDownStabilizing},
		},
		{
			// Both vertices need more, on 1-core TaskManagers, with at most 6 cores.
			// hot (group a): 1000 rec/s at p=2 fully busy → 500 a subtask; 2000 arrive
			// → 2857 needed → p=6. cold (group b): busy 500 → 1000 a subtask → p=3.
			// 6+3 = 9 slots > 6: narrow, one slot at a time, the group least
			// utilized after the step: hot 6→5 (2000/2500 = 80 %, cold 3→2 would be
			// 100 %); hot 5→4 (100 %, tie with cold, a before b); then cold 3→2
			// (100 %, hot 4→3 would be 133 %). Both end at 100 %: 4+2 = 6 slots.
			name: "a quota trims the vertices with the most headroom first",
			snap: snapshot(1,
				vtx{id: "hot", group: "a", p: 2, busy: 1000, in: 1000, out: 1000, partitions: 64, lag: F(0), arrival: F(2000)},
				vtx{id: "cold", group: "b", p: 2, busy: 500, in: 1000, out: 1000, inputs: from("hot", ShipRebalance)},
			),
			policy: func(p *Policy) { p.Resources.MaxCores = 6 },
			action: ActionScale,
			want:   map[string]int{"hot": 4, "cold": 2},
			codes:  []ReasonCode{ReasonQuotaLimited},
		},
		{
			// x is excluded: it stays at 2 although it is 100 % busy. Its downstream
			// is still sized for the 2000 rec/s that arrive: y at p=1 takes 1000 at
			// busy 0.5 → 2000 a subtask; 2000/0.7 = 2857 → p=2.
			name: "an excluded vertex keeps its parallelism; its downstream is still sized",
			snap: snapshot(1,
				vtx{id: "x", p: 2, busy: 1000, in: 1000, out: 1000, partitions: 8, lag: F(0), arrival: F(2000)},
				vtx{id: "y", p: 1, busy: 500, in: 1000, out: 1000, inputs: from("x", ShipRebalance)},
			),
			policy: func(p *Policy) { p.Vertices = []VertexOverride{{Name: "x", Exclude: true}} },
			action: ActionScale,
			want:   map[string]int{"x": 2, "y": 2},
			codes:  []ReasonCode{ReasonExcluded, ReasonOverloaded},
		},
		{
			// Nothing arrives at the brokers, nothing is waiting, nothing flows: the
			// capacity cannot be measured, but nothing is needed either. After the
			// scale-down window (0 here) every vertex goes to the minimum, one
			// max-factor step at a time: 8 → 8/4 = 2.
			name: "an idle job scales down although its capacity cannot be measured",
			snap: snapshot(1,
				vtx{id: "src", p: 8, busy: 0, in: 0, out: 0, partitions: 8, lag: F(0), arrival: F(0)},
				vtx{id: "sink", p: 8, busy: 0, in: 0, out: 0, inputs: from("src", ShipRebalance)},
			),
			policy: noWindow,
			action: ActionScale,
			want:   map[string]int{"src": 2, "sink": 2},
			codes:  []ReasonCode{ReasonUnderutilized, ReasonCapacityUnmeasured, ReasonMaxFactorLimited},
		},
		{
			// At exactly the target utilization nothing is outside the band.
			name: "at the target load nothing changes",
			snap: snapshot(1,
				vtx{id: "src", p: 4, busy: 700, in: 4000, out: 4000, partitions: 4, lag: F(0), arrival: F(4000)},
				vtx{id: "agg", p: 4, busy: 700, in: 4000, out: 400, inputs: from("src", ShipHash)},
			),
			action: ActionHold,
			want:   map[string]int{"src": 4, "agg": 4},
			codes:  []ReasonCode{ReasonWithinBand},
		},
		{
			// p=2 busy 200 taking 1000 → 2500 a subtask; 1000 arrive → 1429 → p=1.
			// On 4-core TaskManagers p=2 and p=1 both need one TaskManager: the
			// restart would save nothing.
			name: "a scale-down that frees no TaskManager is not worth a restart",
			snap: snapshot(4,
				vtx{id: "src", p: 2, busy: 200, in: 1000, out: 1000, partitions: 4, lag: F(0), arrival: F(1000)},
			),
			policy: noWindow,
			action: ActionHold,
			want:   map[string]int{"src": 2},
			codes:  []ReasonCode{ReasonUnderutilized, ReasonGainBelowCost},
		},
		{
			// 10 rec/s a subtask at 100 % busy (p=2 taking 20). 100 arrive → 143
			// needed → p=15, but with maxFactor 3 one step stops at 2×3 = 6.
			name: "one scale-up step is bounded by the max factor",
			snap: snapshot(1,
				vtx{id: "src", p: 2, busy: 1000, in: 20, out: 20, lag: F(0), arrival: F(100)},
			),
			policy: func(p *Policy) { p.Behavior.ScaleUp.MaxFactor = 3 },
			action: ActionScale,
			want:   map[string]int{"src": 6},
			codes:  []ReasonCode{ReasonMaxFactorLimited},
		},
		{
			// Checkpoints take 40 s of a 60 s interval (> 50 %): no scale-down.
			name: "slow checkpoints block a scale-down",
			snap: func() Snapshot {
				s := snapshot(1, vtx{id: "src", p: 8, busy: 100, in: 800, out: 800, partitions: 8, lag: F(0), arrival: F(800)})
				s.Checkpoints = &Checkpoints{IntervalMs: 60000, DurationMs: 40000}
				return s
			}(),
			policy: noWindow,
			action: ActionHold,
			want:   map[string]int{"src": 8},
			codes:  []ReasonCode{ReasonUnderutilized, ReasonCheckpointsUnhealthy, ReasonNoChange},
		},
		{
			// 80 % busy is inside the band (max 85 %) but above the 70 % target, and
			// checkpoints are slow: scale up. 800 rec/s at 0.8 → 250 a subtask;
			// 800/0.7 = 1143 → p=5.
			name: "slow checkpoints with a busy vertex support a scale-up",
			snap: func() Snapshot {
				s := snapshot(1, vtx{id: "src", p: 4, busy: 800, in: 800, out: 800, partitions: 40, lag: F(0), arrival: F(800)})
				s.Checkpoints = &Checkpoints{IntervalMs: 10000, DurationMs: 9000}
				return s
			}(),
			action: ActionScale,
			want:   map[string]int{"src": 5},
			codes:  []ReasonCode{ReasonCheckpointPressure},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			d := Decide(tc.snap, p, History{}, t0)
			got := map[string]int{}
			for _, v := range d.Vertices {
				got[v.ID] = v.Recommended
			}
			assert.Equal(t, tc.action, d.Action, d.Summary)
			assert.Equal(t, tc.want, got, d.Summary)
			for _, c := range tc.codes {
				assert.Contains(t, allCodes(d), c)
			}
		})
	}
}
