package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordFillsTheRatesAfterTheNewestRescale(t *testing.T) {
	done := t0.Add(-10 * time.Minute)
	h := History{Rescales: []RescaleRecord{{DecidedAt: done.Add(-time.Minute), CompletedAt: done, Outcome: OutcomeSucceeded,
		Vertices: []RescaleVertex{{ID: "a", From: 2, To: 4, TrueRateBefore: 2000}, {ID: "b", From: 3, To: 3}}}}}
	d := Decision{At: t0, Sized: true, Vertices: []VertexDecision{
		{ID: "a", Current: 4, Required: 4, TrueProcessingRate: 3900},
		{ID: "b", Current: 2, Required: 2, TrueProcessingRate: 500}, // not at its new parallelism: skipped
	}}
	out := h.Record(d, time.Hour)
	assert.InDelta(t, 3900, out.Rescales[0].Vertices[0].TrueRateAfter, 1e-9)
	assert.Zero(t, out.Rescales[0].Vertices[1].TrueRateAfter)
	assert.Zero(t, h.Rescales[0].Vertices[0].TrueRateAfter, "the input history is left as it was")

	// Once filled, a later decision does not overwrite it.
	d.At, d.Vertices[0].TrueProcessingRate = t0.Add(time.Minute), 5000
	assert.InDelta(t, 3900, out.Record(d, time.Hour).Rescales[0].Vertices[0].TrueRateAfter, 1e-9)
	// A failed rescale gets nothing.
	h.Rescales[0].Outcome = OutcomeFailed
	assert.Zero(t, h.Record(d, time.Hour).Rescales[0].Vertices[0].TrueRateAfter)
}

func TestHoldForMissing(t *testing.T) {
	d := Decision{Action: ActionScale, Sized: true, Current: Plan{Slots: 2}, Recommended: Plan{Slots: 6},
		Vertices: []VertexDecision{{ID: "a", Current: 2, Recommended: 6}}}
	h := d.HoldForMissing([]string{"kafka: trigger orders: timeout"})
	assert.Equal(t, ActionHold, h.Action)
	assert.False(t, h.Sized)
	assert.Equal(t, ReasonMissingMetrics, h.Reasons[0].Code)
	assert.Contains(t, h.Summary, "timeout")
	assert.Equal(t, 2, h.Recommended.Slots)
	assert.Equal(t, 2, h.Vertices[0].Recommended)
	assert.Equal(t, 6, d.Vertices[0].Recommended, "d is left as it was")
	assert.Equal(t, d, d.HoldForMissing(nil), "nothing missing: unchanged")
}

// After a drop in load, the first decisions are made on metrics windows that
// straddle the drop: their recommendations sit between the old and the new
// level. A scale-down that only now became possible waits one metrics window
// for them to leave the stabilization window, then goes down in one step.
func TestScaleDownSettlesInOneStep(t *testing.T) {
	// src p=6, busy 200 ms/s taking 1200 rec/s: 1000 rec/s a subtask at
	// 100 %; 1200/0.7 = 1714 → p=2 (12 partitions, 6 each: 2000).
	s := snapshot(1, vtx{id: "src", p: 6, busy: 200, in: 1200, out: 1200, partitions: 12, lag: F(0), arrival: F(1200)})
	p := testPolicy() // scale-down window 30 m, metrics window 5 m
	rec := func(at time.Duration, n int) RecommendationRecord {
		return RecommendationRecord{At: t0.Add(at), Parallelism: map[string]int{"src": n}}
	}
	// Before the drop (until −30 m) the job needed 6; one transitional
	// decision at −29m30s needed 3; since then 2.
	var h History
	for at := -40 * time.Minute; at <= -30*time.Minute; at += 30 * time.Second {
		h.Recommendations = append(h.Recommendations, rec(at, 6))
	}
	h.Recommendations = append(h.Recommendations, rec(-29*time.Minute-30*time.Second, 3))
	for at := -29 * time.Minute; at < 0; at += 30 * time.Second {
		h.Recommendations = append(h.Recommendations, rec(at, 2))
	}
	d := Decide(s, p, h, t0)
	require.Equal(t, ActionHold, d.Action, d.Summary)
	assert.Equal(t, 6, vertexByID(d, "src").Recommended)
	assert.Contains(t, codes(vertexByID(d, "src").Reasons), ReasonScaleDownStabilizing)

	// Five minutes later the window ending 5 minutes ago no longer held a
	// 6: the scale-down goes straight to 2.
	for at := time.Duration(0); at < 5*time.Minute; at += 30 * time.Second {
		h.Recommendations = append(h.Recommendations, rec(at, 2))
	}
	later := s
	later.WindowStart, later.WindowEnd = s.WindowStart.Add(5*time.Minute), s.WindowEnd.Add(5*time.Minute)
	d = Decide(later, p, h, t0.Add(5*time.Minute))
	require.Equal(t, ActionScale, d.Action, d.Summary)
	assert.Equal(t, 2, vertexByID(d, "src").Recommended)

	// A load that has been falling for a while: the window's highest is 4
	// until −15 m, 3 since, while the job needs 2 now. Going to 4 now and
	// to 2 when the window clears (in 29m30s) would take two restarts;
	// the first would free 2 slots for those 29m30s, 0.98 slot-hours, less
	// than a restart costs (6 × (1m30s restart + 1m TaskManager start-up,
	// a savepoint upgrade redeploys the cluster, + 10m) = 1.25): it waits,
	// to go once.
	window := func(hi, lo int) History {
		var g History
		for at := -40 * time.Minute; at < 0; at += 30 * time.Second {
			n := hi
			if at > -15*time.Minute {
				n = lo
			}
			g.Recommendations = append(g.Recommendations, rec(at, n))
		}
		return g
	}
	d = Decide(s, p, window(4, 3), t0)
	require.Equal(t, ActionHold, d.Action, d.Summary)
	assert.Contains(t, d.Summary, "two restarts")

	// Where the window has held 3 for 40 minutes, stepping to 3 frees 3
	// slots for 29m30s, 1.48 slot-hours, more than the second restart: it
	// goes now. Over the hour's horizon it saves 3 slot-hours against the
	// 1.25 its restart costs.
	d = Decide(s, p, window(3, 3), t0)
	require.Equal(t, ActionScale, d.Action, d.Summary)
	assert.Equal(t, 3, vertexByID(d, "src").Recommended, "the highest of the window")
	assert.InDelta(t, 3, d.Economics.SavedSlotHours, 1e-9)
	assert.InDelta(t, 6*12.5/60, d.Economics.RestartSlotHours, 1e-9)
	assert.Contains(t, codes(d.Reasons), ReasonCostBenefit)
}

// The record of a rescale carries what the restart-time model learns from:
// the state to restore (the snapshot's latest checkpoint size, 0 when
// unknown) and whether the restart starts TaskManagers: every savepoint
// upgrade (the operator redeploys the cluster), and in place only more of
// them (a new shape cannot be applied in place).
func TestNewRescaleRecord(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	cur := Plan{TaskManagers: 3, SlotsPerTaskManager: 2, CPUPerTaskManager: 2}
	with := func(f func(*Plan)) Plan {
		p := cur
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name    string
		inPlace bool
		next    Plan
		ckpts   *Checkpoints
		started bool
		state   float64
	}{
		{"in place, more TaskManagers", true, with(func(p *Plan) { p.TaskManagers = 5 }), &Checkpoints{StateSizeBytes: 5e9}, true, 5e9},
		{"in place, fewer: none starts", true, with(func(p *Plan) { p.TaskManagers = 2 }), &Checkpoints{StateSizeBytes: 1024}, false, 1024},
		{"in place, as many: none starts", true, cur, nil, false, 0},
		{"a new shape is never in place", true, with(func(p *Plan) { p.TaskManagers, p.SlotsPerTaskManager = 2, 4 }), nil, true, 0},
		{"more CPU each: a new shape", true, with(func(p *Plan) { p.CPUPerTaskManager = 4 }), nil, true, 0},
		{"the same CPU up to rounding", true, with(func(p *Plan) { p.CPUPerTaskManager = 2 + 1e-12 }), nil, false, 0},
		{"by savepoint, fewer: the cluster is redeployed", false, with(func(p *Plan) { p.TaskManagers = 2 }), nil, true, 0},
		{"no checkpoint size: 0", true, cur, &Checkpoints{IntervalMs: 60000}, false, 0},
		{"a NaN size: 0", true, cur, &Checkpoints{StateSizeBytes: Float(math.NaN())}, false, 0},
		{"an infinite size: 0", true, cur, &Checkpoints{StateSizeBytes: Float(math.Inf(1))}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := Decision{At: now, Current: cur, Recommended: tc.next, Vertices: []VertexDecision{
				{ID: "src", Current: 2, Recommended: 4, TrueProcessingRate: 1500},
			}}
			rec := NewRescaleRecord(dec, Snapshot{Checkpoints: tc.ckpts, RescaleInPlace: tc.inPlace})
			assert.Equal(t, tc.started, rec.StartedTaskManagers, "started TaskManagers")
			assert.Equal(t, tc.state, rec.StateSizeBytes, "state size")
			assert.Equal(t, now, rec.DecidedAt)
			assert.Equal(t, OutcomeInProgress, rec.Outcome)
			assert.Equal(t, []RescaleVertex{{ID: "src", From: 2, To: 4, TrueRateBefore: 1500}}, rec.Vertices)
		})
	}
}
