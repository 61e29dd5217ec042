package controllers_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
)

const (
	kindPolicy     = "FlinkScalingPolicy"
	kindDeployment = "FlinkDeployment"
)

// A step in load (1500 → 3000 rec/s) gives exactly one rescale, through the
// operator's savepoint-and-restart, and the lag it built drains.
func TestStepLoadGivesOneRescaleAndTheLagDrains(t *testing.T) {
	w := newWorld(t, worldOptions{})
	// Deploy, warm up and settle: at 1500 rec/s nothing needs to change.
	w.run(12 * time.Minute)
	require.Empty(t, w.rescales(), w.rec.dump())
	p := w.policy()
	require.NotNil(t, p.Status.LastDecision, "decided at the base load")
	assert.Equal(t, "Hold", p.Status.LastDecision.Action, p.Status.LastDecision.Summary)
	assert.Equal(t, "2/2", p.Status.CurrentParallelism)
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady))
	firstJob := w.read().JobID

	w.live.SetRate(3000)
	w.until("a rescale starts", 10*time.Minute, func() bool { return w.policy().Status.Rescale != nil })
	started := w.job.Now()
	p = w.policy()
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionScaling))
	applied := p.Status.Rescale.AppliedParallelism
	src, enrich := w.vertexID("Source: orders"), w.vertexID("Enrich -> Sink")
	// 3000 rec/s at 70 % of 1000 rec/s per enrichment subtask needs
	// ⌈3000/700⌉ = 5 subtasks, more to drain the backlog in 15 minutes;
	// the source needs ⌈3000/(0.7×1500)⌉ = 3, aligned to 6 partitions.
	assert.GreaterOrEqual(t, applied[enrich], int32(5))
	assert.GreaterOrEqual(t, applied[src], int32(3))

	w.until("the rescale completes", 10*time.Minute, func() bool { return w.policy().Status.Rescale == nil })
	took := w.job.Now().Sub(started)
	p = w.policy()
	require.Len(t, p.Status.History.Rescales, 1, w.rec.dump())
	r := p.Status.History.Rescales[0]
	assert.Equal(t, scaling.OutcomeSucceeded, r.Outcome)
	assert.True(t, r.StartedTaskManagers, "more TaskManagers: their start-up is part of the downtime")
	// The savepoint (~2 s), the restart (20 s) and the TaskManagers'
	// start-up (10 s), plus the operator's reaction: between 30 s and the
	// whole rescale.
	assert.GreaterOrEqual(t, r.Downtime.Duration, 30*time.Second)
	assert.LessOrEqual(t, r.Downtime.Duration, took)
	d := w.read()
	assert.NotEqual(t, firstJob, d.JobID, "a savepoint upgrade runs a new job")
	assert.Equal(t, map[string]int{src: int(applied[src]), enrich: int(applied[enrich])}, d.Overrides)
	assert.Equal(t, map[string]int{"Source: orders": int(applied[src]), "Enrich -> Sink": int(applied[enrich])}, w.running())
	assert.Equal(t, v1alpha1.ReasonRescaleSucceeded, meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionScaling).Reason)

	// The backlog drains, and no second rescale follows.
	w.run(20 * time.Minute)
	assert.Len(t, w.rescales(), 1, w.rec.dump())
	stats := w.job.Stats()
	assert.Zero(t, stats.Reprocessed, "a savepoint upgrade replays nothing")
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag, "no record lost")
	// 3000 rec/s is at most a few seconds of lag.
	assert.Less(t, stats.Lag, int64(3000*10), "lag drained")
	p = w.policy()
	assert.Less(t, p.Status.LagRecords, int64(3000*10))
	// The history now knows the rates after the rescale.
	assert.Positive(t, p.Status.History.Rescales[0].Vertices[0].TrueRateAfter)

	for reason, n := range map[string]int{
		controllers.EventScalingRecommended: 1, controllers.EventRescaleStarted: 1, controllers.EventRescaleCompleted: 1,
	} {
		assert.Equal(t, n, w.rec.count(kindPolicy, reason), "%s on the policy\n%s", reason, w.rec.dump())
		assert.Equal(t, n, w.rec.count(kindDeployment, reason), "%s on the deployment\n%s", reason, w.rec.dump())
	}
	assert.Zero(t, w.rec.count(kindPolicy, controllers.EventRescaleFailed))

	// The metrics say the same: one rescale started and succeeded, none
	// failed (a series at zero, not a missing one), its downtime observed,
	// the gauges at the status's values.
	pol := []string{"namespace", w.ns, "policy", "orders", "deployment", "orders"}
	assert.Equal(t, 1.0, w.metric("flinkscale_rescales_started_total", pol...))
	assert.Equal(t, 1.0, w.metric("flinkscale_rescales_total", append(pol, "outcome", "Succeeded")...))
	assert.Equal(t, 0.0, w.metric("flinkscale_rescales_total", append(pol, "outcome", "Failed")...))
	assert.Equal(t, 1.0, w.metric("flinkscale_rescale_downtime_seconds", pol...), "one downtime observed")
	assert.Equal(t, r.Downtime.Seconds(), w.metric("flinkscale_last_rescale_downtime_seconds", pol...))
	assert.Equal(t, 0.0, w.metric("flinkscale_rescale_in_progress", pol...))
	assert.GreaterOrEqual(t, w.metric("flinkscale_decisions_total", append(pol, "action", "Scale")...), 1.0)
	assert.Positive(t, w.metric("flinkscale_decisions_total", append(pol, "action", "Hold")...))
	assert.Positive(t, w.metric("flinkscale_holds_total", pol...))
	assert.Equal(t, 0.0, w.metric("flinkscale_collection_errors_total", pol...))
	assert.Positive(t, w.metric("flinkscale_collection_duration_seconds", append(pol, "source", "kafka")...))
	assert.Equal(t, float64(applied[enrich]), w.metric("flinkscale_vertex_parallelism", append(pol, "vertex", "Enrich -> Sink")...))
	assert.Equal(t, float64(applied[src]), w.metric("flinkscale_vertex_parallelism", append(pol, "vertex_id", src)...))
	assert.InDelta(t, float64(p.Status.LagRecords), w.metric("flinkscale_lag_records", pol...), 1)
	assert.InDelta(t, 3000, w.metric("flinkscale_arrival_rate", pol...), 300)
	assert.Equal(t, 0.85, w.metric("flinkscale_utilization_band", append(pol, "bound", "max")...))
	assert.Positive(t, w.metric("flinkscale_vertex_true_processing_rate", append(pol, "vertex", "Enrich -> Sink")...))

	// flinkscale owns exactly the field it had to change: the slots per
	// TaskManager stay 2 (one per core), and in native mode
	// spec.job.parallelism is the user's (changing it would be an UPGRADE).
	owned := managedBy(t, w.deployment(), controllers.FieldManager)
	assert.ElementsMatch(t, []string{"spec.flinkConfiguration." + target.KeyOverrides}, owned)
	assert.Equal(t, 2, d.Parallelism, "the user's spec.job.parallelism is untouched")

	// Deleting the policy deletes its series.
	require.NoError(t, w.c.Delete(w.ctx, w.policy()))
	w.run(time.Minute)
	assert.Equal(t, -1.0, w.metric("flinkscale_vertex_parallelism", pol...))
	assert.Equal(t, -1.0, w.metric("flinkscale_rescales_total", pol...))
}

// managedBy lists the leaf fields a field manager owns, as dotted paths.
func managedBy(t *testing.T, u *unstructured.Unstructured, manager string) []string {
	t.Helper()
	owned, err := target.OwnedFields(u, manager)
	require.NoError(t, err)
	return slices.Sorted(maps.Keys(owned))
}

// With the adaptive scheduler on Flink 1.18 the operator rescales in place:
// the job id stays, and the rescale is followed to the new parallelism just
// the same.
func TestInPlaceRescaleIsTracked(t *testing.T) {
	w := newWorld(t, worldOptions{conf: map[string]any{"jobmanager.scheduler": "adaptive"}})
	w.run(12 * time.Minute)
	require.Empty(t, w.rescales())
	jobID := w.read().JobID
	w.live.SetRate(3000)
	w.until("a rescale completes", 15*time.Minute, func() bool {
		rs := w.rescales()
		return len(rs) == 1 && rs[0].Outcome != scaling.OutcomeInProgress
	})
	r := w.rescales()[0]
	require.Equal(t, scaling.OutcomeSucceeded, r.Outcome, w.rec.dump())
	assert.Equal(t, jobID, w.read().JobID, "rescaled in place: same job")
	want := map[string]int{}
	for _, v := range r.Vertices {
		want[v.ID] = int(v.To)
	}
	got := map[string]int{}
	for _, v := range w.job.View().Job.Vertices {
		got[v.ID] = v.Parallelism
	}
	assert.Equal(t, want, got)
	assert.Contains(t, w.rec.dump(), "(in place)")
}
