package fakeoperator

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/sim"
)

// kinds are the resources a test of the shared state machine runs for: a
// FlinkDeployment, and a FlinkSessionJob with the same job and configuration
// (newKindHarness).
var kinds = []struct {
	name    string
	session bool
}{{"FlinkDeployment", false}, {"FlinkSessionJob", true}}

// clusterName is the session cluster of the session job harness.
const clusterName = "session"

// sessionSpecs splits a FlinkDeployment spec into a session cluster's
// (everything but the job) and a session job's (the job, on that cluster).
func sessionSpecs(spec map[string]any) (cluster, job map[string]any) {
	cluster = maps.Clone(spec)
	delete(cluster, "job")
	return cluster, map[string]any{"deploymentName": clusterName, "job": spec["job"]}
}

// newKindHarness is newHarness for a FlinkDeployment with spec, or for a
// FlinkSessionJob with the same job on a STABLE session cluster.
func newKindHarness(t *testing.T, session bool, d sim.Deployer, f *fakeFlink, spec map[string]any) *harness {
	t.Helper()
	if !session {
		return newHarness(t, d, f, spec)
	}
	cluster, sj := sessionSpecs(spec)
	h := newSessionHarness(t, d, f, cluster, sj)
	h.clusterStable()
	return h
}

// newSessionHarness is a harness for a FlinkSessionJob with jobSpec whose
// simulated job is d, with its session cluster created (not reconciled yet)
// from clusterSpec, unless that is nil.
func newSessionHarness(t *testing.T, d sim.Deployer, f *fakeFlink, clusterSpec, jobSpec map[string]any) *harness {
	t.Helper()
	h := newBareHarness(t, f)
	h.session = true
	h.clusterKey = types.NamespacedName{Namespace: h.key.Namespace, Name: clusterName}
	h.op.SessionJobs.Register(h.key, d)
	if clusterSpec != nil {
		h.create(envtest.NewFlinkDeployment(h.key.Namespace, clusterName), clusterSpec)
	}
	h.create(envtest.NewFlinkSessionJob(h.key.Namespace, h.key.Name), jobSpec)
	return h
}

// reconcileCluster reconciles the session cluster and returns its status.
func (h *harness) reconcileCluster() Status {
	h.t.Helper()
	res, err := h.op.Reconcile(h.ctx, ctrl.Request{NamespacedName: h.clusterKey})
	require.NoError(h.t, err)
	require.Positive(h.t, res.RequeueAfter)
	u := envtest.NewFlinkDeployment(h.clusterKey.Namespace, h.clusterKey.Name)
	require.NoError(h.t, h.env.Client.Get(h.ctx, h.clusterKey, u))
	st, err := ReadStatus(u)
	require.NoError(h.t, err)
	return st
}

// clusterStable takes the session cluster to STABLE, its JobManager READY.
func (h *harness) clusterStable() {
	h.t.Helper()
	st := h.reconcileCluster()
	require.Equal(h.t, LifecycleDeployed, st.LifecycleState)
	require.Equal(h.t, JMDeploying, st.JobManagerDeploymentStatus)
	st = h.reconcileCluster()
	require.Equal(h.t, LifecycleStable, st.LifecycleState)
	require.Equal(h.t, JMReady, st.JobManagerDeploymentStatus)
	h.rec.take()
}

// TestSessionJobWaitsForItsCluster: a session job is submitted (to running
// TaskManagers) once its session cluster's JobManager is READY, and its
// status has only what the FlinkSessionJob CRD has.
func TestSessionJobWaitsForItsCluster(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	cluster, sj := sessionSpecs(baseSpec())
	h := newSessionHarness(t, f, f, cluster, sj)
	t.Logf("FlinkSessionJob CRD: %s", h.env.FlinkSessionJobCRD)

	// The cluster exists but is not deployed: the job waits, silently.
	st := h.reconcile()
	assert.Equal(t, LifecycleCreated, st.LifecycleState)
	assert.Empty(t, h.rec.take())

	cst := h.reconcileCluster()
	assert.Equal(t, trace{LifecycleDeployed, "", ReconDeployed}, traceOf(cst))
	assert.Equal(t, JMDeploying, cst.JobManagerDeploymentStatus)
	assert.Equal(t, []string{"Normal Submit Starting deployment"}, h.rec.take())
	st = h.reconcile()
	assert.Equal(t, LifecycleCreated, st.LifecycleState)
	assert.Empty(t, f.calls().submissions, "the JobManager is not READY yet")

	cst = h.reconcileCluster()
	assert.Equal(t, trace{LifecycleStable, "", ReconDeployed}, traceOf(cst))
	assert.Equal(t, JMReady, cst.JobManagerDeploymentStatus)
	assert.Nil(t, cst.TaskManager)
	assert.Empty(t, h.rec.take())

	st = h.reconcile()
	assert.Equal(t, trace{LifecycleDeployed, StateReconciling, ReconDeployed}, traceOf(st))
	assert.Equal(t, []string{"Normal Submit Starting deployment"}, h.rec.take())
	c := f.calls()
	require.Len(t, c.submissions, 1)
	assert.Equal(t, sim.Submission{
		JobID: st.JobStatus.JobID, DefaultParallelism: 2, Overrides: map[string]int{},
		SlotsPerTaskManager: 2, TaskManagers: 1, Session: true,
	}, c.submissions[0], "the cluster's slots; no TaskManager to start")
	last := reconciled(t, st.ReconciliationStatus.LastReconciledSpec)
	assert.Equal(t, clusterName, path(last, "deploymentName"))
	assert.Empty(t, path(last, "flinkVersion"), "the session job's own spec")
	assert.True(t, last.ResourceMetadata.FirstDeployment)
	assert.Equal(t, int64(1), st.ObservedGeneration)

	f.setState(StateRunning)
	st = h.reconcile()
	assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
	assert.Equal(t, "orders", st.JobStatus.JobName)
	assert.Equal(t, st.ReconciliationStatus.LastReconciledSpec, st.ReconciliationStatus.LastStableSpec)
	raw, _, err := unstructured.NestedMap(h.get().Object, "status")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"jobStatus", "lifecycleState", "reconciliationStatus", "observedGeneration"},
		slices.Collect(maps.Keys(raw)), "no JobManager or TaskManager status: they are the cluster's")
	assert.Len(t, f.calls().submissions, 1)
}

// TestSessionJobCannotRun: what keeps a session job from being submitted,
// and how the operator says so.
func TestSessionJobCannotRun(t *testing.T) {
	cases := []struct {
		name    string
		cluster func(map[string]any) // nil: there is no session cluster
		job     func(map[string]any)
		event   string
		err     string // status.error; "" with no status written at all
	}{
		{"no such cluster", nil, nil,
			"Warning UnsupportedFlinkVersion Flink version null is not supported by this operator version", ""},
		{"cluster on Flink 1.14", func(c map[string]any) { c["flinkVersion"] = "v1_14" }, nil,
			"Warning UnsupportedFlinkVersion Flink version v1_14 is not supported by this operator version", ""},
		{"application cluster", func(c map[string]any) { c["job"] = job(baseSpec()) }, nil,
			"Warning ValidationError Invalid spec: Can not submit session job to application cluster",
			"Invalid spec: Can not submit session job to application cluster"},
		{"no job", func(map[string]any) {}, func(j map[string]any) { delete(j, "job") },
			"Warning ValidationError Invalid spec: The job spec should not be empty",
			"Invalid spec: The job spec should not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster, sj := sessionSpecs(baseSpec())
			if tc.cluster == nil {
				cluster = nil
			} else {
				tc.cluster(cluster)
			}
			if tc.job != nil {
				tc.job(sj)
			}
			f := newFakeFlink("1.18", "default")
			h := newSessionHarness(t, f, f, cluster, sj)
			st := h.reconcile()
			assert.Equal(t, []string{tc.event}, h.rec.take())
			assert.Equal(t, tc.err, st.Error)
			st = h.reconcile()
			assert.Equal(t, tc.err, st.Error)
			if tc.err == "" {
				assert.Equal(t, []string{tc.event}, h.rec.take(), "every retry warns")
			} else {
				assert.Empty(t, h.rec.take(), "a validation error is reported once")
			}
			if tc.err == "" {
				_, found, _ := unstructured.NestedMap(h.get().Object, "status")
				assert.False(t, found, "the operator writes no status before the version check passes")
			} else {
				assert.Equal(t, LifecycleFailed, h.status().LifecycleState)
			}
			assert.Empty(t, f.calls().submissions)
		})
	}

	// The missing cluster appears: the job runs.
	f := newFakeFlink("1.18", "default")
	cluster, sj := sessionSpecs(baseSpec())
	h := newSessionHarness(t, f, f, nil, sj)
	h.reconcile()
	h.create(envtest.NewFlinkDeployment(h.key.Namespace, clusterName), cluster)
	h.clusterStable()
	assert.Equal(t, LifecycleDeployed, h.reconcile().LifecycleState)
	assert.Len(t, f.calls().submissions, 1)
}

// TestSessionJobRescale: an overrides change of a session job is done in
// place when its session cluster runs the adaptive scheduler on Flink ≥ 1.18
// in native mode with in-place scaling on, and is a savepoint upgrade
// otherwise: stop-with-savepoint, then a new job restored from it.
func TestSessionJobRescale(t *testing.T) {
	adaptive := func(c map[string]any) { conf(c)[KeyScheduler] = "adaptive" }
	and := func(fs ...func(map[string]any)) func(map[string]any) {
		return func(m map[string]any) {
			for _, f := range fs {
				f(m)
			}
		}
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	setConf := func(k, v string) func(map[string]any) { return func(m map[string]any) { conf(m)[k] = v } }
	cases := []struct {
		name      string
		cluster   func(map[string]any) // the session cluster's spec
		job       func(map[string]any) // the session job's own spec
		scheduler string               // the cluster's, as Flink runs it
		// why is in the SpecChanged event of an upgrade ("" in place).
		why string
	}{
		{"adaptive, Flink 1.18", adaptive, nil, "adaptive", ""},
		{"adaptive, Flink 2.0", and(adaptive, set("flinkVersion", "v2_0")), nil, "adaptive", ""},
		{"in-place scaling off on the cluster, on for the job", and(adaptive, setConf(KeyInPlaceScaling, "false")),
			setConf(KeyInPlaceScaling, "true"), "adaptive", ""},
		{"default scheduler", nil, nil, "default", "no in-place scaling: " + KeyScheduler + " is not adaptive"},
		{"adaptive asked by the job only", nil, setConf(KeyScheduler, "adaptive"), "default",
			"no in-place scaling: " + KeyScheduler + " is not adaptive"},
		{"standalone", and(adaptive, set("mode", ModeStandalone)), nil, "adaptive",
			"UPGRADE change(s) detected: [flinkConfiguration." + KeyOverrides + " (UPGRADE)]"},
		{"Flink 1.17", and(adaptive, set("flinkVersion", "v1_17")), nil, "adaptive", "no in-place scaling: Flink v1_17 is older than 1.18"},
		{"in-place scaling off on the cluster", and(adaptive, setConf(KeyInPlaceScaling, "false")), nil, "adaptive",
			"no in-place scaling: " + KeyInPlaceScaling + " is false"},
		{"in-place scaling off for the job", adaptive, setConf(KeyInPlaceScaling, "false"), "adaptive",
			"no in-place scaling: " + KeyInPlaceScaling + " is false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster, sj := sessionSpecs(baseSpec())
			if tc.cluster != nil {
				tc.cluster(cluster)
			}
			if tc.job != nil {
				tc.job(sj)
			}
			f := newFakeFlink("1.18", tc.scheduler)
			h := newSessionHarness(t, f, f, cluster, sj)
			h.clusterStable()
			id := h.deployStable()

			h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":4," + vSink + ":1" })
			st := h.reconcile()
			ev := h.rec.take()
			if tc.why == "" {
				assert.Equal(t, []string{"Normal Scaling In-place scaling triggered"}, ev)
				want := map[string]sim.Bounds{vSource: {LowerBound: 1, UpperBound: 4}, vSink: {LowerBound: 1, UpperBound: 1}}
				c := f.calls()
				require.Len(t, c.puts, 1)
				assert.Equal(t, want, c.puts[0])
				assert.Equal(t, want, f.requirementsOf())
				assert.Empty(t, c.triggers)
				assert.Equal(t, trace{LifecycleDeployed, StateRunning, ReconDeployed}, traceOf(st))
				st = h.reconcile()
				assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
				assert.Equal(t, id, st.JobStatus.JobID, "the same job")
				assert.Equal(t, int64(2), st.ObservedGeneration)
				assert.Len(t, f.calls().submissions, 1)
				return
			}

			assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(ev))
			assert.Contains(t, ev[0], tc.why)
			assert.Equal(t, LifecycleStable, st.LifecycleState)
			c := f.calls()
			require.Len(t, c.triggers, 1)
			assert.Equal(t, sim.SavepointRequest{JobID: id, TargetDirectory: "s3://bucket/savepoints", Stop: true, FormatType: "CANONICAL"},
				c.triggers[0], "the cluster's savepoint directory")

			f.finishSavepoint(t, "s3://bucket/savepoints/savepoint-1")
			st = h.reconcile()
			assert.Equal(t, trace{LifecycleUpgrading, StateFinished, ReconUpgrading}, traceOf(st))
			assert.Empty(t, st.JobStatus.JobID, "the operator clears a stopped session job's id")
			assert.Equal(t, "s3://bucket/savepoints/savepoint-1", st.JobStatus.UpgradeSavepointPath)

			st = h.reconcile()
			assert.Equal(t, trace{LifecycleDeployed, StateReconciling, ReconDeployed}, traceOf(st))
			newID := st.JobStatus.JobID
			assert.NotEqual(t, id, newID)
			c = f.calls()
			require.Len(t, c.submissions, 2)
			assert.Equal(t, sim.Submission{
				JobID: newID, DefaultParallelism: 2, Overrides: map[string]int{vSource: 4, vSink: 1},
				SlotsPerTaskManager: 2, TaskManagers: 2, SavepointPath: "s3://bucket/savepoints/savepoint-1", Session: true,
			}, c.submissions[1])
			f.setState(StateRunning)
			st = h.reconcile()
			assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
			assert.Empty(t, f.calls().puts)
		})
	}
}

// TestSessionJobLastStateUpgrade: a last-state session job is canceled and
// restored from its latest checkpoint (the operator's allowLastStateCancel);
// a simulated job that cannot cancel plainly is stopped with a savepoint.
func TestSessionJobLastStateUpgrade(t *testing.T) {
	const chk = "s3://flink/checkpoints/orders/chk-7"
	for _, canceler := range []bool{true, false} {
		t.Run(map[bool]string{true: "cancel", false: "no plain cancel"}[canceler], func(t *testing.T) {
			spec := baseSpec()
			job(spec)["upgradeMode"] = UpgradeLastState
			f := newFakeFlink("1.18", "default")
			h := newKindHarness(t, true, withCancel(f, canceler), f, spec)
			id := h.deployStable()
			f.setCheckpoint(chk)

			h.edit(func(s map[string]any) { job(s)["parallelism"] = int64(3) })
			st := h.reconcile()
			assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(h.rec.take()))
			from := chk
			if canceler {
				assert.Equal(t, []string{id}, f.calls().cancels)
				assert.Empty(t, f.calls().triggers)
				assert.Equal(t, trace{LifecycleUpgrading, StateCanceled, ReconUpgrading}, traceOf(st))
				assert.Equal(t, id, st.JobStatus.JobID, "an asynchronous cancel keeps the id")
			} else {
				c := f.calls()
				require.Len(t, c.triggers, 1)
				assert.True(t, c.triggers[0].Stop)
				from = "s3://bucket/savepoints/savepoint-1"
				f.finishSavepoint(t, from)
				st = h.reconcile()
				assert.Equal(t, LifecycleUpgrading, st.LifecycleState)
			}
			assert.Equal(t, from, st.JobStatus.UpgradeSavepointPath)

			st = h.reconcile()
			assert.Equal(t, LifecycleDeployed, st.LifecycleState)
			c := f.calls()
			require.Len(t, c.submissions, 2)
			assert.Equal(t, from, c.submissions[1].SavepointPath)
			assert.Equal(t, 3, c.submissions[1].DefaultParallelism)
			assert.NotEqual(t, id, st.JobStatus.JobID)
		})
	}
}

// TestSessionJobDeploymentNameIsFixed: a session job cannot move to another
// cluster; its job keeps running where it is.
func TestSessionJobDeploymentNameIsFixed(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	h := newKindHarness(t, true, f, f, baseSpec())
	id := h.deployStable()
	cluster, _ := sessionSpecs(baseSpec())
	h.create(envtest.NewFlinkDeployment(h.key.Namespace, "other"), cluster)
	h.clusterKey.Name = "other"
	h.clusterStable()

	h.edit(func(s map[string]any) { s["deploymentName"] = "other" })
	st := h.reconcile()
	assert.Equal(t, []string{"Warning ValidationError Invalid spec: The deploymentName can't be changed"}, h.rec.take())
	assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
	assert.Equal(t, id, st.JobStatus.JobID)
	assert.Empty(t, f.calls().triggers)
	assert.Len(t, f.calls().submissions, 1)
}
