package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

// steadyStatus is a steady job's status after a poll at t: Hold within the
// band, numbers in the summary, one history entry per poll since t0.
func steadyStatus(t0, t time.Time, lag int64) *v1alpha1.FlinkScalingPolicyStatus {
	st := &v1alpha1.FlinkScalingPolicyStatus{
		ObservedGeneration: 1, CurrentParallelism: "2/4", RecommendedParallelism: "2/4", LagRecords: lag,
		RescalePath: "OperatorUpgrade",
		Vertices:    []v1alpha1.VertexStatus{{ID: "a", Current: 2, Recommended: 2}, {ID: "b", Current: 4, Recommended: 4}},
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReady, Message: "target found and metrics collected"},
			{Type: v1alpha1.ConditionScaling, Status: metav1.ConditionFalse, Reason: "WithinBand", Message: "utilization " + t.Format(time.TimeOnly)},
		},
		LastDecision: &v1alpha1.DecisionStatus{Time: metav1.NewTime(t), Action: "Hold", Summary: "all vertices at " + t.String(),
			Reasons: []v1alpha1.ReasonStatus{{Code: "WithinBand", Vertex: "a", Message: t.String()}}},
	}
	var h scaling.History
	for at := t0; !at.After(t); at = at.Add(30 * time.Second) {
		h.Recommendations = append(h.Recommendations, scaling.RecommendationRecord{
			At: at, Parallelism: map[string]int{"a": 2, "b": 4}, Arrival: map[string]float64{"a": float64(at.Unix() % 97)}})
	}
	st.History = v1alpha1.FromHistory(h)
	return st
}

// What a steady poll changes is not material; each thing a user or a
// restart needs at once is.
func TestMaterialChange(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	prev := steadyStatus(t0, t0.Add(time.Minute), 500)
	next := func(f func(*v1alpha1.FlinkScalingPolicyStatus)) *v1alpha1.FlinkScalingPolicyStatus {
		s := steadyStatus(t0, t0.Add(90*time.Second), 500)
		if f != nil {
			f(s)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		next *v1alpha1.FlinkScalingPolicyStatus
		want bool
	}{
		{"a steady poll: new time, summary, messages, arrival, one more equal entry", next(nil), false},
		{"lag 500 → 1,400: below the 1,000-record floor", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.LagRecords = 1400 }), false},
		{"lag 500 → 1,600: doubled and +1,100", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.LagRecords = 1600 }), true},
		{"recommended parallelism", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.RecommendedParallelism = "3/4" }), true},
		{"a vertex's recommendation", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.Vertices[1].Recommended = 6 }), true},
		{"the newest required parallelism", next(func(s *v1alpha1.FlinkScalingPolicyStatus) {
			h := s.History.ToHistory()
			h.Recommendations = append(h.Recommendations, scaling.RecommendationRecord{At: t0.Add(91 * time.Second), Parallelism: map[string]int{"a": 2, "b": 5}})
			s.History = v1alpha1.FromHistory(h)
		}), true},
		{"the history written one entry per decision until now, as runs", next(func(s *v1alpha1.FlinkScalingPolicyStatus) {
			*s.History = v1alpha1.HistoryStatus{Recommendations: []v1alpha1.RecommendationStatus{
				{At: metav1.NewTime(t0), Parallelism: map[string]int32{"a": 2, "b": 4}}}}
		}), false},
		{"a condition's reason", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.Conditions[1].Reason = "Cooldown" }), true},
		{"a condition's status", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.Conditions[0].Status = metav1.ConditionFalse }), true},
		{"the action", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.LastDecision.Action = "Scale" }), true},
		{"a reason code", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.LastDecision.Reasons[0].Code = "Overloaded" }), true},
		{"a rescale starts", next(func(s *v1alpha1.FlinkScalingPolicyStatus) {
			s.Rescale = &v1alpha1.RescaleStatus{Phase: v1alpha1.RescaleSavepointing}
		}), true},
		{"a rescale recorded", next(func(s *v1alpha1.FlinkScalingPolicyStatus) {
			s.History.Rescales = []v1alpha1.RescaleRecordStatus{{Outcome: "InProgress"}}
		}), true},
		{"the generation observed", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.ObservedGeneration = 2 }), true},
		{"the rescale path", next(func(s *v1alpha1.FlinkScalingPolicyStatus) { s.RescalePath = "InPlace" }), true},
	} {
		assert.Equal(t, tc.want, materialChange(prev, tc.next), tc.name)
	}
}

// With a 5-minute refresh a steady job's status is written once per five
// minutes of decisions (polls at 30 s: every tenth), a material change at
// once, an unchanged status never; without a refresh, every change.
func TestStatusWriteDue(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	written := steadyStatus(t0, t0, 0)
	var writes []int
	for poll := 1; poll <= 20; poll++ {
		next := steadyStatus(t0, t0.Add(time.Duration(poll)*30*time.Second), 0)
		if statusWriteDue(written, next, DefaultStatusRefresh) {
			writes = append(writes, poll)
			written = next
		}
	}
	assert.Equal(t, []int{10, 20}, writes, "5 min / 30 s = every 10th poll")

	same := steadyStatus(t0, t0.Add(time.Minute), 0)
	assert.False(t, statusWriteDue(same, same.DeepCopy(), 0), "unchanged: never")
	assert.True(t, statusWriteDue(same, steadyStatus(t0, t0.Add(90*time.Second), 0), 0), "no refresh: every change")
	scaled := steadyStatus(t0, t0.Add(90*time.Second), 0)
	scaled.LastDecision.Action = "Scale"
	assert.True(t, statusWriteDue(same, scaled, DefaultStatusRefresh), "material: at once")
}

// The recommendations a skipped write leaves out are decided with and
// written with the next write: the written history has every poll's.
func TestUnwrittenRecommendationsAreKept(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	written := steadyStatus(t0, t0.Add(time.Minute), 0).History // 3 decisions
	full := steadyStatus(t0, t0.Add(3*time.Minute), 0).History  // 7 decisions
	tail := unwrittenOf(written, full)
	require.Len(t, tail, 1, "1:30, 2:00, 2:30, 3:00: one run")
	assert.Equal(t, []int32{30, 60, 90}, tail[0].Offsets)
	merged := withUnwritten(written, tail)
	assert.Equal(t, full.ToHistory(), merged.ToHistory())
	assert.Same(t, full, withUnwritten(full, tail), "nothing newer: the history as it is")
	assert.Len(t, written.ToHistory().Recommendations, 3, "the written history is not modified")
	assert.Nil(t, unwrittenOf(full, full))

	// A status an older release wrote, one entry per decision: the
	// decisions after its newest are the unwritten ones all the same.
	legacy := &v1alpha1.HistoryStatus{}
	for _, r := range written.ToHistory().Recommendations {
		legacy.Recommendations = append(legacy.Recommendations, v1alpha1.RecommendationStatus{At: metav1.NewTime(r.At),
			Parallelism: map[string]int32{"a": 2, "b": 4}, Arrival: r.Arrival})
	}
	assert.Equal(t, tail, unwrittenOf(legacy, full))
	assert.Equal(t, full.ToHistory(), withUnwritten(legacy, tail).ToHistory())
}

// BenchmarkPollHistory is a steady poll's work on the status history
// between two writes: the unwritten decisions added back, the model's
// form for Decide, the new decision recorded and written back as runs,
// and the unwritten ones taken again. The history holds 71 decisions of
// 10 vertices (the default windows at 30 s), written 5 polls ago.
func BenchmarkPollHistory(b *testing.B) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ids := make([]string, 10)
	for v := range ids {
		ids[v] = fmt.Sprintf("%032x", v)
	}
	decision := func(at time.Time, rate float64) scaling.RecommendationRecord {
		r := scaling.RecommendationRecord{At: at, Parallelism: map[string]int{}, Arrival: map[string]float64{ids[0]: rate}}
		for _, id := range ids {
			r.Parallelism[id] = 4
		}
		return r
	}
	var h scaling.History
	for i := range 71 {
		h.Recommendations = append(h.Recommendations, decision(t0.Add(time.Duration(i)*30*time.Second), 12_000+float64(i%7)))
	}
	written := v1alpha1.FromHistory(scaling.History{Recommendations: h.Recommendations[:66]})
	unwritten := unwrittenOf(written, v1alpha1.FromHistory(h))
	keep := 35*time.Minute + 30*time.Second
	now := t0.Add(71 * 30 * time.Second)
	d := scaling.Decision{At: now, Sized: true}
	for _, id := range ids {
		d.Vertices = append(d.Vertices, scaling.VertexDecision{ID: id, Required: 4, Source: id == ids[0], TargetRate: 12_003})
	}
	b.ReportAllocs()
	for range b.N {
		cur := withUnwritten(written, unwritten)
		next := v1alpha1.FromHistory(cur.ToHistory().Record(d, keep))
		if len(unwrittenOf(written, next)) != 1 {
			b.Fatal("the unwritten decisions are not one run")
		}
	}
}
