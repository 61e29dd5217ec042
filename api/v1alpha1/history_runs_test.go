package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

var runsT0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// rec is a decision at t0 + sec seconds requiring p of vertex "a" (and 2
// of "b"), with source "a" arriving at rate (none when rate < 0).
func rec(sec float64, p int, rate float64) scaling.RecommendationRecord {
	r := scaling.RecommendationRecord{At: runsT0.Add(time.Duration(sec * float64(time.Second))), Parallelism: map[string]int{"a": p, "b": 2}}
	if rate >= 0 {
		r.Arrival = map[string]float64{"a": rate}
	}
	return r
}

// Consecutive decisions that required the same parallelism of the same
// sources are one run: a time offset and a rate each.
func TestRecommendationRunsGrouping(t *testing.T) {
	type run struct {
		from    float64 // seconds after t0
		offsets []int32
		a       int32
		rates   []float64 // of source a; nil: no arrival
	}
	for _, tc := range []struct {
		name string
		in   []scaling.RecommendationRecord
		want []run
	}{
		{"steady: one run", []scaling.RecommendationRecord{rec(0, 4, 100), rec(30, 4, 110), rec(61, 4, 120)},
			[]run{{0, []int32{30, 61}, 4, []float64{100, 110, 120}}}},
		{"a change of parallelism starts a run, and a change back another",
			[]scaling.RecommendationRecord{rec(0, 4, 100), rec(30, 6, 300), rec(60, 6, 310), rec(90, 4, 100)},
			[]run{{0, nil, 4, []float64{100}}, {30, []int32{30}, 6, []float64{300, 310}}, {90, nil, 4, []float64{100}}}},
		{"a decision without a source's rate starts a run",
			[]scaling.RecommendationRecord{rec(0, 4, 100), rec(30, 4, -1), rec(60, 4, 120)},
			[]run{{0, nil, 4, []float64{100}}, {30, nil, 4, nil}, {60, nil, 4, []float64{120}}}},
		{"a NaN rate is a missing one (JSON has no NaN)",
			[]scaling.RecommendationRecord{rec(0, 4, 100), rec(30, 4, math.NaN())},
			[]run{{0, nil, 4, []float64{100}}, {30, nil, 4, nil}}},
		{"times in whole seconds: 30.9 s is offset 30", []scaling.RecommendationRecord{rec(0.4, 4, 1), rec(30.9, 4, 2)},
			[]run{{0, []int32{30}, 4, []float64{1, 2}}}},
		{"a decision older than the run's newest starts a run", []scaling.RecommendationRecord{rec(60, 4, 1), rec(30, 4, 2)},
			[]run{{60, nil, 4, []float64{1}}, {30, nil, 4, []float64{2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := v1alpha1.FromHistory(scaling.History{Recommendations: tc.in})
			var got []run
			for _, r := range st.RecommendationRuns {
				got = append(got, run{r.From.Sub(runsT0).Seconds(), r.Offsets, r.Parallelism["a"], r.Arrival["a"]})
				assert.Equal(t, int32(2), r.Parallelism["b"])
			}
			assert.Equal(t, tc.want, got)
			assert.Nil(t, st.Recommendations, "never written one entry per decision")
		})
	}
}

// randomHistory is n decisions a poll apart (jittered), whose parallelism
// changes now and then, with the odd missing or non-finite rate.
func randomHistory(rng *rand.Rand, n int) scaling.History {
	var h scaling.History
	at, p := runsT0, 1+rng.IntN(8)
	for range n {
		at = at.Add(time.Duration(27_000+rng.IntN(6_000)) * time.Millisecond)
		if rng.IntN(6) == 0 {
			p = 1 + rng.IntN(8)
		}
		r := scaling.RecommendationRecord{At: at, Parallelism: map[string]int{"src": p, "sink": 1 + p/2}}
		switch rng.IntN(10) {
		case 0: // no rate
		case 1:
			r.Arrival = map[string]float64{"src": math.Inf(1)}
		default:
			r.Arrival = map[string]float64{"src": 1000 * rng.Float64()}
			if rng.IntN(4) == 0 {
				r.Arrival["src2"] = 0
			}
		}
		h.Recommendations = append(h.Recommendations, r)
	}
	return h
}

// normalized is h as its status form keeps it: times in whole seconds,
// non-finite rates left out (no map when none is left).
func normalized(h scaling.History) scaling.History {
	var out scaling.History
	for _, r := range h.Recommendations {
		n := scaling.RecommendationRecord{At: r.At.Truncate(time.Second), Parallelism: r.Parallelism}
		for id, v := range r.Arrival {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				if n.Arrival == nil {
					n.Arrival = map[string]float64{}
				}
				n.Arrival[id] = v
			}
		}
		out.Recommendations = append(out.Recommendations, n)
	}
	return out
}

// Property: the runs give back every decision as the model recorded it
// (in whole seconds, finite rates), in memory and through JSON, and no
// two neighbouring runs could have been one.
func TestRecommendationRunsRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 6))
	for i := range 300 {
		h := randomHistory(rng, 1+rng.IntN(v1alpha1.MaxRecommendationHistory))
		st := v1alpha1.FromHistory(h)
		want := normalized(h)
		require.Equal(t, want, st.ToHistory(), "history %d in memory", i)
		b, err := json.Marshal(st)
		require.NoError(t, err)
		var back v1alpha1.HistoryStatus
		require.NoError(t, json.Unmarshal(b, &back))
		got := back.ToHistory()
		require.Len(t, got.Recommendations, len(want.Recommendations))
		for j := range want.Recommendations {
			w, g := want.Recommendations[j], got.Recommendations[j]
			require.True(t, w.At.Equal(g.At), "history %d decision %d: at %v, want %v", i, j, g.At, w.At)
			require.Equal(t, w.Parallelism, g.Parallelism, "history %d decision %d", i, j)
			require.Equal(t, w.Arrival, g.Arrival, "history %d decision %d", i, j)
		}
		for j := 1; j < len(st.RecommendationRuns); j++ {
			a, b := st.RecommendationRuns[j-1], st.RecommendationRuns[j]
			sameSources := len(a.Arrival) == len(b.Arrival)
			for id := range a.Arrival {
				_, ok := b.Arrival[id]
				sameSources = sameSources && ok
			}
			require.False(t, reflect.DeepEqual(a.Parallelism, b.Parallelism) && sameSources,
				"history %d: runs %d and %d could be one", i, j-1, j)
		}
	}
}

// A status written one entry per decision (before runs) is read: the
// entries older than the first run, then the runs; the next write keeps
// runs alone.
func TestLegacyRecommendationsAreRead(t *testing.T) {
	legacy := func(sec int, p int32) v1alpha1.RecommendationStatus {
		return v1alpha1.RecommendationStatus{At: metav1.NewTime(runsT0.Add(time.Duration(sec) * time.Second)),
			Parallelism: map[string]int32{"a": p, "b": 2}, Arrival: map[string]float64{"a": float64(sec)}}
	}
	st := &v1alpha1.HistoryStatus{
		Recommendations: []v1alpha1.RecommendationStatus{legacy(0, 4), legacy(30, 4), legacy(60, 6)},
	}
	h := st.ToHistory()
	assert.Equal(t, []scaling.RecommendationRecord{rec(0, 4, 0), rec(30, 4, 30), rec(60, 6, 60)}, h.Recommendations)
	at, p, ok := st.NewestRecommendation()
	assert.True(t, ok)
	assert.Equal(t, runsT0.Add(time.Minute), at)
	assert.Equal(t, map[string]int32{"a": 6, "b": 2}, p)

	// A later cycle's write: runs alone, and a status holding both (a
	// write of an older release in between) reads each decision once.
	next := v1alpha1.FromHistory(scaling.History{Recommendations: append(h.Recommendations, rec(90, 6, 90))})
	assert.Nil(t, next.Recommendations)
	assert.Len(t, next.RecommendationRuns, 2)
	both := &v1alpha1.HistoryStatus{Recommendations: st.Recommendations, RecommendationRuns: next.RecommendationRuns[1:]} // runs from 60 s
	assert.Equal(t, []scaling.RecommendationRecord{rec(0, 4, 0), rec(30, 4, 30), rec(60, 6, 60), rec(90, 6, 90)}, both.ToHistory().Recommendations)

	var none *v1alpha1.HistoryStatus
	_, _, ok = none.NewestRecommendation()
	assert.False(t, ok)
}

// The decisions a skipped status write left out are kept as runs and
// added back after the written newest.
func TestRecommendationsAfterAndWith(t *testing.T) {
	written := v1alpha1.FromHistory(scaling.History{
		Rescales:        []scaling.RescaleRecord{{DecidedAt: runsT0, Outcome: scaling.OutcomeSucceeded}},
		Recommendations: []scaling.RecommendationRecord{rec(0, 4, 10), rec(30, 4, 11)},
	})
	cycle := v1alpha1.FromHistory(scaling.History{
		Recommendations: []scaling.RecommendationRecord{rec(0, 4, 10), rec(30, 4, 11), rec(60, 4, 12), rec(90, 4, 13)},
	})
	writtenAt, _, _ := written.NewestRecommendation()
	tail := cycle.RecommendationsAfter(writtenAt)
	require.Len(t, tail, 1, "60 s and 90 s: one run")
	assert.Equal(t, []int32{30}, tail[0].Offsets)
	assert.Equal(t, []float64{12, 13}, tail[0].Arrival["a"])
	assert.Nil(t, cycle.RecommendationsAfter(runsT0.Add(90*time.Second)))

	merged := written.WithRecommendations(tail)
	assert.Equal(t, cycle.ToHistory().Recommendations, merged.ToHistory().Recommendations)
	assert.Equal(t, written.Rescales, merged.Rescales)
	require.Len(t, merged.RecommendationRuns, 1, "the tail continues the written run")
	assert.Equal(t, []int32{30, 60, 90}, merged.RecommendationRuns[0].Offsets)
	assert.Equal(t, []int32{30}, written.RecommendationRuns[0].Offsets, "the written history is not modified")
	assert.Equal(t, []float64{10, 11}, written.RecommendationRuns[0].Arrival["a"], "the written history is not modified")
	assert.Same(t, cycle, cycle.WithRecommendations(tail), "nothing newer: the history as it is")

	// Bounded: 120 written and 10 more keep the newest 120.
	var long []scaling.RecommendationRecord
	for i := range 130 {
		long = append(long, rec(float64(30*i), 4, float64(i)))
	}
	full := v1alpha1.FromHistory(scaling.History{Recommendations: long[:120]})
	more := v1alpha1.FromHistory(scaling.History{Recommendations: long[120:]}).RecommendationRuns
	got := full.WithRecommendations(more).ToHistory().Recommendations
	require.Len(t, got, v1alpha1.MaxRecommendationHistory)
	assert.Equal(t, long[10:], got)
}

// steadyDecisions is a steady job's history with the default windows at a
// 30 s poll (HistoryKeep: 30 min + 5 min + 30 s = 71 decisions) for 10
// vertices of 32-character ids, one of them a source.
func steadyDecisions() scaling.History {
	var h scaling.History
	for i := range 71 {
		r := scaling.RecommendationRecord{At: runsT0.Add(time.Duration(i) * 30 * time.Second), Parallelism: map[string]int{},
			Arrival: map[string]float64{fmt.Sprintf("%032x", 0): 12_000 + 37.25*float64(i%7)}}
		for v := range 10 {
			r.Parallelism[fmt.Sprintf("%032x", v)] = 4
		}
		h.Recommendations = append(h.Recommendations, r)
	}
	return h
}

// legacyOf is h one entry per decision, as releases before runs wrote it.
func legacyOf(h scaling.History) *v1alpha1.HistoryStatus {
	st := &v1alpha1.HistoryStatus{}
	for _, r := range h.Recommendations {
		e := v1alpha1.RecommendationStatus{At: metav1.NewTime(r.At), Parallelism: map[string]int32{}, Arrival: r.Arrival}
		for id, n := range r.Parallelism {
			e.Parallelism[id] = int32(n)
		}
		st.Recommendations = append(st.Recommendations, e)
	}
	return st
}

// The size of a steady job's history in JSON (etcd, every status write):
// one entry per decision against one run.
func TestRecommendationRunsSize(t *testing.T) {
	h := steadyDecisions()
	entries, err := json.Marshal(legacyOf(h))
	require.NoError(t, err)
	runs, err := json.Marshal(v1alpha1.FromHistory(h))
	require.NoError(t, err)
	t.Logf("71 decisions of 10 vertices: %d bytes of JSON one entry each, %d as runs", len(entries), len(runs))
	// Each entry repeats 10 × ("<32 hex>":4,) = 10 × 37 bytes of
	// parallelism; the run writes them once and a 2-6 digit offset and
	// a rate per decision.
	assert.Greater(t, len(entries), 71*10*37)
	assert.Less(t, len(runs), 2*1024)
}

// BenchmarkHistoryDecode decodes a steady job's history as an informer
// does, in both forms, and reports what each keeps on the heap.
func BenchmarkHistoryDecode(b *testing.B) {
	h := steadyDecisions()
	for _, form := range []struct {
		name string
		st   *v1alpha1.HistoryStatus
	}{{"entries", legacyOf(h)}, {"runs", v1alpha1.FromHistory(h)}} {
		b.Run(form.name, func(b *testing.B) {
			data, err := json.Marshal(form.st)
			require.NoError(b, err)
			const n = 500
			kept := make([]*v1alpha1.HistoryStatus, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range kept {
				kept[i] = &v1alpha1.HistoryStatus{}
				require.NoError(b, json.Unmarshal(data, kept[i]))
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(kept)
			b.ResetTimer()
			for range b.N {
				var st v1alpha1.HistoryStatus
				if err := json.Unmarshal(data, &st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B-kept/history")
			b.ReportMetric(float64(len(data)), "B-json/history")
		})
	}
}

// FuzzHistoryStatus reads any status history JSON the API server could
// hold (written by hand, or by another release): the model's form never
// panics, and the runs it is written back as give the same decisions.
func FuzzHistoryStatus(f *testing.F) {
	for _, h := range []scaling.History{steadyDecisions(), randomHistory(rand.New(rand.NewPCG(1, 2)), 20)} {
		b, _ := json.Marshal(v1alpha1.FromHistory(h))
		f.Add(b)
		b, _ = json.Marshal(legacyOf(h))
		f.Add(b)
	}
	f.Add([]byte(`{"recommendationRuns":[{"from":"2026-12-06T10:00:00Z","offsets":[-30,2147483647,5],"parallelism":{"a":1},"arrival":{"a":[1],"b":[1,2,3,4,5]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st v1alpha1.HistoryStatus
		if json.Unmarshal(data, &st) != nil {
			return
		}
		h := st.ToHistory()
		again := v1alpha1.FromHistory(h)
		if _, err := json.Marshal(again); err != nil {
			t.Fatalf("written back, the history does not encode: %v", err)
		}
		want := normalized(h)
		if len(want.Recommendations) > v1alpha1.MaxRecommendationHistory {
			want.Recommendations = want.Recommendations[len(want.Recommendations)-v1alpha1.MaxRecommendationHistory:]
		}
		got := again.ToHistory()
		if len(got.Recommendations) != len(want.Recommendations) {
			t.Fatalf("%d decisions written back, want %d", len(got.Recommendations), len(want.Recommendations))
		}
		for i := range want.Recommendations {
			w, g := want.Recommendations[i], got.Recommendations[i]
			if !w.At.Equal(g.At) || !reflect.DeepEqual(w.Parallelism, g.Parallelism) || !reflect.DeepEqual(w.Arrival, g.Arrival) {
				t.Fatalf("decision %d: got %+v, want %+v", i, g, w)
			}
		}
	})
}

// Property: a skipped write's decisions (RecommendationsAfter the written
// newest) added back to the written history (WithRecommendations) give
// the cycle's decisions, bounded, and leave the written history as it
// was.
func TestRecommendationsAfterAndWithProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 12))
	for i := range 300 {
		h := randomHistory(rng, 2+rng.IntN(2*v1alpha1.MaxRecommendationHistory))
		k := 1 + rng.IntN(len(h.Recommendations)-1)
		written := v1alpha1.FromHistory(scaling.History{Recommendations: h.Recommendations[:k]})
		cycle := v1alpha1.FromHistory(h)
		if rng.IntN(2) == 0 { // the cycle's history is the unbounded one
			cycle = &v1alpha1.HistoryStatus{RecommendationRuns: v1alpha1.FromHistory(scaling.History{Recommendations: h.Recommendations[:k]}).RecommendationRuns}
			cycle = cycle.WithRecommendations(v1alpha1.FromHistory(scaling.History{Recommendations: h.Recommendations[k:]}).RecommendationRuns)
		}
		before := written.DeepCopy()
		at, _, _ := written.NewestRecommendation()
		tail := cycle.RecommendationsAfter(at)
		want := normalized(h).Recommendations
		if len(want) > v1alpha1.MaxRecommendationHistory {
			want = want[len(want)-v1alpha1.MaxRecommendationHistory:]
		}
		var wantTail []scaling.RecommendationRecord
		for _, r := range want {
			if r.At.After(at) {
				wantTail = append(wantTail, r)
			}
		}
		require.Equal(t, wantTail, (&v1alpha1.HistoryStatus{RecommendationRuns: tail}).ToHistory().Recommendations, "history %d: the tail after %d", i, k)
		merged := written.WithRecommendations(tail)
		require.Equal(t, want, merged.ToHistory().Recommendations, "history %d split at %d", i, k)
		require.Equal(t, before, written, "history %d: the written history changed", i)
		total := 0
		for _, r := range merged.RecommendationRuns {
			total += 1 + len(r.Offsets)
		}
		require.LessOrEqual(t, total, v1alpha1.MaxRecommendationHistory)
	}
}
