package fakeoperator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/sim"
)

// The tests share one control plane (envtest.Main) and isolate themselves by
// namespace.
func TestMain(m *testing.M) { envtest.Main(m) }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// harness drives one FlinkDeployment through Operator.Reconcile (or one
// FlinkSessionJob through ReconcileSessionJob), called synchronously, with a
// fake clock, a recording event sink and a fakeFlink.
type harness struct {
	t     *testing.T
	ctx   context.Context
	env   *envtest.Env
	op    *Operator
	clock *clocktesting.FakePassiveClock
	rec   *recorder
	flink *fakeFlink
	key   types.NamespacedName
	// session: key is a FlinkSessionJob of the session cluster clusterKey.
	session    bool
	clusterKey types.NamespacedName
}

func baseSpec() map[string]any {
	return map[string]any{
		"flinkVersion":   "v1_18",
		"mode":           "native",
		"image":          "flink:1.18",
		"serviceAccount": "flink",
		"flinkConfiguration": map[string]any{
			"taskmanager.numberOfTaskSlots": "2",
			"state.savepoints.dir":          "s3://bucket/savepoints",
		},
		"job": map[string]any{
			"jarURI":      "local:///opt/flink/usrlib/orders.jar",
			"parallelism": int64(2),
			"upgradeMode": "savepoint",
			"state":       "running",
			"args":        []any{"--topic", "orders"},
		},
		"jobManager":  map[string]any{"replicas": int64(1), "resource": map[string]any{"cpu": int64(1), "memory": "2048m"}},
		"taskManager": map[string]any{"resource": map[string]any{"cpu": 1.5, "memory": "4096m"}},
	}
}

// specMemory is the TaskManager memory baseSpec's 4096m derive with
// Flink's defaults; a session job's submission carries none (its
// cluster's TaskManagers run already).
func specMemory(session bool) *scaling.TaskManagerMemory {
	if session {
		return nil
	}
	m, err := scaling.DeriveTaskManagerMemory(nil, 4096<<20)
	if err != nil {
		panic(err)
	}
	return &m
}

// conf is spec.flinkConfiguration, added if missing.
func conf(spec map[string]any) map[string]any {
	c, ok := spec["flinkConfiguration"].(map[string]any)
	if !ok {
		c = map[string]any{}
		spec["flinkConfiguration"] = c
	}
	return c
}

func job(spec map[string]any) map[string]any { return spec["job"].(map[string]any) }

func newHarness(t *testing.T, d sim.Deployer, f *fakeFlink, spec map[string]any) *harness {
	t.Helper()
	h := newBareHarness(t, f)
	h.op.Clusters.Register(h.key, d)
	h.create(envtest.NewFlinkDeployment(h.key.Namespace, h.key.Name), spec)
	return h
}

// newBareHarness is a harness with nothing created yet.
func newBareHarness(t *testing.T, f *fakeFlink) *harness {
	t.Helper()
	env := envtest.Start(t)
	ns := env.CreateNamespace(t, "fakeop")
	h := &harness{
		t: t, ctx: context.Background(), env: env,
		clock: clocktesting.NewFakePassiveClock(t0),
		rec:   &recorder{},
		flink: f,
		key:   types.NamespacedName{Namespace: ns, Name: "orders"},
	}
	var seq atomic.Int64
	h.op = &Operator{
		Client: env.Client, Clusters: NewRegistry(), SessionJobs: NewRegistry(), Clock: h.clock, Recorder: h.rec,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0xa0+seq.Add(1)) },
	}
	return h
}

// create creates u with spec.
func (h *harness) create(u *unstructured.Unstructured, spec map[string]any) {
	h.t.Helper()
	require.NoError(h.t, unstructured.SetNestedField(u.Object, spec, "spec"))
	require.NoError(h.t, h.env.Client.Create(h.ctx, u))
}

// reconcile runs one Reconcile (ReconcileSessionJob) and returns the status
// it left.
func (h *harness) reconcile() Status {
	h.t.Helper()
	rec := h.op.Reconcile
	if h.session {
		rec = h.op.ReconcileSessionJob
	}
	res, err := rec(h.ctx, ctrl.Request{NamespacedName: h.key})
	require.NoError(h.t, err)
	require.Positive(h.t, res.RequeueAfter, "the operator always asks to be requeued")
	return h.status()
}

func (h *harness) get() *unstructured.Unstructured {
	h.t.Helper()
	u := envtest.NewFlinkDeployment(h.key.Namespace, h.key.Name)
	if h.session {
		u = envtest.NewFlinkSessionJob(h.key.Namespace, h.key.Name)
	}
	require.NoError(h.t, h.env.Client.Get(h.ctx, h.key, u))
	return u
}

func (h *harness) status() Status {
	h.t.Helper()
	st, err := ReadStatus(h.get())
	require.NoError(h.t, err)
	return st
}

// edit changes the spec (a new generation).
func (h *harness) edit(change func(spec map[string]any)) {
	h.t.Helper()
	u := h.get()
	spec, _, err := unstructured.NestedMap(u.Object, "spec")
	require.NoError(h.t, err)
	change(spec)
	require.NoError(h.t, unstructured.SetNestedField(u.Object, spec, "spec"))
	require.NoError(h.t, h.env.Client.Update(h.ctx, u))
}

// deployStable takes a new FlinkDeployment to STABLE and returns its job id.
func (h *harness) deployStable() string {
	h.t.Helper()
	st := h.reconcile()
	require.Equal(h.t, LifecycleDeployed, st.LifecycleState)
	h.flink.setState(StateRunning)
	st = h.reconcile()
	require.Equal(h.t, LifecycleStable, st.LifecycleState)
	h.rec.take()
	return st.JobStatus.JobID
}

func reconciled(t *testing.T, s string) *ReconciledSpec {
	t.Helper()
	rs, err := ParseReconciledSpec(s)
	require.NoError(t, err)
	return rs
}

// path reads a nested value from a reconciled spec as a string.
func path(rs *ReconciledSpec, keys ...string) string {
	var v any = rs.Spec
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// trace is what a test asserts step by step.
type trace struct{ lifecycle, job, recon string }

func traceOf(st Status) trace {
	return trace{st.LifecycleState, st.JobStatus.State, st.ReconciliationStatus.State}
}

func TestFirstDeploymentBecomesStable(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	h := newHarness(t, f, f, baseSpec())
	t.Logf("FlinkDeployment CRD: %s", h.env.FlinkDeploymentCRD)

	st := h.reconcile()
	assert.Equal(t, trace{LifecycleDeployed, StateReconciling, ReconDeployed}, traceOf(st))
	c := f.calls()
	require.Len(t, c.submissions, 1)
	assert.Equal(t, sim.Submission{
		JobID: st.JobStatus.JobID, DefaultParallelism: 2, Overrides: map[string]int{},
		SlotsPerTaskManager: 2, TaskManagers: 1, Memory: specMemory(false),
	}, c.submissions[0])
	assert.Len(t, st.JobStatus.JobID, 32)
	assert.Equal(t, "orders", st.JobStatus.JobName)
	assert.Equal(t, JMDeploying, st.JobManagerDeploymentStatus)
	assert.Equal(t, &TaskManagerStatus{Replicas: 1, LabelSelector: "component=taskmanager,app=orders"}, st.TaskManager)
	assert.Equal(t, int64(1), st.ObservedGeneration)
	assert.Equal(t, t0.UnixMilli(), st.ReconciliationStatus.ReconciliationTimestamp)
	last := reconciled(t, st.ReconciliationStatus.LastReconciledSpec)
	assert.Equal(t, "2", path(last, "job", "parallelism"))
	assert.Equal(t, "running", path(last, "job", "state"))
	assert.True(t, last.ResourceMetadata.FirstDeployment)
	assert.Equal(t, "flink.apache.org/v1beta1", last.ResourceMetadata.APIVersion)
	assert.Empty(t, st.ReconciliationStatus.LastStableSpec)
	assert.Equal(t, []string{"Normal Submit Starting deployment"}, h.rec.take())

	h.clock.SetTime(t0.Add(2 * time.Second))
	st = h.reconcile()
	assert.Equal(t, trace{LifecycleDeployed, StateInitializing, ReconDeployed}, traceOf(st))
	assert.Equal(t, JMDeployedNotReady, st.JobManagerDeploymentStatus)
	assert.Equal(t, []string{"Normal JobStatusChanged Job status changed from RECONCILING to INITIALIZING"}, h.rec.take())

	f.setState(StateRunning)
	h.clock.SetTime(t0.Add(5 * time.Second))
	st = h.reconcile()
	assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
	assert.Equal(t, JMReady, st.JobManagerDeploymentStatus)
	assert.Equal(t, st.ReconciliationStatus.LastReconciledSpec, st.ReconciliationStatus.LastStableSpec)
	assert.Equal(t, fmt.Sprint(t0.Add(5*time.Second).UnixMilli()), st.JobStatus.UpdateTime)
	assert.NotEmpty(t, st.JobStatus.StartTime)
	assert.Empty(t, st.Error)

	// Steady state: nothing more happens.
	before := h.get().GetResourceVersion()
	st2 := h.reconcile()
	assert.Equal(t, st, st2)
	assert.Equal(t, before, h.get().GetResourceVersion(), "an unchanged status is not written")
	assert.Len(t, f.calls().submissions, 1)
}

// TestSavepointUpgrade: an overrides change without the adaptive scheduler
// is a full savepoint-and-restart upgrade, with the operator's transitions.
func TestSavepointUpgrade(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	h := newHarness(t, f, f, baseSpec())
	oldID := h.deployStable()

	h.edit(func(s map[string]any) {
		conf(s)[KeyOverrides] = vSource + ":4, " + vSink + ":3"
	})
	var steps []trace

	// Reconcile N: stop-with-savepoint, not blocking.
	st := h.reconcile()
	steps = append(steps, traceOf(st))
	assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(h.rec.take()))
	c := f.calls()
	require.Len(t, c.triggers, 1)
	assert.Equal(t, sim.SavepointRequest{JobID: oldID, TargetDirectory: "s3://bucket/savepoints", Stop: true, FormatType: "CANONICAL"}, c.triggers[0])
	require.NotNil(t, st.JobStatus.SavepointInfo)
	assert.Equal(t, "trigger-1", st.JobStatus.SavepointInfo.TriggerID)
	assert.Equal(t, "UPGRADE", st.JobStatus.SavepointInfo.TriggerType)

	// Still in progress: poll, nothing else.
	h.clock.SetTime(t0.Add(time.Second))
	st = h.reconcile()
	steps = append(steps, traceOf(st))
	assert.Len(t, f.calls().triggers, 1)
	assert.Empty(t, h.rec.take())

	// Savepoint done: the old job FINISHED, status UPGRADING.
	f.finishSavepoint(t, "s3://bucket/savepoints/savepoint-1")
	h.clock.SetTime(t0.Add(2 * time.Second))
	st = h.reconcile()
	steps = append(steps, traceOf(st))
	assert.Equal(t, []string{"Normal JobStatusChanged Job status changed from RUNNING to FINISHED"}, h.rec.take())
	assert.Equal(t, "s3://bucket/savepoints/savepoint-1", st.JobStatus.UpgradeSavepointPath)
	assert.Equal(t, oldID, st.JobStatus.JobID)
	assert.Empty(t, st.JobStatus.SavepointInfo.TriggerID)
	require.NotNil(t, st.JobStatus.SavepointInfo.LastSavepoint)
	assert.Equal(t, "s3://bucket/savepoints/savepoint-1", st.JobStatus.SavepointInfo.LastSavepoint.Location)
	last := reconciled(t, st.ReconciliationStatus.LastReconciledSpec)
	assert.Equal(t, "suspended", path(last, "job", "state"))
	assert.Equal(t, "savepoint", path(last, "job", "upgradeMode"))
	assert.Len(t, f.calls().submissions, 1)

	// Reconcile N+1: resubmit from the savepoint with a new job id.
	h.clock.SetTime(t0.Add(3 * time.Second))
	st = h.reconcile()
	steps = append(steps, traceOf(st))
	assert.Equal(t, []string{ReasonSubmit}, reasons(h.rec.take()))
	c = f.calls()
	require.Len(t, c.submissions, 2)
	newID := st.JobStatus.JobID
	assert.NotEqual(t, oldID, newID)
	assert.Equal(t, sim.Submission{
		JobID: newID, DefaultParallelism: 2, Overrides: map[string]int{vSource: 4, vSink: 3},
		SlotsPerTaskManager: 2, TaskManagers: 2, SavepointPath: "s3://bucket/savepoints/savepoint-1", Memory: specMemory(false),
	}, c.submissions[1])
	assert.Equal(t, JMDeploying, st.JobManagerDeploymentStatus)
	assert.Equal(t, int32(2), st.TaskManager.Replicas)
	last = reconciled(t, st.ReconciliationStatus.LastReconciledSpec)
	assert.Equal(t, "running", path(last, "job", "state"))
	assert.Equal(t, vSource+":4, "+vSink+":3", path(last, "flinkConfiguration", KeyOverrides))
	assert.Equal(t, int64(2), st.ObservedGeneration)

	// The new job comes up.
	for _, s := range []string{StateInitializing, StateCreated, StateRunning} {
		f.setState(s)
		st = h.reconcile()
		steps = append(steps, traceOf(st))
	}
	assert.Equal(t, []trace{
		{LifecycleStable, StateRunning, ReconDeployed},      // savepoint triggered
		{LifecycleStable, StateRunning, ReconDeployed},      // savepoint in progress
		{LifecycleUpgrading, StateFinished, ReconUpgrading}, // savepoint completed
		{LifecycleDeployed, StateReconciling, ReconDeployed},
		{LifecycleDeployed, StateInitializing, ReconDeployed},
		{LifecycleDeployed, StateCreated, ReconDeployed},
		{LifecycleStable, StateRunning, ReconDeployed},
	}, steps)
	assert.Equal(t, st.ReconciliationStatus.LastReconciledSpec, st.ReconciliationStatus.LastStableSpec)
	assert.Equal(t, newID, st.JobStatus.JobID)
	assert.Empty(t, f.calls().puts)
	assert.Empty(t, st.Error)
}

// TestUpgradeClasses: changes that are UPGRADE, or SCALE that cannot be done
// in place, start a savepoint; none goes through resource requirements.
func TestUpgradeClasses(t *testing.T) {
	adaptive := func(s map[string]any) { conf(s)[KeyScheduler] = "adaptive" }
	cases := []struct {
		name      string
		base      func(map[string]any)
		version   string
		scheduler string
		change    func(map[string]any)
	}{
		{"overrides, default scheduler", nil, "1.18", "default",
			func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":3" }},
		{"overrides, adaptive on Flink 1.17", func(s map[string]any) { adaptive(s); s["flinkVersion"] = "v1_17" }, "1.17", "adaptive",
			func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":3" }},
		{"overrides, in-place scaling disabled", func(s map[string]any) { adaptive(s); conf(s)[KeyInPlaceScaling] = "false" }, "1.18", "adaptive",
			func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":3" }},
		{"job parallelism, adaptive", adaptive, "1.18", "adaptive",
			func(s map[string]any) { job(s)["parallelism"] = int64(4) }},
		{"task manager replicas", nil, "1.18", "default",
			func(s map[string]any) { s["taskManager"].(map[string]any)["replicas"] = int64(3) }},
		{"slots", adaptive, "1.18", "adaptive",
			func(s map[string]any) { conf(s)[KeySlots] = "4" }},
		{"restart nonce", nil, "1.18", "default",
			func(s map[string]any) { s["restartNonce"] = int64(1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			if tc.base != nil {
				tc.base(spec)
			}
			f := newFakeFlink(tc.version, tc.scheduler)
			h := newHarness(t, f, f, spec)
			h.deployStable()
			h.edit(tc.change)
			st := h.reconcile()
			assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(h.rec.take()))
			c := f.calls()
			assert.Len(t, c.triggers, 1)
			assert.Empty(t, c.puts)
			assert.Equal(t, LifecycleStable, st.LifecycleState)
		})
	}
}

// TestInPlaceScaling: with the adaptive scheduler on Flink ≥ 1.18 an
// overrides change is a PUT of resource requirements: same job, no
// UPGRADING.
func TestInPlaceScaling(t *testing.T) {
	spec := baseSpec()
	conf(spec)[KeyScheduler] = "adaptive"
	f := newFakeFlink("1.18", "adaptive")
	h := newHarness(t, f, f, spec)
	id := h.deployStable()

	h.edit(func(s map[string]any) {
		conf(s)[KeyOverrides] = vSource + ":4," + vSink + ":1"
		conf(s)["job.autoscaler.enabled"] = "true" // IGNORE, alongside
	})
	st := h.reconcile()
	assert.Equal(t, []string{"Normal Scaling In-place scaling triggered"}, h.rec.take())
	c := f.calls()
	require.Len(t, c.puts, 1)
	assert.Equal(t, map[string]sim.Bounds{
		vSource: {LowerBound: 1, UpperBound: 4},
		vSink:   {LowerBound: 1, UpperBound: 1},
	}, c.puts[0])
	assert.Len(t, c.submissions, 1)
	assert.Empty(t, c.triggers)
	assert.Equal(t, id, st.JobStatus.JobID)
	assert.Equal(t, trace{LifecycleDeployed, StateRunning, ReconDeployed}, traceOf(st))
	assert.Equal(t, vSource+":4,"+vSink+":1", path(reconciled(t, st.ReconciliationStatus.LastReconciledSpec), "flinkConfiguration", KeyOverrides))
	assert.Equal(t, int32(2), st.TaskManager.Replicas)

	st = h.reconcile()
	assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
	assert.Equal(t, id, st.JobStatus.JobID)

	// Dropping a vertex's override cannot be done in place: full upgrade.
	h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":4" })
	st = h.reconcile()
	ev := h.rec.take()
	assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(ev))
	assert.Contains(t, ev[0], "override of vertex "+vSink+" removed")
	assert.Len(t, f.calls().triggers, 1)
	assert.Len(t, f.calls().puts, 1)
	assert.Equal(t, LifecycleStable, st.LifecycleState)
}

// TestSavepointFailure: the job keeps running its old spec, the error is
// reported once, and the spec is retried only after the backoff.
func TestSavepointFailure(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { testSavepointFailure(t, k.session) })
	}
}

func testSavepointFailure(t *testing.T, session bool) {
	f := newFakeFlink("1.18", "default")
	h := newKindHarness(t, session, f, f, baseSpec())
	id := h.deployStable()
	stableSpec := h.status().ReconciliationStatus.LastReconciledSpec

	f.Inject(sim.FaultSavepoint)
	h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":4" })
	h.reconcile()
	require.Len(t, f.calls().triggers, 1)
	h.rec.take()
	f.finishSavepoint(t, "")

	st := h.reconcile()
	assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
	assert.Contains(t, st.Error, "Checkpoint expired before completing.")
	ev := h.rec.take()
	require.Len(t, ev, 1)
	assert.True(t, strings.HasPrefix(ev[0], "Warning SavepointError "), ev[0])
	assert.Equal(t, id, st.JobStatus.JobID)
	assert.Empty(t, st.JobStatus.SavepointInfo.TriggerID)
	assert.Equal(t, stableSpec, st.ReconciliationStatus.LastReconciledSpec, "the failed spec is not recorded as reconciled")
	assert.Equal(t, stableSpec, st.ReconciliationStatus.LastStableSpec)
	assert.Len(t, f.calls().submissions, 1)
	for _, v := range f.View().Job.Vertices {
		assert.Equal(t, 2, v.Parallelism, "vertex %s keeps its old parallelism", v.ID)
	}

	// No tight loop: within the backoff (30s) the spec is not retried.
	for i := 1; i <= 5; i++ {
		h.clock.SetTime(t0.Add(time.Duration(i) * 5 * time.Second))
		st = h.reconcile()
		assert.Equal(t, LifecycleStable, st.LifecycleState)
	}
	assert.Len(t, f.calls().triggers, 1)
	assert.Empty(t, h.rec.take())
	assert.NotEmpty(t, st.Error)

	// After it, the upgrade is tried again and this time goes through.
	h.clock.SetTime(t0.Add(31 * time.Second))
	h.reconcile()
	assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(h.rec.take()))
	require.Len(t, f.calls().triggers, 2)
	f.finishSavepoint(t, "s3://bucket/savepoints/savepoint-2")
	st = h.reconcile()
	assert.Equal(t, LifecycleUpgrading, st.LifecycleState)
	assert.Empty(t, st.Error)
	st = h.reconcile()
	assert.Equal(t, LifecycleDeployed, st.LifecycleState)
	assert.NotEqual(t, id, st.JobStatus.JobID)
	assert.Equal(t, "s3://bucket/savepoints/savepoint-2", f.calls().submissions[1].SavepointPath)
}

// TestSavepointFailureBackoffGrows: consecutive failures of the same spec
// double the wait.
func TestSavepointFailureBackoffGrows(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	h := newHarness(t, f, f, baseSpec())
	h.deployStable()
	h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":4" })

	at := t0
	fail := func() {
		f.Inject(sim.FaultSavepoint)
		h.reconcile()
		f.finishSavepoint(t, "")
		h.reconcile()
	}
	fail() // retry after 30s
	at = at.Add(31 * time.Second)
	h.clock.SetTime(at)
	fail() // retry after 60s
	require.Len(t, f.calls().triggers, 2)
	h.clock.SetTime(at.Add(45 * time.Second))
	h.reconcile()
	assert.Len(t, f.calls().triggers, 2, "the second backoff is longer")
	h.clock.SetTime(at.Add(61 * time.Second))
	h.reconcile()
	assert.Len(t, f.calls().triggers, 3)
}

// TestRestartFailure: the upgraded job FAILs; with rollback enabled the last
// stable spec is redeployed from the upgrade savepoint, without it the
// deployment is FAILED.
func TestRestartFailure(t *testing.T) {
	for _, k := range kinds {
		for _, rollback := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/rollback=%v", k.name, rollback), func(t *testing.T) { testRestartFailure(t, k.session, rollback) })
		}
	}
}

func testRestartFailure(t *testing.T, session, rollback bool) {
	spec := baseSpec()
	if rollback {
		conf(spec)[KeyRollback] = "true"
	}
	f := newFakeFlink("1.18", "default")
	h := newKindHarness(t, session, f, f, spec)
	firstID := h.deployStable()

	h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = vSource + ":4" })
	h.reconcile()
	f.finishSavepoint(t, "s3://bucket/savepoints/savepoint-1")
	require.Equal(t, LifecycleUpgrading, h.reconcile().LifecycleState)
	f.Inject(sim.FaultRestart)
	st := h.reconcile()
	require.Equal(t, LifecycleDeployed, st.LifecycleState)
	failedID := st.JobStatus.JobID
	h.rec.take()

	var steps []trace
	for range 3 {
		st = h.reconcile()
		steps = append(steps, traceOf(st))
	}
	c := f.calls()
	if !rollback {
		assert.Equal(t, []trace{
			{LifecycleFailed, StateFailed, ReconDeployed},
			{LifecycleFailed, StateFailed, ReconDeployed},
			{LifecycleFailed, StateFailed, ReconDeployed},
		}, steps)
		assert.Len(t, c.submissions, 2)
		assert.Equal(t, []string{ReasonJobStatusChanged}, reasons(h.rec.take()))
		return
	}
	assert.Equal(t, []trace{
		{LifecycleRollingBack, StateFailed, ReconRollingBack},
		{LifecycleRolledBack, StateReconciling, ReconRolledBack},
		{LifecycleRolledBack, StateInitializing, ReconRolledBack},
	}, steps)
	assert.Equal(t, []string{ReasonJobStatusChanged, ReasonRollback, ReasonSubmit, ReasonJobStatusChanged}, reasons(h.rec.take()))
	require.Len(t, c.submissions, 3)
	assert.Equal(t, sim.Submission{
		JobID: st.JobStatus.JobID, DefaultParallelism: 2, Overrides: map[string]int{},
		SlotsPerTaskManager: 2, TaskManagers: 1, SavepointPath: "s3://bucket/savepoints/savepoint-1", Session: session,
		Memory: specMemory(session),
	}, c.submissions[2], "the last stable spec, from the upgrade savepoint")
	assert.NotContains(t, []string{firstID, failedID}, st.JobStatus.JobID)

	f.setState(StateRunning)
	st = h.reconcile()
	assert.Equal(t, trace{LifecycleRolledBack, StateRunning, ReconRolledBack}, traceOf(st))
	// The failed spec stays the reconciled one: it is not retried.
	assert.Equal(t, vSource+":4", path(reconciled(t, st.ReconciliationStatus.LastReconciledSpec), "flinkConfiguration", KeyOverrides))
	h.reconcile()
	assert.Len(t, f.calls().submissions, 3)
	assert.Len(t, f.calls().triggers, 1)
}

// TestIgnoredChange: operator and autoscaler keys change nothing deployed.
func TestIgnoredChange(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	h := newHarness(t, f, f, baseSpec())
	id := h.deployStable()

	h.edit(func(s map[string]any) {
		conf(s)["job.autoscaler.enabled"] = "true"
		conf(s)["job.autoscaler.metrics.window"] = "5m"
		conf(s)["kubernetes.operator.reconcile.interval"] = "15s"
	})
	for range 3 {
		st := h.reconcile()
		assert.Equal(t, trace{LifecycleStable, StateRunning, ReconDeployed}, traceOf(st))
		assert.Equal(t, id, st.JobStatus.JobID)
		assert.Equal(t, int64(2), st.ObservedGeneration)
		assert.Equal(t, "true", path(reconciled(t, st.ReconciliationStatus.LastReconciledSpec), "flinkConfiguration", "job.autoscaler.enabled"))
	}
	c := f.calls()
	assert.Len(t, c.submissions, 1)
	assert.Empty(t, c.triggers)
	assert.Empty(t, c.puts)
	assert.Empty(t, h.rec.take())
}

// TestStatelessUpgrade: no savepoint is restored; the job is canceled
// directly when the cluster can, else through a canceling savepoint.
func TestStatelessUpgrade(t *testing.T) {
	for _, k := range kinds {
		for _, canceler := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/canceler=%v", k.name, canceler), func(t *testing.T) { testStatelessUpgrade(t, k.session, canceler) })
		}
	}
}

func testStatelessUpgrade(t *testing.T, session, canceler bool) {
	spec := baseSpec()
	job(spec)["upgradeMode"] = "stateless"
	f := newFakeFlink("1.18", "default")
	h := newKindHarness(t, session, withCancel(f, canceler), f, spec)
	id := h.deployStable()

	h.edit(func(s map[string]any) { job(s)["parallelism"] = int64(4) })
	st := h.reconcile()
	assert.Equal(t, []string{ReasonSpecChanged, ReasonSuspended}, reasons(h.rec.take()))
	if canceler {
		assert.Equal(t, []string{id}, f.calls().cancels)
		assert.Empty(t, f.calls().triggers)
	} else {
		c := f.calls()
		require.Len(t, c.triggers, 1)
		assert.True(t, c.triggers[0].Cancel)
		assert.False(t, c.triggers[0].Stop)
		f.finishSavepoint(t, "s3://bucket/savepoints/ignored")
		st = h.reconcile()
	}
	assert.Equal(t, LifecycleUpgrading, st.LifecycleState)
	assert.Equal(t, StateCanceled, st.JobStatus.State)
	assert.Equal(t, id, st.JobStatus.JobID, "a cancel keeps the id until the resubmission")
	assert.Empty(t, st.JobStatus.UpgradeSavepointPath)

	st = h.reconcile()
	assert.Equal(t, LifecycleDeployed, st.LifecycleState)
	c := f.calls()
	require.Len(t, c.submissions, 2)
	assert.Equal(t, sim.Submission{
		JobID: st.JobStatus.JobID, DefaultParallelism: 4, Overrides: map[string]int{},
		SlotsPerTaskManager: 2, TaskManagers: 2, Session: session, Memory: specMemory(session),
	}, c.submissions[1])
	assert.NotEqual(t, id, st.JobStatus.JobID)
}

// TestSuspendAndResume: job.state suspended stops the job with a savepoint
// (SUSPENDED); running again restores from it.
func TestSuspendAndResume(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { testSuspendAndResume(t, k.session) })
	}
}

func testSuspendAndResume(t *testing.T, session bool) {
	f := newFakeFlink("1.18", "default")
	h := newKindHarness(t, session, f, f, baseSpec())
	h.deployStable()

	h.edit(func(s map[string]any) { job(s)["state"] = "suspended" })
	h.reconcile()
	f.finishSavepoint(t, "s3://bucket/savepoints/savepoint-1")
	st := h.reconcile()
	assert.Equal(t, trace{LifecycleSuspended, StateFinished, ReconDeployed}, traceOf(st))
	st = h.reconcile()
	assert.Equal(t, LifecycleSuspended, st.LifecycleState)
	assert.Len(t, f.calls().submissions, 1)

	h.edit(func(s map[string]any) { job(s)["state"] = "running" })
	st = h.reconcile()
	assert.Equal(t, trace{LifecycleDeployed, StateReconciling, ReconDeployed}, traceOf(st))
	c := f.calls()
	require.Len(t, c.submissions, 2)
	assert.Equal(t, "s3://bucket/savepoints/savepoint-1", c.submissions[1].SavepointPath)
}

// TestInvalidSpec: a bad overrides string is reported; nothing is deployed.
func TestInvalidSpec(t *testing.T) {
	f := newFakeFlink("1.18", "default")
	h := newHarness(t, f, f, baseSpec())
	h.deployStable()
	h.edit(func(s map[string]any) { conf(s)[KeyOverrides] = vSource + "=4" })
	st := h.reconcile()
	assert.Contains(t, st.Error, "bad entry")
	assert.Equal(t, LifecycleStable, st.LifecycleState)
	assert.Equal(t, []string{ReasonValidationError}, reasons(h.rec.take()))
	h.reconcile()
	assert.Empty(t, h.rec.take(), "reported once")
	assert.Empty(t, f.calls().triggers)
}

// TestWithManager runs the operator under a manager: watches and requeues
// alone take a FlinkDeployment (a FlinkSessionJob, created before its
// session cluster) to STABLE and through an in-place scale.
func TestWithManager(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { testWithManager(t, k.session) })
	}
}

func testWithManager(t *testing.T, session bool) {
	env := envtest.Start(t)
	ns := env.CreateNamespace(t, "fakeop-mgr")
	key := types.NamespacedName{Namespace: ns, Name: "orders"}
	f := newFakeFlink("1.18", "adaptive")
	f.autoRun = true
	ctx := context.Background()
	create := func(u *unstructured.Unstructured, spec map[string]any) {
		require.NoError(t, unstructured.SetNestedField(u.Object, spec, "spec"))
		require.NoError(t, env.Client.Create(ctx, u))
	}
	spec := baseSpec()
	conf(spec)[KeyScheduler] = "adaptive"
	op := &Operator{Clusters: NewRegistry(), ResyncInterval: 100 * time.Millisecond}
	newObj := func() *unstructured.Unstructured { return envtest.NewFlinkDeployment(ns, key.Name) }
	var cluster map[string]any
	if session {
		op.SessionJobs = NewRegistry()
		op.SessionJobs.Register(key, f)
		newObj = func() *unstructured.Unstructured { return envtest.NewFlinkSessionJob(ns, key.Name) }
		cluster, spec = sessionSpecs(spec)
	} else {
		op.Clusters.Register(key, f)
	}

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	require.NoError(t, err)
	require.NoError(t, op.SetupWithManager(mgr))
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	create(newObj(), spec)
	if session {
		create(envtest.NewFlinkDeployment(ns, clusterName), cluster)
	}
	get := func() Status {
		u := newObj()
		require.NoError(t, env.Client.Get(ctx, key, u))
		st, err := ReadStatus(u)
		require.NoError(t, err)
		return st
	}
	require.Eventually(t, func() bool { return get().LifecycleState == LifecycleStable }, 30*time.Second, 50*time.Millisecond)
	id := get().JobStatus.JobID

	u := newObj()
	require.NoError(t, env.Client.Get(ctx, key, u))
	require.NoError(t, unstructured.SetNestedField(u.Object, vSource+":3,"+vSink+":2", "spec", "flinkConfiguration", KeyOverrides))
	require.NoError(t, env.Client.Update(ctx, u))
	require.Eventually(t, func() bool {
		st := get()
		return len(f.calls().puts) == 1 && st.LifecycleState == LifecycleStable && st.ObservedGeneration == 2
	}, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, id, get().JobStatus.JobID)
	assert.Len(t, f.calls().submissions, 1)
}

// The JSON in lastReconciledSpec round-trips through the operator's format.
func TestReconciledSpecJSON(t *testing.T) {
	s := reconciledSpecJSON(map[string]any{"job": map[string]any{"parallelism": 2}}, 7, true)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	assert.Equal(t, map[string]any{
		"spec":              map[string]any{"job": map[string]any{"parallelism": 2.0}},
		"resource_metadata": map[string]any{"apiVersion": "flink.apache.org/v1beta1", "metadata": map[string]any{"generation": 7.0}, "firstDeployment": true},
	}, m)
}

// TestCreatedSuspended: a FlinkDeployment created suspended deploys nothing
// until it is set running, then starts from initialSavepointPath.
func TestCreatedSuspended(t *testing.T) {
	spec := baseSpec()
	job(spec)["state"] = "suspended"
	job(spec)["initialSavepointPath"] = "s3://bucket/savepoints/initial"
	f := newFakeFlink("1.18", "default")
	h := newHarness(t, f, f, spec)

	st := h.reconcile()
	assert.Equal(t, LifecycleSuspended, st.LifecycleState)
	assert.Empty(t, f.calls().submissions)

	h.edit(func(s map[string]any) { job(s)["state"] = "running" })
	st = h.reconcile()
	assert.Equal(t, trace{LifecycleDeployed, StateReconciling, ReconDeployed}, traceOf(st))
	c := f.calls()
	require.Len(t, c.submissions, 1)
	assert.Equal(t, "s3://bucket/savepoints/initial", c.submissions[0].SavepointPath)
	assert.True(t, reconciled(t, st.ReconciliationStatus.LastReconciledSpec).ResourceMetadata.FirstDeployment)
}
