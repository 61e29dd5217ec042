package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
)

// track follows the rescale in status.rescale one step. Both of the
// operator's paths end the same way:
//
//	savepoint upgrade: the operator stops the job with a savepoint
//	  (Savepointing), resubmits it from the savepoint with a new job id
//	  (Restarting: lifecycle UPGRADING/DEPLOYED, job not yet RUNNING), the
//	  new job runs (Stabilizing) until lifecycle STABLE;
//	in place (adaptive scheduler, Flink ≥ 1.18): the job id stays, the
//	  operator updates the job's resource requirements and the scheduler
//	  restarts the tasks at the new parallelism.
//
// The rescale completes when the operator has reconciled the applied
// generation, the lifecycle is STABLE, the job RUNNING and Flink reports the
// applied parallelism for every vertex. It fails on a rollback, a failed job,
// an operator error (a failed savepoint) or a timeout; the managed fields are
// then written back to what the job runs.
func (c *cycle) track(fs metrics.FlinkSample, collectErr error) {
	rs := c.pol.Status.Rescale
	d := c.d
	if rs.TargetGeneration == 0 && !c.settleIntent() {
		return
	}
	elapsed := c.now.Sub(rs.StartTime.Time)
	switch {
	case d.Lifecycle == target.LifecycleRollingBack || d.Lifecycle == target.LifecycleRolledBack:
		c.finish(scaling.OutcomeRolledBack, fmt.Sprintf("the operator rolled the upgrade back (lifecycle %s): %s", d.Lifecycle, orNone(d.Error)), true)
		return
	case d.Lifecycle == target.LifecycleFailed || d.JobState == "FAILED":
		c.finish(scaling.OutcomeFailed, fmt.Sprintf("the job failed after the rescale (lifecycle %s, job %s): %s", d.Lifecycle, d.JobState, orNone(d.Error)), true)
		return
	case d.Error != "":
		c.finish(scaling.OutcomeFailed, "the operator reports an error: "+d.Error, true)
		return
	case elapsed > c.r.rescaleTimeout():
		c.finish(scaling.OutcomeFailed, fmt.Sprintf("not complete after %s (phase %s: %s)", elapsed.Round(time.Second), rs.Phase, rs.Message), true)
		return
	}

	newJob := d.JobID != "" && d.JobID != rs.FromJobID
	reconciled := d.ObservedGeneration == 0 || d.ObservedGeneration >= rs.TargetGeneration
	switch {
	case !newJob && (d.SavepointInProgress || !reconciled):
		rs.Phase = v1alpha1.RescaleSavepointing
		rs.Message = "waiting for the operator to stop the job with a savepoint (or rescale it in place)"
	case d.JobState != "RUNNING" || d.Lifecycle == target.LifecycleUpgrading:
		rs.Phase = v1alpha1.RescaleRestarting
		rs.Message = fmt.Sprintf("job %s is %s, lifecycle %s", d.JobID, orNone(d.JobState), orNone(d.Lifecycle))
	default:
		rs.Phase = v1alpha1.RescaleStabilizing
		switch {
		case collectErr != nil:
			rs.Message = "job RUNNING; waiting for its metrics: " + collectErr.Error()
		case fs.JobID != d.JobID:
			rs.Message = fmt.Sprintf("job RUNNING; Flink still reports job %s", fs.JobID)
		case !runs(fs, rs.AppliedParallelism):
			rs.Message = "job RUNNING; waiting for every vertex to run at the applied parallelism"
		case d.Lifecycle != target.LifecycleStable || !reconciled:
			rs.Message = fmt.Sprintf("job RUNNING at the applied parallelism; waiting for lifecycle STABLE (now %s)", orNone(d.Lifecycle))
		default:
			c.complete(fs, newJob)
			return
		}
	}
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionTrue, v1alpha1.ReasonRescaling, string(rs.Phase)+": "+rs.Message)
}

// settleIntent handles a rescale recorded before its apply whose cycle did
// not finish (the process died, or the final status patch was lost): if
// the deployment says what the rescale applies, the apply happened and the
// rescale is followed from here (generation: the deployment's now);
// otherwise it never happened and the intent is dropped, with its history
// record, so that the next cycle decides afresh. It reports whether to go
// on tracking.
func (c *cycle) settleIntent() bool {
	rs := c.pol.Status.Rescale
	applied := managedFields(rs.Applied)
	if c.d.Kind == target.KindDeployment && c.d.TaskManagerReplicas > applied.TaskManagerReplicas {
		// A scale-down of the TaskManagers waits for the job to run at
		// the plan: the requirements tell whether it was applied.
		applied.TaskManagerReplicas = 0
	}
	if rs.Applied != nil && c.d.Says(applied) {
		rs.TargetGeneration = c.fd.GetGeneration()
		c.event(corev1.EventTypeNormal, EventRescaleStarted, "Rescaling %s → %s (adopted: applied by a controller that stopped before recording it)",
			c.pol.Status.CurrentParallelism, c.pol.Status.RecommendedParallelism)
		c.log.Info("adopted a rescale applied before a restart", "deployment", c.d.Name, "generation", rs.TargetGeneration)
		c.commit(c.pm.rescaleStarted)
		return true
	}
	h := c.pol.Status.History.ToHistory()
	if n := len(h.Rescales); n > 0 && h.Rescales[n-1].Outcome == scaling.OutcomeInProgress {
		h.Rescales = h.Rescales[:n-1]
	}
	c.pol.Status.History = v1alpha1.FromHistory(h)
	c.pol.Status.Rescale = nil
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonIdle, "a rescale recorded but never applied was dropped; deciding again")
	c.log.Info("dropped a rescale that was recorded but never applied", "deployment", c.d.Name)
	return false
}

// runs reports whether every applied vertex runs at its applied parallelism.
func runs(fs metrics.FlinkSample, applied map[string]int32) bool {
	par := map[string]int{}
	for _, v := range fs.Vertices {
		par[v.ID] = v.Parallelism
	}
	for id, p := range applied {
		if par[id] != int(p) {
			return false
		}
	}
	return len(fs.Vertices) > 0
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// complete records a successful rescale. Downtime is measured from the
// apply to the moment Flink reports the job RUNNING again (timestamps of
// the new job, or of the in-place restart); it covers the savepoint, the
// stop, the restore and the restart, as the model predicts it.
func (c *cycle) complete(fs metrics.FlinkSample, newJob bool) {
	rs := c.pol.Status.Rescale
	var downtime time.Duration
	if fs.RunningSince.After(rs.StartTime.Time) {
		downtime = fs.RunningSince.Sub(rs.StartTime.Time)
	} else if newJob {
		downtime = c.now.Sub(rs.StartTime.Time)
	}
	h := c.pol.Status.History.ToHistory()
	if n := len(h.Rescales); n > 0 && h.Rescales[n-1].Outcome == scaling.OutcomeInProgress {
		r := &h.Rescales[n-1]
		r.Outcome = scaling.OutcomeSucceeded
		r.CompletedAt = c.now
		r.Downtime = scaling.D(downtime)
	}
	c.pol.Status.History = v1alpha1.FromHistory(h)
	c.commit(func() { c.pm.rescaleFinished(scaling.OutcomeSucceeded, downtime) })
	from := c.pol.Status.CurrentParallelism
	c.pol.Status.Rescale = nil
	c.observe(fs)
	path := "savepoint and restart"
	if !newJob {
		path = "in place"
	}
	msg := fmt.Sprintf("rescaled %s → %s (%s) in %s; downtime %s", from, c.pol.Status.CurrentParallelism, path,
		c.now.Sub(rs.StartTime.Time).Round(time.Second), downtime.Round(time.Second))
	if c.d.Kind == target.KindDeployment && rs.Applied != nil {
		if note := c.releaseTaskManagers(int(rs.Applied.TaskManagerReplicas)); note != "" {
			msg += "; " + note
		}
	}
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonRescaleSucceeded, msg)
	c.event(corev1.EventTypeNormal, EventRescaleCompleted, "Rescale completed: %s", msg)
	c.log.Info("rescale completed", "deployment", c.d.Name, "downtime", downtime, "path", path, "parallelism", c.pol.Status.CurrentParallelism)
}

// finish ends a rescale that did not succeed: history, conditions, event,
// and (revert) the managed fields written back to their values before the
// rescale, so that the operator stops retrying a plan the job does not run.
func (c *cycle) finish(outcome, why string, revert bool) {
	rs := c.pol.Status.Rescale
	h := c.pol.Status.History.ToHistory()
	if n := len(h.Rescales); n > 0 && h.Rescales[n-1].Outcome == scaling.OutcomeInProgress {
		r := &h.Rescales[n-1]
		r.Outcome = outcome
		r.CompletedAt = c.now
	}
	c.pol.Status.History = v1alpha1.FromHistory(h)
	c.pol.Status.Rescale = nil
	c.commit(func() { c.pm.rescaleFinished(outcome, 0) })
	msg := "rescale " + outcomeWord(outcome) + ": " + why
	if revert && c.d != nil {
		msg += "; " + c.revert(rs)
	}
	reason := v1alpha1.ReasonRescaleFailed
	if outcome == scaling.OutcomeRolledBack {
		reason = v1alpha1.ReasonRolledBack
	}
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, reason, msg)
	c.setStalled(reason, msg)
	c.event(corev1.EventTypeWarning, EventRescaleFailed, "%s", msg)
	c.log.Info("rescale did not succeed", "deployment", c.pol.Spec.TargetRef.Name, "outcome", outcome, "why", why)
}

func outcomeWord(outcome string) string {
	if outcome == scaling.OutcomeRolledBack {
		return "rolled back"
	}
	return "failed"
}

// revert writes the managed fields back to their values before the rescale
// (fields that were absent are released, and so removed) and says what it
// did.
func (c *cycle) revert(rs *v1alpha1.RescaleStatus) string {
	if rs.Previous == nil {
		return "no previous values recorded: the deployment keeps the applied plan"
	}
	if c.d.Kind == target.KindDeployment {
		return c.revertREST(rs)
	}
	prev := managedFields(rs.Previous)
	applied := managedFields(rs.Applied)
	if c.d.Managed().Only(applied).Equal(prev) {
		return "the deployment already says what the job runs"
	}
	if rs.Applied != nil && !c.d.Says(applied) {
		// Someone else changed the managed fields since: theirs stand.
		return "the managed fields were changed by someone else since; left as they are"
	}
	obj := c.d.ApplyObject(prev)
	if err := c.r.Client.Patch(c.ctx, obj, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		if apierrors.IsConflict(err) {
			return "the deployment changed meanwhile; the managed fields were not written back"
		}
		return "writing the previous values back failed: " + err.Error()
	}
	c.fd = obj
	return fmt.Sprintf("the deployment's managed fields were written back (parallelism overrides %q)", prev.Overrides)
}
