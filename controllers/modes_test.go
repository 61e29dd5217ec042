package controllers_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
)

// stepped deploys the world, settles it at the base load and steps the load
// to 3000 rec/s; it returns the deployment's generation before the step.
func stepped(t *testing.T, w *world) int64 {
	t.Helper()
	w.run(12 * time.Minute)
	require.Empty(t, w.rescales())
	gen := w.deployment().GetGeneration()
	w.live.SetRate(3000)
	return gen
}

func scalingReason(p *v1alpha1.FlinkScalingPolicy) string {
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionScaling); c != nil {
		return c.Reason
	}
	return ""
}

// DryRun decides and reports, and never touches the FlinkDeployment.
func TestDryRunNeverPatches(t *testing.T) {
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun})
	gen := stepped(t, w)
	w.run(15 * time.Minute)

	u := w.deployment()
	assert.Equal(t, gen, u.GetGeneration(), "the deployment's spec never changed")
	assert.Empty(t, managedBy(t, u, controllers.FieldManager), "flinkscale owns no field")
	assert.Equal(t, map[string]int{"Source: orders": 2, "Enrich -> Sink": 2}, w.running())
	p := w.policy()
	assert.Nil(t, p.Status.Rescale)
	assert.Empty(t, w.rescales())
	require.NotNil(t, p.Status.LastDecision)
	assert.Equal(t, "Scale", p.Status.LastDecision.Action)
	assert.Equal(t, "2/2", p.Status.CurrentParallelism)
	assert.NotEqual(t, "2/2", p.Status.RecommendedParallelism)
	assert.Equal(t, v1alpha1.ReasonDryRun, scalingReason(p))
	assert.Positive(t, p.Status.LagRecords, "the lag the unscaled job builds is reported")
	// One announcement per distinct recommendation, not one per poll (30
	// polls happened).
	n := w.rec.count(kindPolicy, controllers.EventScalingRecommended)
	assert.GreaterOrEqual(t, n, 1)
	assert.LessOrEqual(t, n, 5, w.rec.dump())
	assert.Zero(t, w.rec.count(kindPolicy, controllers.EventRescaleStarted))

	// The report, as `flinkscale recommend` renders it, in a ConfigMap
	// named after the policy and owned by it.
	var cm corev1.ConfigMap
	require.NoError(t, w.c.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: w.pKey.Name + controllers.ReportSuffix}, &cm))
	require.Len(t, cm.OwnerReferences, 1)
	assert.Equal(t, p.UID, cm.OwnerReferences[0].UID)
	md := cm.Data[controllers.ReportMarkdownKey]
	assert.Contains(t, md, "# flinkscale recommendation: orders")
	assert.Contains(t, md, "**Scale**")
	assert.Contains(t, md, "pipeline.jobvertex-parallelism-overrides")
	assert.Contains(t, md, "namespace: "+w.ns)
	var rep struct {
		Change      bool
		Vertices    []struct{ Current, Recommended int }
		Utilization struct{ Min, Target, Max float64 }
		Observed    []struct{ LagRecords, ArrivalRate *float64 }
	}
	require.NoError(t, json.Unmarshal([]byte(cm.Data[controllers.ReportJSONKey]), &rep))
	assert.True(t, rep.Change)
	require.Len(t, rep.Vertices, 2)
	assert.Greater(t, rep.Vertices[1].Recommended, rep.Vertices[1].Current)
	// The policy's band and the window's series travel with the report, so
	// that `-o html` can be rendered from it later.
	assert.Equal(t, 0.7, rep.Utilization.Target)
	lags := 0
	for _, o := range rep.Observed {
		if o.LagRecords != nil {
			lags++
		}
	}
	assert.Greater(t, lags, 3, "the window's brokers' samples")
}

// Paused observes only: no decision, no patch.
func TestPausedDoesNothing(t *testing.T) {
	for name, o := range map[string]worldOptions{
		"mode": {mode: v1alpha1.ModePaused},
		"annotation": {policy: func(p *v1alpha1.FlinkScalingPolicy) {
			p.Annotations = map[string]string{v1alpha1.AnnotationPaused: "true"}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, o)
			gen := stepped(t, w)
			w.run(10 * time.Minute)
			assert.Equal(t, gen, w.deployment().GetGeneration())
			p := w.policy()
			assert.Nil(t, p.Status.LastDecision, "no decision while paused")
			assert.Empty(t, w.rescales())
			assert.Equal(t, v1alpha1.ReasonPaused, scalingReason(p))
			assert.Equal(t, "2/2", p.Status.CurrentParallelism, "still observing")
			assert.Zero(t, w.rec.count(kindPolicy, controllers.EventScalingRecommended))
		})
	}
}

// A stateless job is never rescaled (its state would be lost) unless the
// policy allows it; the condition and one event say why.
func TestStatelessUpgradeModeIsRefused(t *testing.T) {
	w := newWorld(t, worldOptions{upgradeMode: target.UpgradeStateless})
	gen := stepped(t, w)
	w.run(10 * time.Minute)
	assert.Equal(t, gen, w.deployment().GetGeneration())
	p := w.policy()
	require.NotNil(t, p.Status.LastDecision)
	assert.Equal(t, "Scale", p.Status.LastDecision.Action, "the model still recommends")
	assert.Equal(t, target.BlockStateless, scalingReason(p))
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionScaling)
	assert.Contains(t, c.Message, "allowStatelessUpgrade")
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleBlocked), w.rec.dump())
	assert.Empty(t, w.rescales())

	// Allowed explicitly, it goes ahead.
	p.Spec.AllowStatelessUpgrade = true
	require.NoError(t, w.c.Update(w.ctx, p))
	w.until("a stateless rescale completes", 10*time.Minute, func() bool {
		rs := w.rescales()
		return len(rs) == 1 && rs[0].Outcome == scaling.OutcomeSucceeded
	})
}

// A controller that dies in the middle of a rescale is replaced by one that
// knows nothing but the API server's state: it finishes the rescale, once.
func TestControllerRestartMidRescaleResumes(t *testing.T) {
	w := newWorld(t, worldOptions{})
	stepped(t, w)
	w.until("a rescale starts", 10*time.Minute, func() bool { return w.policy().Status.Rescale != nil })
	w.run(10 * time.Second) // into the savepoint or the restart
	phase := w.policy().Status.Rescale.Phase
	t.Logf("controller replaced in phase %s", phase)

	w.ctl = w.newController(nil)
	w.until("the rescale completes", 10*time.Minute, func() bool { return w.policy().Status.Rescale == nil })
	w.run(10 * time.Minute)
	rs := w.rescales()
	require.Len(t, rs, 1, w.rec.dump())
	assert.Equal(t, scaling.OutcomeSucceeded, rs[0].Outcome)
	assert.Positive(t, rs[0].Downtime.Duration)
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleStarted))
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleCompleted))
	stats := w.job.Stats()
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag)
}

// userEdit sets a flinkConfiguration key the operator ignores (no restart)
// as a user would, with a plain update.
func userEdit(ctx context.Context, c client.Client, key types.NamespacedName, k, v string) error {
	u := target.New()
	if err := c.Get(ctx, key, u); err != nil {
		return err
	}
	if err := unstructured.SetNestedField(u.Object, v, "spec", "flinkConfiguration", k); err != nil {
		return err
	}
	return c.Update(ctx, u)
}

// applyRacer lets a user edit the deployment just before the controller's
// first apply reaches the API server, so that the apply meets a changed
// resource version.
type applyRacer struct {
	client.Client
	key     types.NamespacedName
	applies atomic.Int32
}

func (a *applyRacer) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if patch.Type() == "application/apply-patch+yaml" && a.applies.Add(1) == 1 {
		if err := userEdit(ctx, a.Client, a.key, "kubernetes.operator.periodic.savepoint.interval", "1h"); err != nil {
			return err
		}
	}
	return a.Client.Patch(ctx, obj, patch, opts...)
}

// Edits by users are never lost: one racing the controller's apply makes
// the apply fail on the resource version and be decided again, and one
// during the rescale stays.
func TestConcurrentUserEditsArePreserved(t *testing.T) {
	var racer *applyRacer
	w := newWorld(t, worldOptions{client: func(c client.Client) client.Client {
		racer = &applyRacer{Client: c, key: types.NamespacedName{}}
		return racer
	}})
	racer.key = w.fdKey
	stepped(t, w)
	w.until("a rescale starts", 15*time.Minute, func() bool { return w.policy().Status.Rescale != nil })
	assert.GreaterOrEqual(t, racer.applies.Load(), int32(2), "the first apply met the user's edit and was retried")

	require.NoError(t, userEdit(w.ctx, w.c, w.fdKey, "kubernetes.operator.savepoint.history.max.count", "5"))
	w.until("the rescale completes", 10*time.Minute, func() bool { return w.policy().Status.Rescale == nil })

	d := w.read()
	assert.Equal(t, "1h", d.Configuration["kubernetes.operator.periodic.savepoint.interval"], "the racing edit stays")
	assert.Equal(t, "5", d.Configuration["kubernetes.operator.savepoint.history.max.count"], "the edit during the rescale stays")
	assert.Equal(t, "s3://bucket/savepoints", d.Configuration["state.savepoints.dir"])
	assert.NotEmpty(t, d.Overrides)
	rs := w.rescales()
	require.Len(t, rs, 1)
	assert.Equal(t, scaling.OutcomeSucceeded, rs[0].Outcome)
}

// A savepoint that fails stalls the rescale cleanly: the job runs on at its
// old parallelism, the deployment's spec says so again, Stalled and one
// RescaleFailed event say why, and no retry comes before the backoff.
func TestFailedSavepointStallsCleanly(t *testing.T) {
	w := newWorld(t, worldOptions{})
	stepped(t, w)
	firstJob := w.read().JobID
	w.job.Inject(sim.FaultSavepoint)
	w.until("the rescale fails", 10*time.Minute, func() bool {
		rs := w.rescales()
		return len(rs) == 1 && rs[0].Outcome == scaling.OutcomeFailed
	})
	p := w.policy()
	assert.Nil(t, p.Status.Rescale)
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled))
	assert.Equal(t, v1alpha1.ReasonRescaleFailed, meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionStalled).Reason)
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleFailed), w.rec.dump())
	assert.Equal(t, 1, w.rec.count(kindDeployment, controllers.EventRescaleFailed))

	d := w.read()
	assert.Equal(t, firstJob, d.JobID, "the old job keeps running")
	assert.Empty(t, d.Overrides, "the overrides flinkscale added are gone again")
	assert.Equal(t, 2, d.Parallelism)
	assert.Equal(t, 2, d.Slots)
	assert.Equal(t, map[string]int{"Source: orders": 2, "Enrich -> Sink": 2}, w.running())

	// Backoff: the model still wants to scale, nothing starts for 10 min.
	w.run(5 * time.Minute)
	assert.Len(t, w.rescales(), 1)
	p = w.policy()
	assert.Equal(t, v1alpha1.ReasonBackoff, scalingReason(p), meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionScaling).Message)
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled))
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleFailed))

	// After it, the next attempt (the fault was one-off) succeeds.
	w.until("a second rescale succeeds", 15*time.Minute, func() bool {
		rs := w.rescales()
		return len(rs) == 2 && rs[1].Outcome == scaling.OutcomeSucceeded
	})
	stats := w.job.Stats()
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag)
	assert.Zero(t, stats.Reprocessed)
}

// Metrics that cannot be collected hold the policy with a condition and one
// event, and never lead to a decision; a missing target is a condition too.
func TestUnreachableFlinkAndMissingTarget(t *testing.T) {
	w := newWorld(t, worldOptions{policy: func(p *v1alpha1.FlinkScalingPolicy) {
		p.Spec.Triggers.FlinkMetrics.REST.URL = "http://127.0.0.1:1" // nothing listens
	}})
	stepped(t, w)
	w.run(5 * time.Minute)
	p := w.policy()
	assertNotReady(t, p, v1alpha1.ReasonMetricsError, "127.0.0.1:1")
	assert.Nil(t, p.Status.LastDecision)
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventMetricsFailed), w.rec.dump())
	assert.Empty(t, w.rescales())

	p.Spec.TargetRef.Name = "nope"
	require.NoError(t, w.c.Update(w.ctx, p))
	w.run(time.Minute)
	p = w.policy()
	assert.Equal(t, v1alpha1.ReasonTargetNotFound, meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Reason)
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled))
}
