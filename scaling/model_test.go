package scaling

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/scaling/assign"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTargetsPropagateThroughFanInAndFanOut(t *testing.T) {
	// a reads 1000 rec/s of 1000 arriving; b reads 1000 of 3000 (its lag
	// grows). join takes 2000: over a→join, 2000 − b's 1000 out = 1000, ratio
	// 1000/1000 = 1; likewise b→join. join's target = 1000·1 + 3000·1 = 4000.
	// join fans out: all 2000 to "all" (ratio 1 → 4000), half to "some"
	// (1000/2000 → 2000).
	s := snapshot(1,
		vtx{id: "a", p: 1, busy: 500, in: 1000, out: 1000},
		vtx{id: "b", p: 1, busy: 1000, in: 1000, out: 1000, partitions: 4, lag: F(9e5), arrival: F(3000)},
		vtx{id: "join", p: 2, busy: 800, in: 2000, out: 2000, inputs: []Input{{ID: "a", ShipStrategy: ShipHash}, {ID: "b", ShipStrategy: ShipHash}}},
		vtx{id: "all", p: 2, busy: 300, in: 2000, out: 0, inputs: from("join", ShipRebalance)},
		vtx{id: "some", p: 1, busy: 300, in: 1000, out: 0, inputs: from("join", ShipRebalance)},
	)
	d := Decide(s, testPolicy(), History{}, t0)
	want := map[string]float64{"a": 1000, "b": 3000, "join": 4000, "all": 4000, "some": 2000}
	for id, rate := range want {
		assert.InDelta(t, rate, vertexByID(d, id).TargetRate, 1e-6, id)
	}
	assert.Equal(t, "b", d.Bottleneck)
	// Without arrival rates, a source's target is consumption plus lag growth.
	s.Vertices[1].ArrivalRatePerSecond, s.Vertices[1].LagRatePerSecond = nil, F(1500)
	d = Decide(s, testPolicy(), History{}, t0)
	assert.InDelta(t, 2500, vertexByID(d, "b").TargetRate, 1e-6) // 1000 + 1500
}

func TestCatchUpCountsTheRestart(t *testing.T) {
	// 32 partitions; at p=2 the busiest reader has 16 (share 1/2) and reads
	// 500 rec/s fully busy, so capacity at q is 500/(ceil(32/q)/32) =
	// 16000/ceil(32/q). The job runs on one 1-slot TaskManager, so a
	// scale-up starts TaskManagers: downtime = 30 s checkpoint (≈ savepoint)
	// + 90 s restart + 60 s TaskManager start-up = 180 s (no state to
	// restore). Backlog = 600000 lag + 1000 rec/s · 180 s = 780000; over a
	// 10 min catch-up that is 1300 rec/s on top of the 1000 rec/s target:
	// 2300 needed at full speed, more than the 1000/0.7 = 1428.6 the steady
	// state needs. q=5 (7 partitions) gives 2285.7, q=6 (6) 2666.7 → 6.
	// Catch-up after the restart: 780000 / (2666.7 − 1000) = 468 s.
	s := snapshot(1, vtx{id: "src", p: 2, busy: 1000, in: 1000, out: 1000, partitions: 32, lag: F(6e5), arrival: F(1000)})
	s.Checkpoints = &Checkpoints{IntervalMs: 60000, DurationMs: 30000}
	p := testPolicy()
	p.CatchUpDuration, p.RestartTime, p.TaskManagerStartup = D(10*time.Minute), D(90*time.Second), D(time.Minute)
	d := Decide(s, p, History{}, t0)
	require.Equal(t, ActionScale, d.Action, d.Summary)
	v := vertexByID(d, "src")
	assert.Equal(t, 6, v.Recommended)
	assert.InDelta(t, 1300, v.CatchUpRate, 1e-6)
	assert.Equal(t, 3*time.Minute, d.PredictedDowntime.Duration)
	assert.InDelta(t, 468, d.PredictedCatchUp.Seconds(), 0.01)
	assert.InDelta(t, 600, d.LagSeconds, 1e-9) // 600000 / 1000
	assert.InDelta(t, 6e5, d.LagRecords, 1e-9)

	// Without the catch-up terms the same job needs 1428.6: q=3 (11
	// partitions) gives 1454.5 → 3.
	p.CatchUpDuration = D(0)
	assert.Equal(t, 3, vertexByID(Decide(s, p, History{}, t0), "src").Recommended)

	// Measured downtimes (the controller measures from the apply to the job
	// running again, savepoint included) replace the prediction: the median
	// of 60 s, 100 s and 300 s is 100 s; the failed rescale does not count.
	started := History{Rescales: []RescaleRecord{
		{DecidedAt: t0.Add(-5 * time.Hour), CompletedAt: t0.Add(-5 * time.Hour), Downtime: D(60 * time.Second), Outcome: OutcomeSucceeded, StartedTaskManagers: true},
		{DecidedAt: t0.Add(-4 * time.Hour), CompletedAt: t0.Add(-4 * time.Hour), Downtime: D(300 * time.Second), Outcome: OutcomeSucceeded, StartedTaskManagers: true},
		{DecidedAt: t0.Add(-3 * time.Hour), CompletedAt: t0.Add(-3 * time.Hour), Downtime: D(100 * time.Second), Outcome: OutcomeSucceeded, StartedTaskManagers: true},
		{DecidedAt: t0.Add(-2 * time.Hour), CompletedAt: t0.Add(-2 * time.Hour), Downtime: D(900 * time.Second), Outcome: OutcomeFailed, StartedTaskManagers: true},
	}}
	assert.Equal(t, 100*time.Second, Decide(s, p, started, t0).PredictedDowntime.Duration)
	// Measured only on rescales that started no TaskManager, a restart that
	// starts some adds the policy's start-up: 100 s + 60 s.
	inPlace := History{Rescales: append([]RescaleRecord(nil), started.Rescales...)}
	for i := range inPlace.Rescales {
		inPlace.Rescales[i].StartedTaskManagers = false
	}
	assert.Equal(t, 160*time.Second, Decide(s, p, inPlace, t0).PredictedDowntime.Duration)
}

func TestPartitionRatesPredictTheBusiestReader(t *testing.T) {
	// Topic "orders", 4 partitions at 400, 100, 100, 100 rec/s. Fresh start
	// at p=2: start index 1088887011 % 2 = 1, so reader 0 owns [1,3] (200
	// rec/s) and reader 1 owns [0,2] (500 rec/s, the busiest, 100 % busy):
	// one reader does 500 rec/s. 600 arrive → 600/0.7 = 857 needed. Restored
	// at q=3 the splits [1,3,0,2] are cut into [1,3] [0] [2]: the busiest
	// reads 400 of 700 → capacity 500·700/400 = 875 ≥ 857 → 3. Without
	// per-partition rates the model must assume 2 partitions on the busiest
	// reader at q=3 (capacity 700) and takes 4.
	owner := func(i int) *int { return &i }
	rates := []PartitionRate{
		{Topic: "orders", Partition: 0, ArrivalRatePerSecond: 400, Subtask: owner(1)},
		{Topic: "orders", Partition: 1, ArrivalRatePerSecond: 100, Subtask: owner(0)},
		{Topic: "orders", Partition: 2, ArrivalRatePerSecond: 100, Subtask: owner(1)},
		{Topic: "orders", Partition: 3, ArrivalRatePerSecond: 100, Subtask: owner(0)},
	}
	mk := func(rs []PartitionRate) Snapshot {
		return snapshot(1, vtx{id: "src", p: 2, busy: 1000, busyAvg: 700, in: 700, out: 700, partitions: 4, lag: F(0), arrival: F(600), partitionRates: rs})
	}
	assert.Equal(t, 3, vertexByID(Decide(mk(rates), testPolicy(), History{}, t0), "src").Recommended)
	assert.Equal(t, 4, vertexByID(Decide(mk(nil), testPolicy(), History{}, t0), "src").Recommended)
	// Owners unknown: the model rebuilds them with Flink's fresh assignment,
	// which here is the same as above.
	for i := range rates {
		rates[i].Subtask = nil
	}
	assert.Equal(t, 3, vertexByID(Decide(mk(rates), testPolicy(), History{}, t0), "src").Recommended)
}

func TestNonLinearScalingFromHistory(t *testing.T) {
	// Observed: X(1) = 100, X(2) = 181.8, X(4) = 307.7 — a USL curve with
	// λ=100, σ=0.1, κ=0: X(N) = 100N/(1 + 0.1(N−1)). At p=4 the vertex is fully
	// busy at 307.7 rec/s; 340 arrive → 340/0.7 = 485.7 needed. Linearly that
	// is 4·485.7/307.7 = 6.3 → 7, but X(7) = 437.5 and X(8) = 470.6 fall
	// short; X(9) = 500 → 9.
	x := func(n float64) float64 { return 100 * n / (1 + 0.1*(n-1)) }
	h := History{Rescales: []RescaleRecord{
		{DecidedAt: t0.Add(-3 * time.Hour), Outcome: OutcomeSucceeded, Vertices: []RescaleVertex{{ID: "src", From: 1, To: 2, TrueRateBefore: x(1), TrueRateAfter: x(2)}}},
		{DecidedAt: t0.Add(-2 * time.Hour), Outcome: OutcomeSucceeded, Vertices: []RescaleVertex{{ID: "src", From: 2, To: 4, TrueRateBefore: x(2), TrueRateAfter: x(4)}}},
	}}
	s := snapshot(1, vtx{id: "src", p: 4, busy: 1000, in: x(4), out: x(4), lag: F(0), arrival: F(340)})
	d := Decide(s, testPolicy(), h, t0)
	v := vertexByID(d, "src")
	assert.Equal(t, 9, v.Recommended, d.Summary)
	assert.Contains(t, codes(v.Reasons), ReasonFittedScalability)
	assert.InDelta(t, x(9), v.ExpectedProcessingRate, 1e-6)
	// With two parallelisms in history the model stays linear: 7.
	h.Rescales = h.Rescales[1:]
	assert.Equal(t, 7, vertexByID(Decide(s, testPolicy(), h, t0), "src").Recommended)
}

func TestFitUSL(t *testing.T) {
	usl := func(l, s, k float64) func(float64) float64 {
		return func(n float64) float64 { return l * n / (1 + s*(n-1) + k*n*(n-1)) }
	}
	pts := func(f func(float64) float64, ns ...float64) []point {
		var out []point
		for _, n := range ns {
			out = append(out, point{n: n, x: f(n)})
		}
		return out
	}
	// Exact data is recovered exactly.
	c, ok := fitUSL(pts(usl(50, 0.05, 0.002), 1, 3, 6, 10))
	require.True(t, ok)
	assert.InDelta(t, 0.05, c.sigma, 1e-9)
	assert.InDelta(t, 0.002, c.kappa, 1e-9)
	// Its peak: √((1−0.05)/0.002) = 21.8.
	assert.InDelta(t, 21.79, c.peak(), 0.01)
	// Super-linear observations (a warm cache at higher parallelism) are never
	// extrapolated: the fit clamps at linear.
	c, ok = fitUSL([]point{{1, 100}, {2, 230}, {4, 500}})
	require.True(t, ok)
	assert.Equal(t, 0.0, c.sigma)
	assert.Equal(t, 0.0, c.kappa)
	assert.Equal(t, 1.0, c.efficiency(64))
	// Two distinct parallelisms are not enough.
	_, ok = fitUSL([]point{{1, 100}, {2, 190}, {2, 185}})
	assert.False(t, ok)
}

func TestScaleDownStabilization(t *testing.T) {
	// p=10 on 1-core TaskManagers taking 1000 rec/s at busy 250 → 400 a
	// subtask; 1000/0.7 = 1428.6 → p=4 now. The 30 minute window is covered
	// (a record 40 minutes ago) and its highest recommendation since is 8,
	// 20 minutes ago: the window allows 10 → 8 now, and 10 → 5 in 10
	// minutes, 10 → 4 in 20. Stepping to 8 now frees 2 slots for the 20
	// minutes until the window clears: 0.67 slot-hours, less than the
	// second restart it would take (10 slots × (1m30s + 10m) = 1.92): it
	// waits, to go once.
	s := snapshot(1, vtx{id: "src", p: 10, busy: 250, in: 1000, out: 1000, lag: F(0), arrival: F(1000)})
	rec := func(ago time.Duration, q int) RecommendationRecord {
		return RecommendationRecord{At: t0.Add(-ago), Parallelism: map[string]int{"src": q}}
	}
	h := History{Recommendations: []RecommendationRecord{rec(40*time.Minute, 6), rec(20*time.Minute, 8), rec(10*time.Minute, 5)}}
	d := Decide(s, testPolicy(), h, t0)
	require.Equal(t, ActionHold, d.Action, d.Summary)
	v := vertexByID(d, "src")
	assert.Equal(t, 4, v.Required)
	assert.Contains(t, allCodes(d), ReasonScaleDownStabilizing)
	assert.Contains(t, d.Summary, "in 20m0s")

	// Twenty minutes on, the window holds only 5 (30 min ago) and 4s: it
	// goes to 4 in one step, freeing 6 of 10 slots.
	h = History{Recommendations: []RecommendationRecord{rec(40*time.Minute, 6), rec(30*time.Minute, 5), rec(10*time.Minute, 4)}}
	d = Decide(s, testPolicy(), h, t0)
	require.Equal(t, ActionScale, d.Action, d.Summary)
	v = vertexByID(d, "src")
	assert.Equal(t, 4, v.Recommended)

	// Not covered yet (nothing as old as the window): hold, and say how
	// long the window is.
	h.Recommendations = []RecommendationRecord{rec(20*time.Minute, 8), rec(10*time.Minute, 5)}
	d = Decide(s, testPolicy(), h, t0)
	assert.Equal(t, ActionHold, d.Action)
	assert.Contains(t, allCodes(d), ReasonScaleDownStabilizing)

	// The controller records each decision; Record keeps the window and
	// drops older entries.
	h2 := History{}.Record(d, 30*time.Minute)
	require.Len(t, h2.Recommendations, 1)
	assert.Equal(t, 4, h2.Recommendations[0].Parallelism["src"])
	later := d
	later.At = t0.Add(time.Hour)
	h3 := h2.Record(later, 30*time.Minute)
	assert.Len(t, h3.Recommendations, 1, "the hour-old entry is outside the window")
	assert.Len(t, h2.Recommendations, 1, "Record does not modify its receiver")
	// A hold on bad data is not a recommendation.
	s.Samples = 1
	bad := Decide(s, testPolicy(), h2, t0.Add(time.Minute))
	require.False(t, bad.Sized)
	assert.Equal(t, h2, h2.Record(bad, 30*time.Minute))
}

// The model's prefix-sum form of the restore rule agrees with
// assign.RestoreAssignment, and its fresh form with assign.FreshAssignment.
func TestWeightedPartitionShareMatchesFlinkRules(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 300 {
		n, p := 1+r.IntN(40), 1+r.IntN(12)
		p = min(p, n)
		x := &vertex{v: &Vertex{ID: "s", Partitions: n}, p: p}
		for k := range n {
			owner := r.IntN(p)
			x.v.PartitionRates = append(x.v.PartitionRates, PartitionRate{Topic: []string{"a", "orders", "b.c"}[k%3], Partition: k, ArrivalRatePerSecond: Float(1 + 100*r.Float64()), Subtask: &owner})
		}
		for _, fresh := range []bool{false, true} {
			sp, rs := newWeightedPartitions(x, fresh)
			require.Empty(t, rs)
			w := sp.(*weightedPartitions)
			rate := map[assign.TopicPartition]float64{}
			var all []assign.TopicPartition
			current := make([][]assign.TopicPartition, p)
			for _, pr := range x.v.PartitionRates {
				tp := assign.TopicPartition{Topic: pr.Topic, Partition: pr.Partition}
				rate[tp] = float64(pr.ArrivalRatePerSecond)
				all = append(all, tp)
			}
			assign.SortSplits(all)
			for _, tp := range all {
				for _, pr := range x.v.PartitionRates {
					if pr.Topic == tp.Topic && pr.Partition == tp.Partition {
						current[*pr.Subtask] = append(current[*pr.Subtask], tp)
					}
				}
			}
			for q := 1; q <= n+2; q++ {
				readers := assign.RestoreAssignment(current, q)
				if fresh {
					readers = assign.FreshAssignment(all, q)
				}
				busiest := 0.0
				for _, rd := range readers {
					sum := 0.0
					for _, tp := range rd {
						sum += rate[tp]
					}
					busiest = max(busiest, sum)
				}
				require.InDelta(t, busiest/w.total, w.share(q), 1e-12, "n=%d p=%d q=%d fresh=%v", n, p, q, fresh)
			}
		}
	}
}
