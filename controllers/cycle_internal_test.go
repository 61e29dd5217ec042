package controllers

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/scaling"
)

// The record of a rescale carries what the restart-time model learns from:
// the state to restore (the snapshot's latest checkpoint size, 0 when
// unknown) and whether the restart starts TaskManagers (more of them, or a
// new shape, which restarts every one).
func TestRescaleRecord(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	cur := scaling.Plan{TaskManagers: 3, SlotsPerTaskManager: 2, CPUPerTaskManager: 2}
	with := func(f func(*scaling.Plan)) scaling.Plan {
		p := cur
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name    string
		next    scaling.Plan
		ckpts   *scaling.Checkpoints
		started bool
		state   float64
	}{
		{"more TaskManagers", with(func(p *scaling.Plan) { p.TaskManagers = 5 }), &scaling.Checkpoints{StateSizeBytes: 5e9}, true, 5e9},
		{"fewer TaskManagers: none starts", with(func(p *scaling.Plan) { p.TaskManagers = 2 }), &scaling.Checkpoints{StateSizeBytes: 1024}, false, 1024},
		{"as many: none starts", cur, nil, false, 0},
		{"fewer but more slots each: a new shape", with(func(p *scaling.Plan) { p.TaskManagers, p.SlotsPerTaskManager = 2, 4 }), nil, true, 0},
		{"more CPU each: a new shape", with(func(p *scaling.Plan) { p.CPUPerTaskManager = 4 }), nil, true, 0},
		{"the same CPU up to rounding", with(func(p *scaling.Plan) { p.CPUPerTaskManager = 2 + 1e-12 }), nil, false, 0},
		{"no checkpoint size: 0", cur, &scaling.Checkpoints{IntervalMs: 60000}, false, 0},
		{"a NaN size: 0", cur, &scaling.Checkpoints{StateSizeBytes: scaling.Float(math.NaN())}, false, 0},
		{"an infinite size: 0", cur, &scaling.Checkpoints{StateSizeBytes: scaling.Float(math.Inf(1))}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := scaling.Decision{Current: cur, Recommended: tc.next, Vertices: []scaling.VertexDecision{
				{ID: "src", Current: 2, Recommended: 4, TrueProcessingRate: 1500},
			}}
			rec := rescaleRecord(dec, scaling.Snapshot{Checkpoints: tc.ckpts}, now)
			assert.Equal(t, tc.started, rec.StartedTaskManagers, "started TaskManagers")
			assert.Equal(t, tc.state, rec.StateSizeBytes, "state size")
			assert.Equal(t, now, rec.DecidedAt)
			assert.Equal(t, scaling.OutcomeInProgress, rec.Outcome)
			assert.Equal(t, []scaling.RescaleVertex{{ID: "src", From: 2, To: 4, TrueRateBefore: 1500}}, rec.Vertices)
		})
	}
}
