package bench

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
)

var foT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// foV is one vertex of a hand-built job: constant rates, so that the
// counters grow linearly from the job's RUNNING time.
type foV struct {
	id         string
	p, maxP    int // maxP 0: 128
	inputs     []scaling.Input
	in, out    float64  // records/s
	inGauge    *float64 // numRecordsInPerSecond; nil: in
	busy       float64  // busyTimeMsPerSecond, max over subtasks
	busyAt     func(at time.Duration) float64
	bp         float64 // backPressuredTimeMsPerSecond, avg
	lag0       float64 // pendingRecords at RUNNING (sources)
	lagRate    float64 // pendingRecords growth, records/s
	noLag      bool    // pendingRecords not registered (nil)
	partitions int
}

type foJob struct {
	id    string
	since time.Time
	vs    []foV
}

func foPtr(x float64) *float64 { return &x }

func foIn(id, ship string) []scaling.Input {
	return []scaling.Input{{ID: id, ShipStrategy: ship}}
}

// obs is the job at foT0+at.
func (j *foJob) obs(at time.Duration) Observation {
	now := foT0.Add(at)
	el := math.Max(now.Sub(j.since).Seconds(), 0)
	d := Deployment{Parallelism: map[string]int{}, SlotsPerTaskManager: 1, CPUPerTaskManager: 1, RunningSince: j.since}
	s := metrics.FlinkSample{At: now, JobID: j.id, State: "RUNNING", RunningSince: j.since}
	for _, v := range j.vs {
		busy := v.busy
		if v.busyAt != nil {
			busy = v.busyAt(at)
		}
		maxP := v.maxP
		if maxP == 0 {
			maxP = 128
		}
		vs := metrics.VertexSample{
			ID: v.id, Name: v.id, Parallelism: v.p, MaxParallelism: maxP, Inputs: v.inputs,
			BusyTimeMsPerSecond:          &metrics.Agg{Avg: busy * 0.9, Max: busy},
			BackPressuredTimeMsPerSecond: &metrics.Agg{Avg: v.bp, Max: v.bp},
			NumRecordsIn:                 foPtr(v.in * el), NumRecordsOut: foPtr(v.out * el),
			NumRecordsInPerSecond: foPtr(v.in), NumRecordsOutPerSecond: foPtr(v.out),
		}
		if v.inGauge != nil {
			vs.NumRecordsInPerSecond = v.inGauge
		}
		if len(v.inputs) == 0 && !v.noLag {
			vs.PendingRecords = foPtr(v.lag0 + v.lagRate*el)
		}
		for i := range v.partitions {
			vs.Partitions = append(vs.Partitions, metrics.PartitionOwner{Topic: "orders", Partition: i, Subtask: i % v.p})
		}
		s.Vertices = append(s.Vertices, vs)
		d.Parallelism[v.id] = v.p
	}
	return Observation{Now: now, Flink: s, Deployment: d}
}

// foQuick is the defaults with a 1 min stabilization and a 2 min window:
// samples at 1m, 2m, 3m fill it, and the first evaluation is at 3m.
func foQuick() *FlinkOperator {
	return foQuickOf(NewFlinkOperator())
}

// foQuickOf is f with foQuick's stabilization and window.
func foQuickOf(f *FlinkOperator) *FlinkOperator {
	f.Config.StabilizationInterval = time.Minute
	f.Config.MetricsWindow = 2 * time.Minute
	return f
}

// foRun observes the job every minute from `from` to `to` (inclusive) and
// returns the first plan and when it came.
func foRun(f *FlinkOperator, j *foJob, from, to time.Duration) (*Plan, time.Duration) {
	for at := from; at <= to; at += time.Minute {
		if p := f.Observe(j.obs(at)); p != nil {
			return p, at
		}
	}
	return nil, -1
}

func TestFlinkOperatorDefaults(t *testing.T) {
	f := NewFlinkOperator()
	assert.Equal(t, "flink-operator", f.Name())
	assert.Equal(t, 60*time.Second, f.Interval())
	hi, lo := f.Config.utilBounds()
	assert.InDelta(t, 1.0, hi, 1e-12) // 0.7 + 0.3
	assert.InDelta(t, 0.4, lo, 1e-12) // 0.7 − 0.3
	assert.Equal(t, 15*time.Minute, f.Config.MetricsWindow)
	assert.Equal(t, time.Hour, f.Config.ScaleDownInterval)
	assert.Equal(t, FOAlignLegacyEvenlySpread, f.Config.Alignment)
	assert.False(t, f.Config.TPRInputFromGauge)
	assert.False(t, f.Config.ExpectedRatePerSubtask)
}

func TestFlinkOperator116Defaults(t *testing.T) {
	f := NewFlinkOperator116()
	assert.Equal(t, "flink-operator-1.16", f.Name())
	// 1.15's defaults but for the alignment mode, FLINK-39306 and FLINK-39743
	want := DefaultFlinkOperatorConfig()
	want.Alignment = FOAlignBalanced
	want.TPRInputFromGauge = true
	want.ExpectedRatePerSubtask = true
	assert.Equal(t, want, f.Config)
	assert.Contains(t, Policies, "flink-operator-1.16")
	p, err := NewPolicy("flink-operator-1.16", nil)
	require.NoError(t, err)
	assert.Equal(t, "flink-operator-1.16", p.Name())
}

func TestFlinkOperatorCapacity(t *testing.T) {
	cfg := DefaultFlinkOperatorConfig()
	noCatchUp := cfg
	noCatchUp.CatchUpDuration = 0
	for _, c := range []struct {
		name               string
		cfg                FlinkOperatorConfig
		target, catchUp, u float64
		restart            bool
		want               float64
	}{
		// round(0 + 1000×300/1800 + 1000/0.7) = round(166.667 + 1428.571) = round(1595.238)
		{"target util with restart", cfg, 1000, 0, 0.7, true, 1595},
		// round(200 + 166.667 + 1428.571) = round(1795.238)
		{"catch-up and restart", cfg, 1000, 200, 0.7, true, 1795},
		// scale-up threshold: round(200 + 1000/1.0), no restart term
		{"max util without restart", cfg, 1000, 200, 1.0, false, 1200},
		// scale-down threshold: round(0 + 166.667 + 1000/0.4 = 2500) = round(2666.667)
		{"min util with restart", cfg, 1000, 0, 0.4, true, 2667},
		// catch-up.duration 0: no restart term: round(1000/0.7 = 1428.571)
		{"no catch-up no restart term", noCatchUp, 1000, 0, 0.7, true, 1429},
		// util is clamped to [0, 1]: 1000/1
		{"util above 1 clamped", cfg, 1000, 0, 1.5, false, 1000},
		// util 0 (the backlog's minimum): +∞
		{"util zero", cfg, 1000, 0, 0, true, math.Inf(1)},
		// Java Math.round rounds half up: round(2.5) = 3
		{"half up", cfg, 2.5, 0, 1, false, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, foCapacity(c.cfg, c.target, c.catchUp, c.u, c.restart))
		})
	}
	assert.Equal(t, -2.0, foJavaRound(-2.5)) // Java: floor(-2.5 + 0.5)
}

func TestFlinkOperatorEvaluate(t *testing.T) {
	src := func(mod func(*foV)) foV {
		v := foV{id: "src", p: 4, in: 1000, out: 1000, busy: 500}
		if mod != nil {
			mod(&v)
		}
		return v
	}
	type want struct {
		tpr, target, catchUp, scaleUp, scaleDown, capacity float64
	}
	// src and sink whose numRecordsInPerSecond gauges (800) are below their
	// counter rates (1000)
	gaugeBelowRate := []foV{
		src(func(v *foV) { v.inGauge = foPtr(800) }),
		{id: "sink", p: 2, inputs: foIn("src", "REBALANCE"), in: 1000, inGauge: foPtr(800), busy: 400},
	}
	// a vertex with target 1000, no catch-up and TPR 2000: up = round(1000/1.0);
	// down = round(1000×300/1800 + 1000/0.4) = round(2666.667);
	// capacity = round(166.667 + 1000/0.7) = round(1595.238)
	half := want{2000, 1000, 0, 1000, 2667, 1595}
	for _, c := range []struct {
		name    string
		vs      []foV
		want    map[string]want
		backlog bool
		v116    bool // NewFlinkOperator116
	}{
		{
			name: "chain at half busy",
			vs:   []foV{src(nil), {id: "sink", p: 2, inputs: foIn("src", "REBALANCE"), in: 1000, busy: 250}},
			want: map[string]want{
				// TPR = 1000 / 0.5; up = round(1000/1.0); down = round(1000×300/1800 + 1000/0.4)
				// = round(2666.667); capacity = round(166.667 + 1000/0.7) = round(1595.238)
				"src": {2000, 1000, 0, 1000, 2667, 1595},
				// ratio 1000/1000: same target; TPR = 1000 / 0.25
				"sink": {4000, 1000, 0, 1000, 2667, 1595},
			},
		},
		{
			name: "lag growth adds to the target",
			vs:   []foV{src(func(v *foV) { v.lagRate = 200 })},
			want: map[string]want{
				// target = 1000 + 200; LAG at 3m = 200×180 = 36000, catch-up = 36000/1800 = 20;
				// up = round(20 + 1200) ; down = round(20 + 1200/6 + 1200/0.4) = 3220;
				// capacity = round(20 + 200 + 1714.286) = round(1934.286)
				// (observed TPR: LAG ≥ 30 s × 1000 only at 3m: 1 < 2 observations)
				"src": {2000, 1200, 20, 1220, 3220, 1934},
			},
		},
		{
			name: "flatMap output ratio",
			vs: []foV{
				src(func(v *foV) { v.lagRate = 200 }),
				{id: "fm", p: 2, inputs: foIn("src", "FORWARD"), in: 1000, out: 3000, busy: 400},
				{id: "sink", p: 2, inputs: foIn("fm", "REBALANCE"), in: 3000, busy: 600},
			},
			want: map[string]want{
				"src": {2000, 1200, 20, 1220, 3220, 1934},
				// ratio 1000/1000 = 1: target 1200, catch-up 20; TPR = 1000/0.4
				"fm": {2500, 1200, 20, 1220, 3220, 1934},
				// ratio 3000/1000 = 3: target 3600, catch-up 60; TPR = 3000/0.6;
				// up = round(60 + 3600); down = round(60 + 600 + 9000);
				// capacity = round(60 + 600 + 5142.857) = round(5802.857)
				"sink": {5000, 3600, 60, 3660, 9660, 5803},
			},
		},
		{
			name: "two inputs, each with one output",
			vs: []foV{
				{id: "a", p: 2, in: 600, out: 600, busy: 300, lagRate: 60},
				{id: "b", p: 2, in: 400, out: 400, busy: 200},
				{id: "j", p: 4, inputs: []scaling.Input{{ID: "a", ShipStrategy: "HASH"}, {ID: "b", ShipStrategy: "HASH"}}, in: 1000, busy: 500},
			},
			want: map[string]want{
				// a: target 600 + 60; LAG at 3m = 60×180 = 10800, catch-up 6; TPR = 600/0.3;
				// up = round(666); down = round(6 + 110 + 1650) = 1766; capacity = round(6 + 110 + 942.857)
				"a": {2000, 660, 6, 666, 1766, 1059},
				// b: TPR = 400/0.2; down = round(66.667 + 1000); capacity = round(66.667 + 571.429)
				"b": {2000, 400, 0, 400, 1067, 638},
				// j: edge a→j = 1000 − out(b) 400 = 600, ratio 600/600 = 1; b→j = 1000 − 600 = 400, ratio 1;
				// target = 660 + 400 = 1060; catch-up 6; TPR = 1000/0.5;
				// up = round(6 + 1060) ; down = round(6 + 176.667 + 2650) = round(2832.667);
				// capacity = round(6 + 176.667 + 1514.286) = round(1696.952)
				"j": {2000, 1060, 6, 1066, 2833, 1697},
			},
		},
		{
			name: "observed TPR replaces a busy-time TPR above it by 15%",
			// LAG 100000 ≥ 30 s × 1000 at every sample: observed = 1000 / (1 − 500/1000) = 2000
			// (3 observations ≥ 2); busy TPR = 1000/0.1 = 10000 > 2000 × 1.15 → TPR = 2000.
			// catch-up = 100000/1800 = 55.556; 100000/1000 = 100 s < 300 s: no backlog;
			// up = round(1055.556); down = round(55.556 + 166.667 + 2500) = round(2722.222);
			// capacity = round(55.556 + 166.667 + 1428.571) = round(1650.794)
			vs:   []foV{src(func(v *foV) { v.busy, v.bp, v.lag0 = 100, 500, 100000 })},
			want: map[string]want{"src": {2000, 1000, 100000.0 / 1800, 1056, 2722, 1651}},
		},
		{
			name: "one observation is not carried into a second",
			// LAG = 40000 − 100 t: 34000 ≥ 30 s × 1000 at 1m: observed 1000/(1 − 500/1000) = 2000;
			// 28000 and 22000 at 2m and 3m: carried average of 1 < 2 observations → NaN.
			// So 1 observation < 2: busy TPR 1000/0.1 = 10000 stays. target = 1000 − 100 = 900;
			// catch-up = 22000/1800 = 12.222; up = round(912.222); down = round(12.222 + 150 +
			// 2250) = round(2412.222); capacity = round(12.222 + 150 + 1285.714) = round(1447.937)
			vs:   []foV{src(func(v *foV) { v.busy, v.bp, v.lag0, v.lagRate = 100, 500, 40000, -100 })},
			want: map[string]want{"src": {10000, 900, 22000.0 / 1800, 912, 2412, 1448}},
		},
		{
			name: "two observations are carried and switch",
			// LAG = 40000 − 75 t: 35500 and 31000 at 1m and 2m: observed 2000 twice; 26500 at
			// 3m: carried average 2000 (2 ≥ 2). 10000 > 2000 × 1.15 → TPR 2000.
			// target 925; catch-up = 26500/1800 = 14.722; up = round(939.722);
			// down = round(14.722 + 154.167 + 2312.5) = round(2481.389);
			// capacity = round(14.722 + 154.167 + 1321.429) = round(1490.317)
			vs:   []foV{src(func(v *foV) { v.busy, v.bp, v.lag0, v.lagRate = 100, 500, 40000, -75 })},
			want: map[string]want{"src": {2000, 925, 26500.0 / 1800, 940, 2481, 1490}},
		},
		{
			name: "1.15: TPR numerator is the counter rate",
			// sink: rate(NUM_RECORDS_IN) 1000 / 0.4 = 2500 (its gauge, 800, is not read);
			// src: TPR 1000/0.5; observed: LAG 0 < 30 s × 800, none
			vs:   gaugeBelowRate,
			want: map[string]want{"src": half, "sink": {2500, 1000, 0, 1000, 2667, 1595}},
		},
		{
			name: "1.16: TPR numerator of a non-source is the gauge (FLINK-39306)",
			// sink: avg(numRecordsInPerSecond) 800 / 0.4 = 2000; the source keeps its
			// counter rate: 1000/0.5 = 2000, not 800/0.5; targets still from counter rates
			vs:   gaugeBelowRate,
			want: map[string]want{"src": half, "sink": {2000, 1000, 0, 1000, 2667, 1595}},
			v116: true,
		},
		{
			name: "busy-time TPR kept within 15% of the observed one",
			// busy TPR = 1000/0.45 = 2222.2 ≤ 2000 × 1.15 = 2300
			vs:   []foV{src(func(v *foV) { v.busy, v.bp, v.lag0 = 450, 500, 100000 })},
			want: map[string]want{"src": {1000 / 0.45, 1000, 100000.0 / 1800, 1056, 2722, 1651}},
		},
		{
			name: "backlog lifts the scale-down threshold",
			// LAG 360000 / 1000 = 360 s > 300 s; catch-up = 360000/1800 = 200;
			// up = round(200 + 1000/1.0); down = +∞; observed: 1000/(1−0) = 1000 and busy
			// TPR = 1000/0.9 = 1111.1 ≤ 1150: kept
			vs:      []foV{src(func(v *foV) { v.busy, v.lag0 = 900, 360000 })},
			want:    map[string]want{"src": {1000 / 0.9, 1000, 200, 1200, math.Inf(1), 1795}},
			backlog: true,
		},
		{
			name: "pendingRecords absent is LAG 0",
			vs:   []foV{src(func(v *foV) { v.noLag = true })},
			want: map[string]want{"src": {2000, 1000, 0, 1000, 2667, 1595}},
		},
		{
			name: "idle source has an infinite TPR",
			// input rate 0 → TPR +∞; target 0: thresholds round(0) = 0, capacity 0
			vs:   []foV{src(func(v *foV) { v.in, v.out = 0, 0 })},
			want: map[string]want{"src": {math.Inf(1), 0, 0, 0, 0, 0}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := foQuick()
			if c.v116 {
				f = foQuickOf(NewFlinkOperator116())
			}
			j := &foJob{id: "job", since: foT0, vs: c.vs}
			_, _ = foRun(f, j, time.Minute, 3*time.Minute)
			require.Len(t, f.samples, 3)
			require.NotNil(t, f.last)
			for id, w := range c.want {
				e := f.last[id]
				require.True(t, e.valid, id)
				foNear(t, w.tpr, e.tpr, id+" TPR")
				foNear(t, w.target, e.target, id+" target")
				foNear(t, w.catchUp, e.catchUp, id+" catch-up")
				foNear(t, w.scaleUp, e.scaleUp, id+" scale-up threshold")
				foNear(t, w.scaleDown, e.scaleDown, id+" scale-down threshold")
				foNear(t, w.capacity, e.targetCapacity, id+" target capacity")
				assert.Equal(t, c.backlog, e.processBacklog, id+" backlog")
			}
		})
	}
}

func foNear(t *testing.T, want, got float64, what string) {
	t.Helper()
	if math.IsInf(want, 0) {
		assert.Equal(t, want, got, what)
		return
	}
	assert.InDelta(t, want, got, 1e-6, what)
}

func TestFlinkOperatorAverage(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name string
		xs   []float64
		minN int
		want float64
	}{
		{"plain mean", []float64{1000, 2000}, 1, 1500},
		// (1000 + 2000) / 2: the +∞ sample is skipped, not averaged into +∞
		{"+∞ skipped", []float64{1000, inf, 2000}, 1, 1500},
		{"−∞ skipped", []float64{1000, math.Inf(-1)}, 1, 1000},
		{"NaN skipped", []float64{1000, nan, 3000}, 2, 2000},
		// no finite value: +∞ if any was infinite, before the minimum count
		{"only +∞", []float64{inf, inf}, 1, inf},
		{"only +∞ below the minimum", []float64{inf}, 2, inf},
		// one finite value < 2
		{"one finite below the minimum", []float64{1000, inf}, 2, nan},
		{"only NaN", []float64{nan, nan}, 1, nan},
		{"empty", nil, 1, nan},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ss []foSample
			for _, x := range c.xs {
				ss = append(ss, foSample{v: map[string]foPoint{"x": {obsTPR: x}}})
			}
			// a sample without the vertex counts for nothing
			ss = append(ss, foSample{v: map[string]foPoint{}})
			got := foAverage(ss, "x", func(p foPoint) float64 { return p.obsTPR }, c.minN)
			if math.IsNaN(c.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			foNear(t, c.want, got, "average")
		})
	}
}

func TestFlinkOperatorObservedTPR(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name              string
		stored            []float64 // earlier OBSERVED_TPR samples
		inPerSec, lag, bp float64
		want              float64
	}{
		{"no numRecordsInPerSecond", []float64{2000, 2000}, nan, 1e6, 0, nan},
		{"idle: +∞ whatever the lag", nil, 0, 0, nan, inf},
		// LAG 30000 ≥ 30 s × 1000: 1000 / (1 − 500/1000)
		{"catching up", nil, 1000, 30000, 500, 2000},
		// back pressure 1000 ms/s: no measure, mean of the stored (1500 + 2500)/2
		{"fully back-pressured: carried", []float64{1500, 2500}, 1000, 30000, 1000, 2000},
		{"back pressure unknown: carried", []float64{1500, 2500}, 1000, 30000, nan, 2000},
		// 29999 < 30000: not catching up; 1 stored < min-observations 2
		{"one stored observation is not carried", []float64{2000}, 1000, 29999, 0, nan},
		{"two stored observations: their mean", []float64{1800, 2200}, 1000, 29999, 0, 2000},
		// (1800 + 2200)/2, the +∞ skipped
		{"stored +∞ skipped", []float64{inf, 1800, 2200}, 1000, 0, 0, 2000},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := NewFlinkOperator()
			for _, x := range c.stored {
				f.samples = append(f.samples, foSample{v: map[string]foPoint{"src": {obsTPR: x}}})
			}
			got := f.observedTPR("src", c.inPerSec, c.lag, c.bp)
			if math.IsNaN(c.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			foNear(t, c.want, got, "observed TPR")
		})
	}
}

func TestFlinkOperatorOutputRatio(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name            string
		inputs          []string // of v; up is "a"
		outputs         map[string]int
		inRate, outRate map[string]float64
		want            float64
	}{
		// in(v) / in(a) = 3000 / 1000
		{"single input", []string{"a"}, nil, map[string]float64{"a": 1000, "v": 3000}, nil, 3},
		{"upstream idle", []string{"a"}, nil, map[string]float64{"a": 0, "v": 5}, nil, 0},
		// NaN > 0 is false: 0, not NaN
		{"upstream input rate NaN", []string{"a"}, nil, map[string]float64{"a": nan, "v": 1000}, nil, 0},
		// −50 / 1000 is floored at 0
		{"negative edge after a counter reset", []string{"a"}, nil, map[string]float64{"a": 1000, "v": -50}, nil, 0},
		// (in(v) 1000 − out(b) 400) / in(a) 600
		{"two inputs, each with one output", []string{"a", "b"}, map[string]int{"a": 1, "b": 1},
			map[string]float64{"a": 600, "b": 400, "v": 1000}, map[string]float64{"a": 900, "b": 400}, 1},
		// out(b) unknown: out(a) 900 / in(a) 600
		{"other input's output rate NaN: up's output rate", []string{"a", "b"}, map[string]int{"a": 1, "b": 1},
			map[string]float64{"a": 600, "v": 1000}, map[string]float64{"a": 900, "b": nan}, 1.5},
		// b feeds two vertices: out(a) 900 / 600
		{"other input with two outputs: up's output rate", []string{"a", "b"}, map[string]int{"a": 1, "b": 2},
			map[string]float64{"a": 600, "v": 1000}, map[string]float64{"a": 900, "b": 400}, 1.5},
		// in(v) 300 − out(b) 400 = −100: floored at 0
		{"edge below the other input's output", []string{"a", "b"}, map[string]int{"a": 1, "b": 1},
			map[string]float64{"a": 600, "v": 300}, map[string]float64{"a": 900, "b": 400}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := &foVertexInfo{id: "v", inputs: c.inputs}
			topo := foTopology{v: map[string]*foVertexInfo{"v": v}, outputs: c.outputs}
			foNear(t, c.want, foOutputRatio(topo, c.inRate, c.outRate, "a", v), "output ratio")
		})
	}
}

func TestFlinkOperatorSourceWithoutRateSkipsTheCycle(t *testing.T) {
	// Source a's NUM_RECORDS_IN is not reported: it has no ingestion rate, so
	// the evaluation fails (ScalingMetricEvaluator throws) and nothing
	// scales, although source b is outside bounds: TPR 1000/1.0 = 1000 <
	// round(catch-up LAG 90000/1800 = 50 + target 1000 + 500) = 1550 at 3m.
	f := foQuick()
	j := &foJob{id: "job", since: foT0, vs: []foV{
		{id: "a", p: 4, in: 1000, out: 1000, busy: 500},
		{id: "b", p: 2, in: 1000, out: 1000, busy: 1000, lagRate: 500},
	}}
	for at := time.Minute; at <= 3*time.Minute; at += time.Minute {
		o := j.obs(at)
		o.Flink.Vertices[0].NumRecordsIn, o.Flink.Vertices[0].NumRecordsOut = nil, nil
		assert.Nil(t, f.Observe(o), at)
	}
	require.NotNil(t, f.last)
	assert.True(t, math.IsNaN(f.last["a"].target))
	assert.True(t, f.last["b"].outside)
	foNear(t, 1550, f.last["b"].scaleUp, "b scale-up threshold")
}

func TestFlinkOperatorParallelism(t *testing.T) {
	cfg := DefaultFlinkOperatorConfig()
	upCap := cfg
	upCap.ScaleUpMaxFactor = 1
	for _, c := range []struct {
		name        string
		cfg         FlinkOperatorConfig
		capacity    float64
		tpr         float64
		cur, maxPar int
		want        int
	}{
		// factor 1595/2000 = 0.7975; ceil(0.7975×4 = 3.19)
		{"small scale-down rounds up to current", cfg, 1595, 2000, 4, 128, 4},
		// factor 1595/2000 = 0.7975; ceil(0.7975×10 = 7.975)
		{"scale-down", cfg, 1595, 2000, 10, 128, 8},
		// factor 1795/1111.1 = 1.6155; ceil(1.6155×4 = 6.462)
		{"scale-up", cfg, 1795, 1000 / 0.9, 4, 128, 7},
		// factor 160/1000 = 0.16 → clamped to 1 − 0.6 = 0.4; ceil(0.4×10)
		{"scale-down max factor", cfg, 160, 1000, 10, 128, 4},
		// factor 5000/1000 = 5 → clamped to 1 + 1 = 2; ceil(2×3)
		{"scale-up max factor", upCap, 5000, 1000, 3, 128, 6},
		// factor 2, ceil(2×150) = 300 → vertex.max-parallelism 200
		{"vertex max parallelism", cfg, 2000, 1000, 150, 1000, 200},
		// factor 2, ceil(2×100) = 200 → maxParallelism 128
		{"key groups cap", cfg, 2000, 1000, 100, 128, 128},
		// factor 1.1, ceil(1.1×250) = 275 → upper = max(250, 200) = 250
		{"current above vertex max is kept", cfg, 1100, 1000, 250, 1000, 250},
		// factor 0.4, ceil(0.4×1) = 1
		{"minimum 1", cfg, 100, 1000, 1, 128, 1},
		// infinite TPR: factor 0 → 0.4; ceil(0.4×5) = 2
		{"idle", cfg, 0, math.Inf(1), 5, 128, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			factor := foScaleFactor(c.cfg, c.capacity, c.tpr)
			assert.Equal(t, c.want, foParallelism(c.cfg, c.cur, c.maxPar, factor))
		})
	}
}

func TestFlinkOperatorAlign(t *testing.T) {
	legacy := DefaultFlinkOperatorConfig()
	balanced := DefaultFlinkOperator116Config()
	for _, c := range []struct {
		name                       string
		cur, p, maxPar, partitions int
		hash                       bool
		want, balanced             int // 1.15 EVENLY_SPREAD, 1.16 BALANCED
	}{
		// search [5, 24]: 24 % 6 == 0 (BALANCED: 24/5 = 4 is not < 4 either, 6 divides)
		{"24 partitions, p 5", 4, 5, 128, 24, false, 6, 6},
		// search [5, 7]: only 7 divides the prime 7; 7/5 = 7/6 = 1 do not reduce the load
		{"prime 7 partitions scale-up", 3, 5, 128, 7, false, 7, 7},
		// search [4, min(6, 7)] has no divisor of 7; walk down from 4: 7/3 = 2 > 7/4 = 1,
		// 3 does not divide 7 → 3 + 1 = 4. BALANCED: nothing in [4, 6] (7/q = 1), keeps 4
		{"prime 7 partitions scale-down walk", 6, 4, 128, 7, false, 4, 4},
		// search [7, min(7, 6)] is empty (maxParallelism 6); walk down from 6: 7/3 = 2 > 7/6 = 1 → 4 < 5:
		// the direction guard keeps 5. BALANCED: [6, 6] has nothing, keeps min(6, cap 6) = 6
		{"prime 7 partitions guard", 5, 6, 6, 7, false, 5, 6},
		// search [8, 4] is empty; walk down from 8: 4/4 = 1 > 4/8 = 0 and 4 | 4 → 4.
		// BALANCED: min(8, cap 4) = 4
		{"source capped at its partitions", 2, 8, 128, 4, false, 4, 4},
		// search [5, 128]: 128 % 8 == 0. BALANCED: 128/6 = 21 < 128/5 = 25 → 6
		{"key groups 128 scale-up", 4, 5, 128, 0, true, 8, 6},
		// search [5, min(8, 128)]: 8 divides 128 → 8 = current: the scale-down is dropped.
		// BALANCED: 6 reduces the load first
		{"key groups 128 scale-down keeps current", 8, 5, 128, 0, true, 8, 6},
		// search [5, 10]: 8; BALANCED 6
		{"key groups 128 scale-down", 10, 5, 128, 0, true, 8, 6},
		// neither partitions nor a HASH input: not aligned
		{"rebalance not aligned", 4, 5, 128, 0, false, 5, 5},
		// maxParallelism unknown: not aligned
		{"no key groups", 4, 5, 0, 0, true, 5, 5},
		// partitions take precedence over key groups: search [5, 12] → 6
		{"partitions over key groups", 4, 5, 128, 12, true, 6, 6},
		// FLINK-40389 (#1179): 15 partitions, current 100, maxParallelism 180, cap 15.
		// Raw 180: legacy walks down to 15 < 100 and the guard blocks (100); BALANCED keeps
		// min(180, 15) = 15.
		{"15 partitions raw 180", 100, 180, 180, 15, false, 100, 15},
		// raw 50: region [50, min(100, 15)] is empty; legacy walks down to 15 (15/15 = 1 >
		// 15/50 = 0); BALANCED min(50, 15) = 15
		{"15 partitions raw 50", 100, 50, 180, 15, false, 15, 15},
		// raw 10: region [10, 15]: 15 divides 15 (15/q = 1 for q in 10…14 reduces nothing)
		{"15 partitions raw 10", 100, 10, 180, 15, false, 15, 15},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, foAlign(legacy, c.cur, c.p, c.maxPar, c.partitions, c.hash), "1.15")
			assert.Equal(t, c.balanced, foAlign(balanced, c.cur, c.p, c.maxPar, c.partitions, c.hash), "1.16")
		})
	}
}

// foBacklogJob is a source that cannot keep up: LAG 360000 (360 s of input,
// a backlog), busy 90 %, and a sink.
func foBacklogJob(partitions int) *foJob {
	return &foJob{id: "job", since: foT0, vs: []foV{
		{id: "src", p: 4, in: 1000, out: 1000, busy: 900, lag0: 360000, partitions: partitions},
		{id: "sink", p: 2, inputs: foIn("src", "REBALANCE"), in: 1000, busy: 300},
	}}
}

func TestFlinkOperatorScaleUp(t *testing.T) {
	for _, c := range []struct {
		name       string
		partitions int
		want, w116 map[string]int // 1.15, 1.16
	}{
		// src: catch-up 360000/1800 = 200, TPR 1000/0.9 = 1111.1 < round(200 + 1000) = 1200;
		// capacity round(200 + 166.667 + 1428.571) = 1795; ceil(1795/1111.1 × 4 = 6.462) = 7.
		// sink: ratio 1, TPR 1000/0.3 = 3333.3; ceil(1795/3333.3 × 2 = 1.077) = 2 (unchanged,
		// listed at its current parallelism).
		{"unaligned", 0, map[string]int{"src": 7, "sink": 2}, map[string]int{"src": 7, "sink": 2}},
		// 24 partitions: search [7, 24] → 8 (BALANCED: 24/7 = 3 is not < 3; 8 divides)
		{"24 partitions", 24, map[string]int{"src": 8, "sink": 2}, map[string]int{"src": 8, "sink": 2}},
		// 15 partitions: search [7, 15]: the first divisor is 15; BALANCED: 15/8 = 1 < 15/7 = 2 → 8
		{"15 partitions", 15, map[string]int{"src": 15, "sink": 2}, map[string]int{"src": 8, "sink": 2}},
	} {
		for _, v := range []struct {
			f    *FlinkOperator
			want map[string]int
		}{{NewFlinkOperator(), c.want}, {NewFlinkOperator116(), c.w116}} {
			t.Run(c.name+"/"+v.f.Name(), func(t *testing.T) {
				f := foQuickOf(v.f)
				plan, at := foRun(f, foBacklogJob(c.partitions), time.Minute, 10*time.Minute)
				require.NotNil(t, plan)
				assert.Equal(t, 3*time.Minute, at)
				assert.Equal(t, v.want, plan.Parallelism)
				assert.Zero(t, plan.SlotsPerTaskManager)
				assert.Contains(t, plan.Reason, f.Name()+": src 4→")
			})
		}
	}
}

func TestFlinkOperatorPlanListsDeploymentOnlyVertices(t *testing.T) {
	f := foQuick()
	j := foBacklogJob(0)
	var plan *Plan
	for at := time.Minute; at <= 3*time.Minute && plan == nil; at += time.Minute {
		o := j.obs(at)
		o.Deployment.Parallelism["unreported"] = 3
		plan = f.Observe(o)
	}
	require.NotNil(t, plan)
	assert.Equal(t, map[string]int{"src": 7, "sink": 2, "unreported": 3}, plan.Parallelism)
}

// foOverloaded is a source whose lag grows by 500/s at a full busy time:
// TPR 1000 < target 1500.
func foOverloaded() *foJob {
	return &foJob{id: "job", since: foT0, vs: []foV{{id: "src", p: 2, in: 1000, out: 1000, busy: 1000, lagRate: 500}}}
}

func TestFlinkOperatorStabilizationAndWindow(t *testing.T) {
	f := NewFlinkOperator()
	j := foOverloaded()
	plan, at := foRun(f, j, time.Minute, 30*time.Minute)
	require.NotNil(t, plan)
	// stable at 5m (the sample at 5m is the window's first), full at 5m + 15m
	assert.Equal(t, 20*time.Minute, at)
	assert.Len(t, f.samples, 16) // 5m … 20m
	// at 20m: LAG = 500×1200 = 600000 (backlog: 600 s > 300 s), catch-up 333.333, target 1500;
	// capacity = round(333.333 + 1500×300/1800 + 1500/0.7) = round(2726.190) = 2726;
	// TPR 1000 (observed 1000/(1−0) = 1000 is not below 1000/1.15); ceil(2.726 × 2 = 5.452) = 6
	assert.Equal(t, map[string]int{"src": 6}, plan.Parallelism)
}

func TestFlinkOperatorWindowReset(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(j *foJob)
		want   time.Duration
	}{
		// samples 1m, 2m, 3m: full at 3m
		{"no restart", func(*foJob) {}, 3 * time.Minute},
		// RUNNING moves to 2m: stable at 3m, window 3m … 5m
		{"restart", func(j *foJob) { j.since = foT0.Add(2 * time.Minute) }, 5 * time.Minute},
		// a new job id clears the window; still stable: window 2m … 4m
		{"new job id", func(j *foJob) { j.id = "job2" }, 4 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := foQuick()
			j := foOverloaded()
			require.Nil(t, f.Observe(j.obs(time.Minute)))
			c.change(j)
			plan, at := foRun(f, j, 2*time.Minute, 10*time.Minute)
			require.NotNil(t, plan)
			assert.Equal(t, c.want, at)
		})
	}
}

func TestFlinkOperatorHolds(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(o *Observation)
	}{
		{"flink error", func(o *Observation) { o.FlinkErr = errors.New("connection refused") }},
		{"rescaling", func(o *Observation) { o.Deployment.Rescaling = true }},
		{"not running", func(o *Observation) { o.Flink.State = "RESTARTING" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := foQuick()
			j := foOverloaded()
			require.Nil(t, f.Observe(j.obs(time.Minute)))
			require.Nil(t, f.Observe(j.obs(2*time.Minute)))
			// at 3m the window would be full and the job overloaded
			o := j.obs(3 * time.Minute)
			c.mod(&o)
			assert.Nil(t, f.Observe(o))
			assert.Len(t, f.samples, 2, "no sample while holding")
			// at 4m: window 2m … 4m
			assert.NotNil(t, f.Observe(j.obs(4*time.Minute)))
		})
	}
}

func TestFlinkOperatorGate(t *testing.T) {
	immediate := func() *FlinkOperator {
		f := foQuick()
		f.Config.ScaleDownInterval = 0
		return f
	}
	t.Run("nothing outside bounds", func(t *testing.T) {
		// src: TPR 1000/0.5 = 2000 within [1000, 2667], yet ceil(1595/2000 × 10 = 7.975) = 8;
		// sink: TPR 2000, ceil(0.7975 × 4 = 3.19) = 4
		f := immediate()
		j := &foJob{id: "job", since: foT0, vs: []foV{
			{id: "src", p: 10, in: 1000, out: 1000, busy: 500},
			{id: "sink", p: 4, inputs: foIn("src", "HASH"), in: 1000, busy: 500},
		}}
		plan, _ := foRun(f, j, time.Minute, 20*time.Minute)
		assert.Nil(t, plan)
		assert.Equal(t, 8, f.last["src"].recommended)
		assert.False(t, f.last["src"].outside)
	})
	t.Run("one vertex outside rescales every changed vertex", func(t *testing.T) {
		// LAG grows 100/s: at 3m LAG = 18000, catch-up 10, target 1100 for both.
		// src: TPR 2000 within [round(1110), round(10 + 183.333 + 2750) = 2943];
		//   capacity round(10 + 183.333 + 1571.429) = 1765; ceil(1765/2000 × 10 = 8.825) = 9.
		// sink: TPR 1000/0.95 = 1052.6 < 1110: outside; ceil(1765/1052.6 × 4 = 6.707) = 7;
		//   HASH with 128 key groups: search [7, 128] → 8.
		f := immediate()
		j := &foJob{id: "job", since: foT0, vs: []foV{
			{id: "src", p: 10, in: 1000, out: 1000, busy: 500, lagRate: 100},
			{id: "sink", p: 4, inputs: foIn("src", "HASH"), in: 1000, busy: 950},
		}}
		plan, at := foRun(f, j, time.Minute, 20*time.Minute)
		require.NotNil(t, plan)
		assert.Equal(t, 3*time.Minute, at)
		assert.Equal(t, map[string]int{"src": 9, "sink": 8}, plan.Parallelism)
		assert.False(t, f.last["src"].outside)
		assert.True(t, f.last["sink"].outside)
		// EXPECTED_PROCESSING_RATE [≤1.15] = TPR × capped factor = 2000 × 1765/2000
		assert.InDelta(t, 1765, f.last["src"].expectedTPR, 1e-9)

		// 1.16: the same plan (sink's gauge is its counter rate; BALANCED: 128/7 = 18
		// is not < 18, 8 divides 128), and EXPECTED_PROCESSING_RATE = TPR / current ×
		// new = 2000 / 10 × 9 (FLINK-39743)
		f = foQuickOf(NewFlinkOperator116())
		f.Config.ScaleDownInterval = 0
		plan, at = foRun(f, j, time.Minute, 20*time.Minute)
		require.NotNil(t, plan)
		assert.Equal(t, 3*time.Minute, at)
		assert.Equal(t, map[string]int{"src": 9, "sink": 8}, plan.Parallelism)
		assert.InDelta(t, 1800, f.last["src"].expectedTPR, 1e-9)
	})
}

// TestFlinkOperatorGateDelayedScaleDown is the gate with scale-down.interval
// at its 1 h default (ScalingExecutor.computeScalingSummary with
// JobVertexScaler.applyScaleDownInterval): a delayed scale-down is no change
// and does not count; a due one counts with the flag stored with the
// interval's maximum recommendation.
func TestFlinkOperatorGateDelayedScaleDown(t *testing.T) {
	for _, c := range []struct {
		name       string
		vs         []foV
		wantAt     time.Duration
		want       map[string]int
		wantReason string
	}{
		{
			// src: TPR 1000/0.25 = 4000 > 2667: outside; 1595/4000 = 0.399 → 0.4 → 4, delayed
			// from 3m. sink: TPR 1000/0.7 = 1428.6 within [1000, 2667];
			// ceil(1595/1428.6 × 4 = 4.466) = 5, an in-bounds scale-up. At 3m the only
			// change is sink's, within bounds: no rescale (it was one before the fix). At 63m
			// src's scale-down is due with the maximum 4, recorded outside: both move.
			name: "a delayed vertex outside bounds does not rescale an in-bounds neighbour",
			vs: []foV{
				{id: "src", p: 10, in: 1000, out: 1000, busy: 250},
				{id: "sink", p: 4, inputs: foIn("src", "REBALANCE"), in: 1000, busy: 700},
			},
			wantAt:     63 * time.Minute,
			want:       map[string]int{"src": 4, "sink": 5},
			wantReason: "flink-operator: src 10→4 (TPR 4000 > 2667); sink 4→5 (within bounds)",
		},
		{
			// src, p 10: busy 500 to 20m: TPR 2000 within [1000, 2667], 1595/2000 → ceil(7.975)
			// = 8 (in bounds), delayed from 3m. 21m: avg(500, 500, 250) = 416.7 → TPR 2400,
			// in bounds, ceil(6.646) = 7. 22m: 333.3 → TPR 3000, outside, ceil(5.317) = 6.
			// 23m on: 4000, outside, 4. Recommendations: 8@20m, 7@21m, 6@22m, 4@now.
			// Due at 63m, but the maximum of [3m, 63m] is the in-bounds 8 (until 80m), then
			// the in-bounds 7 at 81m: no rescale although src is outside now. At 82m the
			// maximum of [22m, 82m] is the outside 6.
			name: "a due scale-down whose interval maximum was within bounds waits",
			vs: []foV{{id: "src", p: 10, in: 1000, out: 1000, busyAt: func(at time.Duration) float64 {
				if at <= 20*time.Minute {
					return 500
				}
				return 250
			}}},
			wantAt:     82 * time.Minute,
			want:       map[string]int{"src": 6},
			wantReason: "flink-operator: src 10→6 (delayed maximum outside bounds)",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := foQuick()
			j := &foJob{id: "job", since: foT0, vs: c.vs}
			plan, at := foRun(f, j, time.Minute, 120*time.Minute)
			require.NotNil(t, plan)
			assert.Equal(t, c.wantAt, at)
			assert.Equal(t, c.want, plan.Parallelism)
			assert.Equal(t, c.wantReason, plan.Reason)
		})
	}
}

func TestFlinkOperatorDelayedScaleDown(t *testing.T) {
	// src p 10, in 1000. busy 300 → TPR 3333.3 > 2667 (outside);
	// ceil(1595/3333.3 × 10 = 4.785) = 5. busy 250 → TPR 4000; 1595/4000 = 0.399 → 0.4 → 4.
	// busy 700 → TPR 1428.6 within bounds; ceil(1595/1428.6 × 10 = 11.165) = 12 ≥ 10 clears.
	// busy 550 (a 700/700/250 window) → TPR 1818.2; ceil(0.877 × 10 = 8.77) = 9.
	for _, c := range []struct {
		name   string
		busy   func(at time.Duration) float64
		wantAt time.Duration
		want   int
	}{
		// first recommendation at 3m: executed at 3m + 1h with the window's maximum 5,
		// although the current one is 4
		{"window maximum after the hour", func(at time.Duration) float64 {
			if at <= 20*time.Minute {
				return 300
			}
			return 250
		}, 63 * time.Minute, 5},
		{"steady", func(time.Duration) float64 { return 250 }, 63 * time.Minute, 4},
		// 30m: avg(250, 250, 700) = 400 → 7; 31m: 550 → 9; 32m: 700 → 12 clears;
		// 33m: 550 → TPR 1818.2, within bounds, 9 starts again; 34m: avg(700, 250, 250)
		// = 400 → TPR 2500 ≤ 2667, within bounds, 7; 35m on: 250 → 4, outside.
		// Due from 93m, but the interval's maximum is the in-bounds 9 (33m) at 93m
		// and the in-bounds 7 (34m) at 94m: no rescale; at 95m both have left
		// [35m, 95m] and the maximum is the outside 4.
		{"a recommendation at or above current restarts the clock", func(at time.Duration) float64 {
			if at >= 30*time.Minute && at <= 32*time.Minute {
				return 700
			}
			return 250
		}, 95 * time.Minute, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := foQuick()
			j := &foJob{id: "job", since: foT0, vs: []foV{{id: "src", p: 10, in: 1000, out: 1000, busyAt: c.busy}}}
			plan, at := foRun(f, j, time.Minute, 120*time.Minute)
			require.NotNil(t, plan)
			assert.Equal(t, c.wantAt, at)
			assert.Equal(t, map[string]int{"src": c.want}, plan.Parallelism)
			assert.Empty(t, f.delayed, "an executed rescale clears the delayed scale-downs")
		})
	}
}

func TestFlinkOperatorRescaledClearsDelayedScaleDown(t *testing.T) {
	f := foQuick()
	j := &foJob{id: "job", since: foT0, vs: []foV{{id: "src", p: 10, in: 1000, out: 1000, busy: 250}}}
	plan, _ := foRun(f, j, time.Minute, 10*time.Minute)
	require.Nil(t, plan)
	require.Contains(t, f.delayed, "src")
	// busy 250: TPR 4000, factor 0.4 → 4, waiting for the hour
	assert.Equal(t, 4, f.last["src"].recommended)
	assert.True(t, f.last["src"].scaleDownPending)
	assert.Equal(t, foT0.Add(3*time.Minute), f.delayed["src"].first)
	f.Rescaled(Rescale{})
	assert.Empty(t, f.delayed)
}

// foFuzzBytes hands out the fuzzer's bytes; 0 once they run out.
type foFuzzBytes struct {
	b []byte
}

func (r *foFuzzBytes) next() int {
	if len(r.b) == 0 {
		return 0
	}
	x := int(r.b[0])
	r.b = r.b[1:]
	return x
}

func (r *foFuzzBytes) float(scale float64) float64 { return float64(r.next()) / 255 * scale }

func FuzzFlinkOperatorObserve(f *testing.F) {
	f.Add([]byte{3, 4, 2, 200, 7, 9, 1, 255, 0, 30, 40, 50})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Add([]byte{4, 200, 100, 50, 25, 12, 6, 3, 1, 0, 99, 250, 17, 4, 4, 4, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &foFuzzBytes{b: data}
		pol := NewFlinkOperator()
		pol.Config.StabilizationInterval = time.Duration(r.next()%3) * time.Minute
		pol.Config.MetricsWindow = time.Duration(1+r.next()%4) * time.Minute
		pol.Config.ScaleDownInterval = time.Duration(r.next()%4) * time.Minute
		n := 1 + r.next()%5
		ids := []string{"a", "b", "c", "d", "e"}[:n]
		type vx struct {
			p, maxP int
			inputs  []scaling.Input
		}
		vs := make([]vx, n)
		dep := map[string]int{}
		for i := range vs {
			v := &vs[i]
			v.maxP = r.next() % 300 // 0: not reported
			v.p = 1 + r.next()%250
			if v.maxP > 0 && v.p > v.maxP {
				v.p = v.maxP
			}
			dep[ids[i]] = v.p
			if i > 0 && r.next()%4 != 0 {
				ship := []string{"HASH", "FORWARD", "REBALANCE"}[r.next()%3]
				v.inputs = append(v.inputs, scaling.Input{ID: ids[r.next()%i], ShipStrategy: ship})
				if r.next()%3 == 0 {
					v.inputs = append(v.inputs, scaling.Input{ID: ids[r.next()%n], ShipStrategy: ship})
				}
			}
		}
		since := foT0
		jobID := "job"
		counters := make([][2]float64, n)
		steps := 10 + r.next()%60
		for s := 1; s <= steps; s++ {
			now := foT0.Add(time.Duration(s) * time.Minute)
			if r.next()%17 == 0 {
				since, counters = now, make([][2]float64, n)
			}
			if r.next()%31 == 0 {
				jobID += "x"
			}
			o := Observation{Now: now, Deployment: Deployment{Parallelism: map[string]int{}, RunningSince: since}}
			for k, v := range dep {
				o.Deployment.Parallelism[k] = v
			}
			o.Flink = metrics.FlinkSample{At: now, JobID: jobID, State: "RUNNING", RunningSince: since}
			if r.next()%13 == 0 {
				o.FlinkErr = errors.New("down")
			}
			o.Deployment.Rescaling = r.next()%19 == 0
			for i, v := range vs {
				in, out := r.float(5000), r.float(5000)
				counters[i][0] += in * 60
				counters[i][1] += out * 60
				sv := metrics.VertexSample{
					ID: ids[i], Parallelism: dep[ids[i]], MaxParallelism: v.maxP, Inputs: v.inputs,
					NumRecordsInPerSecond: foPtr(in),
				}
				switch r.next() % 8 {
				case 0: // busy time missing
				case 1:
					sv.BusyTimeMsPerSecond = &metrics.Agg{Avg: 0, Max: 0}
				default:
					b := r.float(1000)
					sv.BusyTimeMsPerSecond = &metrics.Agg{Avg: b / 2, Max: b}
				}
				if r.next()%5 != 0 {
					sv.BackPressuredTimeMsPerSecond = &metrics.Agg{Avg: r.float(1000)}
				}
				if r.next()%6 != 0 {
					sv.NumRecordsIn = foPtr(counters[i][0])
				}
				if r.next()%6 != 0 {
					sv.NumRecordsOut = foPtr(counters[i][1])
				}
				if len(v.inputs) == 0 {
					if r.next()%3 != 0 {
						sv.PendingRecords = foPtr(r.float(1e7))
					}
					for k := range r.next() % 40 {
						sv.Partitions = append(sv.Partitions, metrics.PartitionOwner{Topic: "t", Partition: k})
					}
				}
				o.Flink.Vertices = append(o.Flink.Vertices, sv)
			}
			plan := pol.Observe(o)
			if plan == nil {
				continue
			}
			require.Zero(t, plan.SlotsPerTaskManager)
			require.Len(t, plan.Parallelism, n)
			for i, id := range ids {
				p, ok := plan.Parallelism[id]
				require.True(t, ok, "vertex %s missing from the plan", id)
				require.GreaterOrEqual(t, p, 1, id)
				require.LessOrEqual(t, p, max(200, dep[id]), id)
				if vs[i].maxP > 0 {
					require.LessOrEqual(t, p, vs[i].maxP, id)
				}
			}
			// the plan is carried out: a restart at the new parallelism
			for id, p := range plan.Parallelism {
				dep[id] = p
			}
			pol.Rescaled(Rescale{DecidedAt: now, CompletedAt: now, From: o.Deployment.Parallelism, To: plan.Parallelism})
			since, counters = now, make([][2]float64, n)
		}
	})
}

func TestFlinkOperatorExplain(t *testing.T) {
	f := NewFlinkOperator()
	assert.Empty(t, f.Explain(), "nothing evaluated yet")
	f.last = map[string]foVertexEval{
		"df85b03322cf860d36bf7bbdbc498ff0": {valid: true, busy: 1000, inRate: 599.5, tpr: 599.5, busyTPR: 599.5, obsTPR: math.NaN(),
			target: 599.5, scaleUp: 600, scaleDown: 1599, outside: true, recommended: 8},
		"712a6f476cd6ee71f3f0d459a5814a97": {},
	}
	assert.Equal(t, "712a6f: not evaluated; "+
		"df85b0: busy 1000 ms/s, in 599.5/s, lag 0, TPR 599.5 (busy 599.5, observed NaN), target 599.5 + catch-up 0.0, up at 600.0, down at 1599.0, outside true, → 8",
		f.Explain())
}
