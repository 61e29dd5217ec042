package controllers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
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
		History: &v1alpha1.HistoryStatus{},
	}
	for at := t0; !at.After(t); at = at.Add(30 * time.Second) {
		st.History.Recommendations = append(st.History.Recommendations, v1alpha1.RecommendationStatus{
			At: metav1.NewTime(at), Parallelism: map[string]int32{"a": 2, "b": 4}, Arrival: map[string]float64{"a": float64(at.Unix() % 97)}})
	}
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
			s.History.Recommendations[len(s.History.Recommendations)-1].Parallelism["b"] = 5
		}), true},
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
	written := steadyStatus(t0, t0.Add(time.Minute), 0).History // 3 entries
	full := steadyStatus(t0, t0.Add(3*time.Minute), 0).History  // 7 entries
	tail := unwrittenOf(written, full)
	assert.Len(t, tail, 4, "1:30, 2:00, 2:30, 3:00")
	merged := withUnwritten(written, tail)
	assert.Equal(t, full.Recommendations, merged.Recommendations)
	assert.Same(t, full, withUnwritten(full, tail), "nothing newer: the history as it is")
	assert.Len(t, written.Recommendations, 3, "the written history is not modified")
	assert.Nil(t, unwrittenOf(full, full))
}
