package realstack_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// requireLong skips the long real runs unless FLINKSCALE_REAL_LONG=1
// (make test-real), as the testbed's own long runs do.
func requireLong(t *testing.T) {
	t.Helper()
	testbed.RequireReal(t)
	if os.Getenv(envRealLong) != "1" {
		t.Skipf("a long real run: set %s=1 (make test-real)", envRealLong)
	}
}

// windowReasons are the reasons a decision gives while its metric window
// does not yet cover trusted samples.
var windowReasons = []string{string(scaling.ReasonWarmingUp), string(scaling.ReasonWindowTooShort), string(scaling.ReasonTooFewSamples)}

// A TaskManager killed mid-run on real Flink: the job fails over and runs
// again from its last checkpoint, the controller's window starts over, and
// no decision is taken on samples from before the failover.
func TestRealTaskManagerLoss(t *testing.T) {
	requireLong(t)
	e := startE2E(t, e2eOptions{flink: flinkFor(t, testbed.Flink120), steady: true})
	e.until("the job runs", 3*time.Minute, func() bool { _, ok := e.running(); return ok })
	// A full window of trusted samples: the decision has no window reason.
	e.until("a decision on a full window", 4*time.Minute, func() bool {
		d := e.policy().Status.LastDecision
		return d != nil && !hasReason(d, windowReasons...)
	})
	before := e.job.Cluster.View().Job
	killed := time.Now()
	e.job.Cluster.Inject(sim.FaultTaskManagerLoss)
	e.until("the job fails over and runs again", 3*time.Minute, func() bool {
		v := e.job.Cluster.View().Job
		return v.ID == before.ID && v.State == "RUNNING" && time.UnixMilli(v.Timestamps["RUNNING"]).After(killed)
	})
	again := time.UnixMilli(e.job.Cluster.View().Job.Timestamps["RUNNING"])
	t.Logf("failover: TaskManager killed, job RUNNING again %s later", again.Sub(killed).Round(100*time.Millisecond))

	// Every decision from the failover until the window is full again
	// (warm-up + 90 % of the window after RUNNING) names the window.
	full := again.Add(30*time.Second + 54*time.Second)
	seen := map[time.Time]*v1alpha1.DecisionStatus{}
	e.until("the window is full again", 4*time.Minute, func() bool {
		d := e.policy().Status.LastDecision
		if d != nil && d.Time.After(killed) {
			seen[d.Time.Time] = d
		}
		return time.Now().After(full.Add(15 * time.Second))
	})
	var during int
	for at, d := range seen {
		if at.Before(full) {
			during++
			assert.Equal(t, "Hold", d.Action, "decision at %s", at)
			assert.True(t, hasReason(d, windowReasons...), "decision at %s (%s after RUNNING) must not trust the window: %+v", at, at.Sub(again), d.Reasons)
		}
	}
	assert.Positive(t, during, "decisions were taken during the warm-up")
	assert.Empty(t, e.rescales(), "no rescale on a failover")
	assert.Equal(t, before.ID, e.job.Cluster.View().Job.ID, "a failover keeps the job")
}

func hasReason(d *v1alpha1.DecisionStatus, codes ...string) bool {
	for _, r := range d.Reasons {
		if slices.Contains(codes, r.Code) {
			return true
		}
	}
	return false
}

// A savepoint that fails on real Flink (the savepoint directory is below a
// regular file, so Flink cannot create it): the operator reports the error
// and the old job keeps running; flinkscale records the rescale as failed,
// is Stalled with RescaleFailed, and writes the managed fields back.
func TestRealSavepointFailure(t *testing.T) {
	requireLong(t)
	dir := t.TempDir()
	blocked := filepath.Join(dir, "blocked")
	require.NoError(t, os.WriteFile(blocked, []byte("a file, not a folder\n"), 0o644))
	e := startE2E(t, e2eOptions{flink: flinkFor(t, testbed.Flink120), savepointDir: "file://" + filepath.Join(blocked, "savepoints")})
	e.until("the job runs", 3*time.Minute, func() bool { _, ok := e.running(); return ok })
	jobID := e.job.Cluster.View().Job.ID
	fd, err := e.st.Deployment(e.ctx, e.job)
	require.NoError(t, err)
	overrides0, _, _ := unstructured.NestedString(fd.Object, "spec", "flinkConfiguration", "pipeline.jobvertex-parallelism-overrides")

	e.until("a rescale starts", 6*time.Minute, func() bool { return e.policy().Status.Rescale != nil })
	e.until("the rescale ends", 5*time.Minute, func() bool { return e.finished() == 1 })
	p := e.policy()
	r := p.Status.History.Rescales[0]
	assert.Equal(t, scaling.OutcomeFailed, r.Outcome)
	stalled := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionStalled)
	require.NotNil(t, stalled)
	assert.Equal(t, metav1.ConditionTrue, stalled.Status)
	assert.Equal(t, v1alpha1.ReasonRescaleFailed, stalled.Reason)
	assert.Contains(t, stalled.Message, "savepoint")
	assert.Positive(t, e.st.Events.Count("", fakeoperator.ReasonSavepointError))

	fd, err = e.st.Deployment(e.ctx, e.job)
	require.NoError(t, err)
	overrides, _, _ := unstructured.NestedString(fd.Object, "spec", "flinkConfiguration", "pipeline.jobvertex-parallelism-overrides")
	assert.Equal(t, overrides0, overrides, "the managed fields are written back")
	// The old job keeps running, at its old parallelism.
	e.until("the old job runs", time.Minute, func() bool { _, ok := e.running(); return ok })
	assert.Equal(t, jobID, e.job.Cluster.View().Job.ID)
	now, _ := e.running()
	assert.Equal(t, map[string]int{"Source: events -> Map": 2, "KeyedProcess: count": 2, "Sink: counts": 1}, plainNames(now))
	t.Logf("stalled: %s", stalled.Message)
}
