package scaling

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFitTrend(t *testing.T) {
	window := 5 * time.Minute
	series := func(n int, every time.Duration, f func(t float64) float64) []tpoint {
		var pts []tpoint
		for i := n - 1; i >= 0; i-- {
			at := -float64(i) * every.Seconds()
			pts = append(pts, tpoint{t: at, y: f(at)})
		}
		return pts
	}
	noise := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		pts   []tpoint
		sig   bool
		slope float64 // rec/s per second, when significant
		tol   float64
	}{
		// 1000 rec/s rising 2 rec/s every second over 30 minutes: a ramp in
		// both halves, slope 2.
		{"ramp", series(61, 30*time.Second, func(t float64) float64 { return 1000 + 2*t }), true, 2, 1e-9},
		// The same ramp with ±5 % noise: Theil–Sen still finds about 2.
		{"noisy ramp", series(61, 30*time.Second, func(t float64) float64 {
			return (5000 + 2*t) * (1 + 0.1*(noise.Float64()-0.5))
		}), true, 2, 0.4},
		// Flat with ±15 % noise: no trend.
		{"noise", series(61, 30*time.Second, func(t float64) float64 { return 1000 * (1 + 0.3*(noise.Float64()-0.5)) }), false, 0, 0},
		// A step from 1000 to 3000 ten minutes ago: the older half rises
		// (the step, smoothed) but the newer half is flat. A change of
		// level, not a trend.
		{"step", series(61, 30*time.Second, func(t float64) float64 {
			switch {
			case t < -15*60:
				return 1000
			case t < -10*60:
				return 1000 + 2000*(t+15*60)/(5*60) // the 5-minute window average
			}
			return 3000
		}), false, 0, 0},
		// A ramp that slows: 4 rec/s² in the older half, 1 in the newer.
		// Planned for at the slower rate.
		{"slowing ramp", series(61, 30*time.Second, func(t float64) float64 {
			if t < -15*60 {
				return 10000 + 4*(t+15*60) + 1*(-15*60)
			}
			return 10000 + 1*t
		}), true, 1, 1e-9},
		// Too short: 4 points over 90 s, under one metrics window.
		{"short", series(4, 30*time.Second, func(t float64) float64 { return 1000 + 10*t }), false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fitTrend(tc.pts, window)
			assert.Equal(t, tc.sig, tr.significant, "slope %g ± %g", tr.slope, tr.se)
			if tc.sig {
				assert.InDelta(t, tc.slope, tr.slope, tc.tol)
			}
			assert.Equal(t, tc.sig, tr.at(1000, 60) != 1000)
		})
	}
}

// history of arrivals: rate(at) recorded every 30 s over the last 30 min,
// with a constant required parallelism.
func arrivalHistory(id string, par int, rate func(at time.Duration) float64) History {
	var h History
	for at := -30 * time.Minute; at < 0; at += 30 * time.Second {
		h.Recommendations = append(h.Recommendations, RecommendationRecord{At: t0.Add(at),
			Parallelism: map[string]int{id: par}, Arrival: map[string]float64{id: rate(at)}})
	}
	return h
}

func TestRisingLoadIsSizedAhead(t *testing.T) {
	// 48 partitions; a reader does 1000 rec/s at 100 % busy, so p=q reads
	// 48000/⌈48/q⌉. The load rose to 6000 rec/s at 2 rec/s every second
	// and the job, at p=6 (1-core TaskManagers), is 100 % busy: overloaded.
	// A restart costs the slots × (90 s restart + 60 s TaskManager start-up
	// + 10 min restartCost) = 750 s of them. Each plan costs, per second of
	// its life, the slots it holds less those the forecast load needs on
	// average while it lasts, plus its restart over its life. The load
	// needs 10 slots until 300 s, 12 from 450 s, 16 from 1350 s, 24 from
	// 2700 s (on the 150 s grid):
	//   for the load now, p=10 (9600 rec/s) lasts until 8160 rec/s, 1050 s:
	//   10 − 11.25 + 7500/1050 = 5.89;
	//   10 min ahead, p=12 lasts 2100 s: 12 − 13.2 + 9000/2100 = 3.09;
	//   25 min ahead, p=16 lasts the 1 h horizon: 16 − 16.56 + 12000/3600
	//   = 2.77, the cheapest;
	//   p=24 also lasts the hour: 24 − 16.56 + 18000/3600 = 12.4.
	s := snapshot(1, vtx{id: "src", p: 6, busy: 1000, in: 6000, out: 6000, partitions: 48, lag: F(0), arrival: F(6000)})
	p := testPolicy()
	h := arrivalHistory("src", 9, func(at time.Duration) float64 { return 6000 + 2*at.Seconds() })
	d := Decide(s, p, h, t0)
	require.Equal(t, ActionScale, d.Action, d.Summary)
	require.NotNil(t, d.Economics)
	assert.Equal(t, 25*time.Minute, d.Economics.Lookahead.Duration)
	assert.Equal(t, 16, vertexByID(d, "src").Recommended, "sized for the load ahead")
	assert.Equal(t, time.Hour, d.Economics.HoldsFor.Duration)
	assert.Contains(t, codes(d.Reasons), ReasonTrendForecast)
	assert.Contains(t, codes(vertexByID(d, "src").Reasons), ReasonTrendForecast)

	// A slower rise, 1 rec/s every second. p=10 lasts 2100 s, while the
	// load needs 10 slots for 600 s and 12 after: 10 − 11.33 + 7500/2100
	// = 2.24; p=12 (sized 15 min ahead) lasts the horizon, while the load
	// needs 10, 12, then 16 from 2550 s: 12 − 12.88 + 9000/3600 = 1.62,
	// cheaper.
	h = arrivalHistory("src", 9, func(at time.Duration) float64 { return 6000 + at.Seconds() })
	d = Decide(s, p, h, t0)
	require.Equal(t, ActionScale, d.Action, d.Summary)
	assert.Equal(t, 12, vertexByID(d, "src").Recommended)
	assert.Equal(t, 15*time.Minute, d.Economics.Lookahead.Duration)

	// Flat history at the same load: sized for now, and the plan lasts the
	// horizon.
	flat := arrivalHistory("src", 9, func(time.Duration) float64 { return 6000 })
	d = Decide(s, p, flat, t0)
	require.Equal(t, ActionScale, d.Action, d.Summary)
	assert.Equal(t, 10, vertexByID(d, "src").Recommended)
	assert.Equal(t, time.Hour, d.Economics.HoldsFor.Duration)
}

func TestFallingLoadWaitsForAStepThatPays(t *testing.T) {
	// 40 partitions, a reader does 1000 rec/s at 100 %. The job runs p=20
	// (20 one-slot TaskManagers) for a load that has fallen from 12000 to
	// 6000 rec/s over 30 minutes (−3.33 rec/s every second, −3.3 % of now
	// a minute) and fell the whole window: each recommendation was the
	// model's required parallelism then.
	required := func(rate float64) int {
		q := 1
		for float64(q)*1000*0.7 < rate { // even 40/q... close enough for history
			q++
		}
		return q
	}
	rate := func(at time.Duration) float64 { return 6000 - at.Seconds()*6000/1800 }
	var h History
	for at := -36 * time.Minute; at < 0; at += 30 * time.Second {
		h.Recommendations = append(h.Recommendations, RecommendationRecord{At: t0.Add(at),
			Parallelism: map[string]int{"src": required(rate(at))}, Arrival: map[string]float64{"src": rate(at)}})
	}
	s := snapshot(1, vtx{id: "src", p: 20, busy: 300, in: 6000, out: 6000, partitions: 40, lag: F(0), arrival: F(6000)})
	p := testPolicy()
	d := Decide(s, p, h, t0)
	// The window's highest recommendation 30 min ago was for 12000 rec/s:
	// 12000/700 → 18; a step 20 → 18 frees 2 slots. The fall is
	// 3.33/6000 = 0.056 % of the load a second: with an 18-slot plan 0.01
	// slots a second. A restart costs 20 × (1m30s + 1m TaskManager
	// start-up + 10m) = 15000 slot-seconds; the step that pays is
	// √(2 · 15000 · 0.01) = 17 slots.
	require.Equal(t, ActionHold, d.Action, d.Summary)
	assert.Contains(t, codes(d.Reasons), ReasonLoadFalling)
	require.NotNil(t, d.Economics)
	assert.InDelta(t, math.Sqrt(2*20*(90+60+600)*(6000.0/1800/6000)*float64(d.Economics.PlanSlots)), d.Economics.MinStepSlots, 1e-6)

	// Once the fall has flattened (flat for the trend window) no step has
	// to reach Δ*; the window still holds 18 from half an hour ago and the
	// job needs 9 now: going to 18 now and to 9 in a moment would take two
	// restarts, so it waits to go once.
	flat := h
	flat.Recommendations = nil
	for _, r := range h.Recommendations {
		r.Arrival = map[string]float64{"src": 6000}
		flat.Recommendations = append(flat.Recommendations, r)
	}
	d = Decide(s, p, flat, t0)
	require.Equal(t, ActionHold, d.Action, d.Summary)
	assert.NotContains(t, codes(d.Reasons), ReasonLoadFalling)
	assert.Contains(t, d.Summary, "two restarts")
}

func TestBroadcastInputsCountOncePerSubtask(t *testing.T) {
	// orders (p=2) → HASH → join (p=4, 128 key groups: 32 each, share ¼);
	// rules (p=1) → BROADCAST → join. 1000 orders/s and 50 rules/s arrive.
	// Flink counts each rule once per join subtask: join reads 1000 + 4·50
	// = 1200 rec/s. Its busiest subtask, busy 500 ms/s, handles ¼ of the
	// orders and every rule: 250 + 50 = 300 rec/s in half a second, 600 at
	// 100 %. What it has left for orders at p=q is (600 − 50)/(¼ at 4) =
	// 2200 rec/s. The target is the 1000 orders/s, not 1150 (1200 less the
	// rules counted once).
	s := snapshot(4,
		vtx{id: "orders", p: 2, busy: 200, in: 1000, out: 1000, partitions: 2, lag: F(0), arrival: F(1000)},
		vtx{id: "rules", p: 1, busy: 10, in: 50, out: 50, partitions: 1, lag: F(0), arrival: F(50)},
		vtx{id: "join", p: 4, busy: 500, in: 1200, out: 1000, inputs: []Input{{ID: "orders", ShipStrategy: ShipHash}, {ID: "rules", ShipStrategy: ShipBroadcast}}},
	)
	d := Decide(s, testPolicy(), History{}, t0)
	j := vertexByID(d, "join")
	assert.InDelta(t, 1000, j.TargetRate, 1e-9)
	assert.InDelta(t, 2200, j.TrueProcessingRate, 1e-9)
	// At p=2 each subtask has ½ of the orders: (600 − 50)/½ = 1100 rec/s,
	// 91 % for 1000: above the 85 % max, so 4 stays the need (p=3: 43 key
	// groups of 128 on the busiest, (600−50)·128/43 = 1637, 61 %... and
	// the model keeps 4 within the band).
	assert.Equal(t, ActionHold, d.Action, d.Summary)
}

func TestCommittedOffsetLagLosesItsBias(t *testing.T) {
	// A source reads 10000 rec/s of 10000 arriving, with 2-minute
	// checkpoints that take 20 s. Committed offsets trail the readers by
	// what they read since the last barrier: on average 60 s + 20 s = 80 s
	// of 10000 rec/s = 800000 records. The brokers' committed lag of 1.1M
	// is 300000 records of real backlog.
	s := snapshot(4, vtx{id: "src", p: 4, busy: 600, in: 10000, out: 10000, partitions: 8, lag: F(1.1e6), arrival: F(10000)})
	s.Vertices[0].LagSource = LagFromCommittedOffsets
	s.Checkpoints = &Checkpoints{IntervalMs: 120000, DurationMs: 20000}
	d := Decide(s, DefaultPolicy(), History{}, t0)
	assert.InDelta(t, 300000, d.LagRecords, 1e-6)
	assert.Contains(t, codes(vertexByID(d, "src").Reasons), ReasonLagFromCommittedOffsets)
	// Read from pendingRecords, the same number is the backlog itself.
	s.Vertices[0].LagSource = LagFromPendingRecords
	assert.InDelta(t, 1.1e6, Decide(s, DefaultPolicy(), History{}, t0).LagRecords, 1e-6)
}

func TestUnknownSlotSharingCountsWhatFlinkHolds(t *testing.T) {
	// Flink 1.18 names no slot-sharing groups. The job's widest vertex runs
	// 16 subtasks, but it holds 21 slots (a second group of 5). Its source
	// is 20 % busy: it could go to 8 (16 · 0.2/0.4 … the model's need),
	// which counted as one group would free 8 slots; counted as Flink
	// holds them, plans take 21/16 of their widest vertex.
	s := snapshot(1,
		vtx{id: "src", p: 16, busy: 200, in: 3200, out: 3200, partitions: 16, lag: F(0), arrival: F(3200)},
		vtx{id: "sink", p: 5, busy: 300, in: 3200, out: 0, inputs: from("src", ShipRebalance)},
	)
	s.SlotSharingUnknown = true
	s.TaskManagers.Replicas = 21
	s.TaskManagers.SlotsTotal, s.TaskManagers.SlotsAvailable = 21, 0
	d := Decide(s, testPolicy(), History{}, t0)
	assert.Equal(t, 21, d.Current.Slots)
	assert.Contains(t, codes(d.Reasons), ReasonSlotSharingUnknown)
	src := vertexByID(d, "src")
	if src.Recommended < src.Current {
		// 21/16 of the widest vertex, rounded up.
		assert.Equal(t, int(math.Ceil(21.0/16*float64(src.Recommended))), d.Recommended.Slots)
	}
}

func TestInPlaceScaleDownFreesOnlyEmptyTaskManagers(t *testing.T) {
	// 4 TaskManagers of 4 slots run p=16, 25 % busy: the model needs 8
	// (two TaskManagers' worth). In place, Flink keeps the 8 slots spread
	// over all 4 TaskManagers: nothing is freed, so the model holds.
	s := snapshot(4, vtx{id: "src", p: 16, busy: 250, in: 4000, out: 4000, partitions: 16, lag: F(0), arrival: F(4000)})
	p := testPolicy()
	p.Behavior.ScaleDown.StabilizationWindow = D(0)
	require.Equal(t, ActionScale, Decide(s, p, History{}, t0).Action)
	s.RescaleInPlace = true
	d := Decide(s, p, History{}, t0)
	require.Equal(t, ActionHold, d.Action, d.Summary)
	assert.Contains(t, codes(d.Reasons), ReasonGainBelowCost)
	assert.Contains(t, d.Summary, "in place")
}
