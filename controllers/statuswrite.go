package controllers

import (
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

// Status writes. Every poll of a steady job changes its status a little:
// the decision's time, the numbers in its summary and reasons, the lag,
// one more entry in the history. Writing that every poll is a PATCH per job
// and per interval (33 a second at 1,000 jobs polled every 30 s), each
// echoed back through the watch, and etcd keeps every revision. With a
// StatusRefresh, a poll writes the status only when something a user or a
// restart of the controller needs has changed (materialChange), and
// otherwise at most once per StatusRefresh; the recommendations of the
// polls in between are kept in memory (policyState.unwritten) and written
// with the next write, so the stabilization windows of this replica see
// every poll, and those of a replica that takes over after a crash miss at
// most the recommendations of one StatusRefresh, each equal to the last
// one written (a different one would have been written).

// DefaultStatusRefresh is how often flinkscale controller writes a steady
// policy's status at the most (its decision time, summary, lag and history).
const DefaultStatusRefresh = 5 * time.Minute

// materialChange reports whether next differs from prev in something a
// user or a restart needs at once: the spec generation observed, the
// parallelism (current, recommended, per vertex), the rescale path, a
// rescale in progress, a condition's status, reason or generation, the
// decision's action, reason codes or memory recommendation, the rescales in
// the history, or the newest recommendation's required parallelism. Not
// material: times, the numbers in messages and summaries, the lag, the
// arrival rates, and history entries that repeat the newest one. The lag
// (kubectl's Lag column) is material when it doubled or halved by at least
// MaterialLagRecords.
func materialChange(prev, next *v1alpha1.FlinkScalingPolicyStatus) bool {
	if prev.ObservedGeneration != next.ObservedGeneration || lagChanged(prev.LagRecords, next.LagRecords) ||
		prev.CurrentParallelism != next.CurrentParallelism || prev.RecommendedParallelism != next.RecommendedParallelism ||
		prev.RescalePath != next.RescalePath || prev.RescalePathReason != next.RescalePathReason {
		return true
	}
	if !equality.Semantic.DeepEqual(prev.Vertices, next.Vertices) || !equality.Semantic.DeepEqual(prev.Rescale, next.Rescale) {
		return true
	}
	if conditionsChanged(prev, next) || decisionChanged(prev.LastDecision, next.LastDecision) {
		return true
	}
	var ph, nh v1alpha1.HistoryStatus
	if prev.History != nil {
		ph = *prev.History
	}
	if next.History != nil {
		nh = *next.History
	}
	if !equality.Semantic.DeepEqual(ph.Rescales, nh.Rescales) {
		return true
	}
	_, pp, pok := ph.NewestRecommendation()
	_, np, nok := nh.NewestRecommendation()
	return pok != nok || !maps.Equal(pp, np)
}

// MaterialLagRecords is the least change of status.lagRecords that is
// written at once (when it also doubled or halved).
const MaterialLagRecords = 1000

func lagChanged(prev, next int64) bool {
	d := next - prev
	if d < 0 {
		d = -d
	}
	return d >= MaterialLagRecords && (next >= 2*prev || prev >= 2*next)
}

func conditionsChanged(prev, next *v1alpha1.FlinkScalingPolicyStatus) bool {
	if len(prev.Conditions) != len(next.Conditions) {
		return true
	}
	for _, n := range next.Conditions {
		found := false
		for _, p := range prev.Conditions {
			if p.Type == n.Type {
				found = p.Status == n.Status && p.Reason == n.Reason && p.ObservedGeneration == n.ObservedGeneration
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}

func decisionChanged(prev, next *v1alpha1.DecisionStatus) bool {
	if prev == nil || next == nil {
		return prev != next
	}
	if prev.Action != next.Action || len(prev.Reasons) != len(next.Reasons) {
		return true
	}
	for i := range prev.Reasons {
		if prev.Reasons[i].Code != next.Reasons[i].Code || prev.Reasons[i].Vertex != next.Reasons[i].Vertex {
			return true
		}
	}
	return !equality.Semantic.DeepEqual(prev.Memory, next.Memory)
}

// statusWriteDue reports whether a cycle that turned the written status
// prev into next must write it: when it changed, and either materially or
// at least refresh after the decision last written (refresh 0: at every
// change).
func statusWriteDue(prev, next *v1alpha1.FlinkScalingPolicyStatus, refresh time.Duration) bool {
	if equality.Semantic.DeepEqual(prev, next) {
		return false
	}
	if refresh <= 0 || materialChange(prev, next) {
		return true
	}
	if prev.LastDecision == nil || next.LastDecision == nil {
		return true
	}
	return next.LastDecision.Time.Sub(prev.LastDecision.Time.Time) >= refresh
}

// withUnwritten returns the status's history followed by the unwritten
// recommendations newer than its newest (h itself when there are none to
// add): what the cycle decides with.
func withUnwritten(h *v1alpha1.HistoryStatus, unwritten []v1alpha1.RecommendationRunStatus) *v1alpha1.HistoryStatus {
	return h.WithRecommendations(unwritten)
}

// unwrittenOf is what a cycle's history holds that the written one does
// not: its recommendations newer than the written newest, as runs (a
// steady job's, one run however many polls skipped their write).
func unwrittenOf(written, h *v1alpha1.HistoryStatus) []v1alpha1.RecommendationRunStatus {
	after, _, _ := written.NewestRecommendation()
	return h.RecommendationsAfter(after)
}
