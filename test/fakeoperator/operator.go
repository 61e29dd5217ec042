// Package fakeoperator is a stand-in for the Apache Flink Kubernetes Operator
// (release 1.15) in flinkscale's tests: a controller-runtime reconciler of
// FlinkDeployment and FlinkSessionJob resources (handled as unstructured
// objects) that drives simulated Flink jobs (sim.Deployer) and writes the
// status the real operator writes, with the same state transitions, for the
// parts flinkscale depends on:
//
//   - first deployment: submit, DEPLOYED, then STABLE once the job RUNs;
//   - spec changes sorted into IGNORE, SCALE and UPGRADE as the operator's
//     spec diff does (which depends on the deployment mode);
//   - SCALE in place through the adaptive scheduler's resource requirements
//     (Flink ≥ 1.18, jobmanager.scheduler: adaptive, native mode);
//   - UPGRADE by stop-with-savepoint (savepoint and last-state modes) or
//     cancel (stateless), then a resubmission with a new job id: status goes
//     through UPGRADING, DEPLOYED and STABLE;
//   - a failed upgrade savepoint leaves the job running on its old spec, with
//     status.error set and a backed-off retry; the error is cleared once a
//     reconcile finds the spec reverted to the running one;
//   - a job that FAILs before its new spec became stable is rolled back to
//     the last stable spec when kubernetes.operator.deployment.rollback.enabled
//     is true (ROLLING_BACK, ROLLED_BACK), and is FAILED otherwise.
//
// A FlinkDeployment without spec.job is a session cluster: it runs no job of
// its own and needs no simulated cluster; it becomes STABLE with its
// JobManager READY. Its jobs are FlinkSessionJobs (ReconcileSessionJob): the
// same state machine, with the Flink version, mode, scheduler and slots of
// the session cluster that spec.deploymentName names, and the status the
// operator writes for session jobs (see ReconcileSessionJob).
//
// Reconcile never blocks on Flink: a savepoint in flight is kept in the status
// and polled on later reconciles, and every reconcile asks to be requeued so
// the status follows the simulated job. Tests may call Reconcile directly
// (deterministic, with a fake clock) or run it under a manager
// (SetupWithManager).
//
// The state machine is documented on Reconcile.
package fakeoperator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flinkscale/flinkscale/test/sim"
)

// FlinkDeploymentGVK and FlinkSessionJobGVK are the kinds the operator
// reconciles.
var (
	FlinkDeploymentGVK = schema.GroupVersionKind{Group: "flink.apache.org", Version: "v1beta1", Kind: "FlinkDeployment"}
	FlinkSessionJobGVK = schema.GroupVersionKind{Group: "flink.apache.org", Version: "v1beta1", Kind: "FlinkSessionJob"}
)

// Event reasons, as the operator names them.
const (
	ReasonSubmit           = "Submit"
	ReasonSpecChanged      = "SpecChanged"
	ReasonSuspended        = "Suspended"
	ReasonScaling          = "Scaling"
	ReasonSavepointError   = "SavepointError"
	ReasonJobStatusChanged = "JobStatusChanged"
	ReasonRollback         = "Rollback"
	ReasonSubmitError      = "SubmitError"
	ReasonValidationError  = "ValidationError"
	// ReasonUnsupportedFlinkVersion is the operator's warning for a session
	// job whose session cluster is missing (its Flink version is null) or
	// runs a Flink older than 1.15.
	ReasonUnsupportedFlinkVersion = "UnsupportedFlinkVersion"
	// ReasonClusterMissing is the fake's own: no simulated cluster (or
	// session job) is registered for the resource.
	ReasonClusterMissing = "ClusterMissing"
)

// Registry finds the simulated Flink job behind a FlinkDeployment (its
// application cluster) or a FlinkSessionJob (its job in a session cluster),
// by the resource's namespace and name.
type Registry interface {
	Get(key types.NamespacedName) (sim.Deployer, bool)
	Register(key types.NamespacedName, d sim.Deployer)
}

// MapRegistry is a Registry safe for concurrent use.
type MapRegistry struct {
	mu sync.RWMutex
	m  map[types.NamespacedName]sim.Deployer
}

// NewRegistry returns an empty MapRegistry.
func NewRegistry() *MapRegistry {
	return &MapRegistry{m: map[types.NamespacedName]sim.Deployer{}}
}

// Get returns the cluster registered for key.
func (r *MapRegistry) Get(key types.NamespacedName) (sim.Deployer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.m[key]
	return d, ok
}

// Register sets the cluster for key (nil removes it).
func (r *MapRegistry) Register(key types.NamespacedName, d sim.Deployer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d == nil {
		delete(r.m, key)
		return
	}
	r.m[key] = d
}

// Canceler is optionally implemented by a sim.Deployer that can cancel its job
// without a savepoint (as the stateless upgrade mode does). Without it, the
// stateless mode cancels through a savepoint trigger with Cancel set and
// ignores the savepoint.
type Canceler interface {
	Cancel(jobID string) error
}

// Aborter is optionally implemented by a sim.Deployer whose job can be
// ended at once, as deleting its cluster does (sim.Job.Abort): the
// operator's last-state upgrade of a job that keeps failing.
type Aborter interface {
	Abort(jobID string) error
}

// Operator reconciles FlinkDeployments and FlinkSessionJobs against
// simulated Flink jobs.
type Operator struct {
	Client client.Client
	// Clusters finds the simulated cluster of each FlinkDeployment with a
	// job (a session cluster needs none).
	Clusters Registry
	// SessionJobs finds the simulated job of each FlinkSessionJob; nil: the
	// operator does not reconcile FlinkSessionJobs (and SetupWithManager
	// does not watch them, so their CRD need not be installed).
	SessionJobs Registry
	// Clock stamps status times and times retries; nil is the real clock.
	Clock clock.PassiveClock
	// Recorder receives the operator's events; nil drops them
	// (SetupWithManager fills it from the manager).
	Recorder record.EventRecorder
	// ResyncInterval is how often (real time) a reconcile is requeued to
	// follow the job and poll savepoints. Default 1s.
	ResyncInterval time.Duration
	// RetryBackoff is the wait, on the Clock, before a spec whose upgrade or
	// deployment failed is tried again; it doubles per consecutive failure
	// up to MaxRetryBackoff. Defaults 30s and 10m.
	RetryBackoff, MaxRetryBackoff time.Duration
	// NewJobID returns the id of each submitted job; default random 32 hex.
	NewJobID func() string

	mu      sync.Mutex
	retries map[retryKey]*retryState
}

// retryKey is a resource: a FlinkDeployment and a FlinkSessionJob may share
// a name.
type retryKey struct {
	kind string
	types.NamespacedName
}

// retryState holds back a spec whose last attempt failed.
type retryState struct {
	spec      string // normalised desired spec, JSON
	failures  int
	notBefore time.Time
}

// requeueNow asks for the next step of a sequence without waiting for the
// resync.
const requeueNow = 10 * time.Millisecond

// SetupWithManager registers the operator with mgr: it watches
// FlinkDeployments (spec changes; status updates are its own), and with
// SessionJobs set FlinkSessionJobs too (spec changes, and any change of the
// session cluster they name), and requeues itself every ResyncInterval. A
// nil Client becomes a client that reads the API server directly, not the
// manager's cache: a step acts on the cluster before it writes the status,
// so it must see the status its predecessor wrote, never a stale copy (which
// would repeat the side effect).
func (o *Operator) SetupWithManager(mgr ctrl.Manager) error {
	if o.Client == nil {
		c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
		if err != nil {
			return err
		}
		o.Client = c
	}
	if o.Recorder == nil {
		o.Recorder = mgr.GetEventRecorderFor("flink-operator")
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(FlinkDeploymentGVK)
	skip := true
	err := ctrl.NewControllerManagedBy(mgr).
		Named("fake-flink-operator").
		For(u, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Tests may start several managers in one process.
		WithOptions(controller.Options{SkipNameValidation: &skip}).
		Complete(o)
	if err != nil || o.SessionJobs == nil {
		return err
	}
	sj := &unstructured.Unstructured{}
	sj.SetGroupVersionKind(FlinkSessionJobGVK)
	cluster := &unstructured.Unstructured{}
	cluster.SetGroupVersionKind(FlinkDeploymentGVK)
	return ctrl.NewControllerManagedBy(mgr).
		Named("fake-flink-operator-sessionjobs").
		For(sj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// The operator's FlinkDeployment event source: a session cluster's
		// change (its JobManager becoming READY) reconciles its jobs.
		Watches(cluster, handler.EnqueueRequestsFromMapFunc(o.sessionJobsOf)).
		WithOptions(controller.Options{SkipNameValidation: &skip}).
		Complete(reconcile.Func(o.ReconcileSessionJob))
}

func (o *Operator) now() time.Time {
	if o.Clock == nil {
		return time.Now()
	}
	return o.Clock.Now()
}

func (o *Operator) resync() time.Duration {
	if o.ResyncInterval > 0 {
		return o.ResyncInterval
	}
	return time.Second
}

func (o *Operator) newJobID() string {
	if o.NewJobID != nil {
		return o.NewJobID()
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Reconcile runs one step of the operator for a FlinkDeployment. Each call
// observes the simulated job, takes at most one step of the state machine
// below, writes the status once (if it changed) and asks to be requeued.
//
//	status (reconciliation, job)         condition                        step → new status
//	no lastReconciledSpec                 —                                Submit (initialSavepointPath) → DEPLOYED, job RECONCILING
//	DEPLOYED, job follows the view        RUNNING                          lastStableSpec := lastReconciledSpec → STABLE
//	DEPLOYED, not yet stable              job FAILED, rollback enabled     → ROLLING_BACK
//	ROLLING_BACK                          —                                Submit lastStableSpec from upgradeSavepointPath → ROLLED_BACK
//	DEPLOYED / ROLLED_BACK                spec diff IGNORE                 lastReconciledSpec := spec (no action)
//	                                      diff SCALE, in place possible    PUT resource requirements, event Scaling → DEPLOYED (same job)
//	                                      diff UPGRADE (or SCALE not       events SpecChanged, Suspended; stop-with-savepoint
//	                                        in place), job RUNNING           (cancel if stateless) → savepointInfo.triggerId
//	                                      job terminal                     → UPGRADING (restore from upgradeSavepointPath)
//	trigger pending                       savepoint IN_PROGRESS            (wait)
//	                                      savepoint failed                 status.error, event SavepointError, backoff; job keeps running
//	                                      savepoint completed              job FINISHED, upgradeSavepointPath → UPGRADING
//	UPGRADING                             —                                Submit (savepoint path, new job id), event Submit
//	                                                                         → DEPLOYED, job RECONCILING
//
// lifecycleState is derived from the result as the operator derives it.
//
// A FlinkDeployment without spec.job is a session cluster (see
// sessionCluster): it needs no simulated cluster in Clusters.
func (o *Operator) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	u, err := o.load(ctx, FlinkDeploymentGVK, req.NamespacedName)
	if u == nil {
		return ctrl.Result{}, err
	}
	r := &run{o: o, ctx: ctx, kind: deploymentKind, key: req.NamespacedName, obj: u, now: o.now()}
	if _, hasJob, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "job"); hasJob {
		d, ok := o.Clusters.Get(req.NamespacedName)
		if !ok {
			o.event(u, corev1.EventTypeWarning, ReasonClusterMissing, "No simulated Flink cluster is registered for %s", req.NamespacedName)
			return ctrl.Result{RequeueAfter: o.resync()}, nil
		}
		r.d = d
	}
	return o.runStep(r)
}

// load reads the resource of kind gvk at key: nil when it is gone (its retry
// state is forgotten) or being deleted.
func (o *Operator) load(ctx context.Context, gvk schema.GroupVersionKind, key types.NamespacedName) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := o.Client.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) {
			o.forget(retryKey{gvk.Kind, key})
			return nil, nil
		}
		return nil, err
	}
	if u.GetDeletionTimestamp() != nil {
		return nil, nil
	}
	return u, nil
}

// runStep takes r's step from the status it reads, writes the status the step
// left, with its lifecycleState, and asks to be requeued.
func (o *Operator) runStep(r *run) (ctrl.Result, error) {
	st, err := ReadStatus(r.obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.st = &st
	res, stepErr := r.step()
	st.LifecycleState = deriveLifecycle(&st)
	if err := o.updateStatus(r.ctx, r.obj, &st); err != nil {
		return ctrl.Result{}, errors.Join(stepErr, err)
	}
	if stepErr != nil {
		log.FromContext(r.ctx).Error(stepErr, "reconcile step failed")
	}
	if res.RequeueAfter == 0 {
		res.RequeueAfter = o.resync()
	}
	return res, nil
}

// updateStatus writes st through the status subresource if it changed. On a
// conflict (the spec moved meanwhile) it re-reads the object and writes the
// same status again: the step's side effects on the cluster have happened
// and must not be repeated.
func (o *Operator) updateStatus(ctx context.Context, u *unstructured.Unstructured, st *Status) error {
	before, _, _ := unstructured.NestedMap(u.Object, "status")
	if err := writeStatus(u, st); err != nil {
		return err
	}
	after, _, _ := unstructured.NestedMap(u.Object, "status")
	if reflect.DeepEqual(before, after) {
		return nil
	}
	var err error
	for range 5 {
		if err = o.Client.Status().Update(ctx, u); err == nil || !apierrors.IsConflict(err) {
			return err
		}
		fresh := &unstructured.Unstructured{}
		fresh.SetGroupVersionKind(u.GroupVersionKind())
		if gerr := o.Client.Get(ctx, client.ObjectKeyFromObject(u), fresh); gerr != nil {
			return gerr
		}
		if werr := writeStatus(fresh, st); werr != nil {
			return werr
		}
		u = fresh
	}
	return err
}

func (o *Operator) event(obj runtime.Object, typ, reason, format string, args ...any) {
	if o.Recorder != nil {
		o.Recorder.Eventf(obj, typ, reason, format, args...)
	}
}

func (o *Operator) forget(key retryKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.retries, key)
}

// heldBack reports whether spec failed recently and its backoff is not over.
func (o *Operator) heldBack(key retryKey, spec string, now time.Time) (bool, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.retries[key]
	if r == nil || r.spec != spec || !now.Before(r.notBefore) {
		return false, time.Time{}
	}
	return true, r.notBefore
}

// failed records a failed attempt at spec and returns when it may be retried.
func (o *Operator) failed(key retryKey, spec string, now time.Time) time.Time {
	base, limit := o.RetryBackoff, o.MaxRetryBackoff
	if base <= 0 {
		base = 30 * time.Second
	}
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.retries == nil {
		o.retries = map[retryKey]*retryState{}
	}
	r := o.retries[key]
	if r == nil || r.spec != spec {
		r = &retryState{spec: spec}
		o.retries[key] = r
	}
	r.failures++
	wait := base
	for i := 1; i < r.failures && wait < limit; i++ {
		wait *= 2
	}
	r.notBefore = now.Add(min(wait, limit))
	return r.notBefore
}

func (o *Operator) succeeded(key retryKey) { o.forget(key) }

// resourceKind is what the state machine needs to know of the kind it runs.
type resourceKind struct {
	gvk schema.GroupVersionKind
	// session: a FlinkSessionJob, a job in a session cluster. Its spec's
	// cluster fields come from the cluster (parseSessionJobSpec); its
	// status has no JobManager or TaskManager fields (they are the
	// cluster's); its job is submitted to running TaskManagers; and a job
	// stopped at once (stop-with-savepoint, or nothing left to stop) loses
	// its id, as the operator's cancelSessionJob clears it.
	session bool
}

var (
	deploymentKind = resourceKind{gvk: FlinkDeploymentGVK}
	sessionJobKind = resourceKind{gvk: FlinkSessionJobGVK, session: true}
)

// run is one reconcile of one FlinkDeployment or FlinkSessionJob.
type run struct {
	o    *Operator
	ctx  context.Context
	kind resourceKind
	key  types.NamespacedName
	obj  *unstructured.Unstructured
	// d is the simulated job; nil for a session cluster, which has none.
	d   sim.Deployer
	st  *Status
	now time.Time
	// cluster is a session job's session cluster (a FlinkDeployment).
	cluster *unstructured.Unstructured

	view sim.View
}

func (r *run) ms() int64 { return r.now.UnixMilli() }

func (r *run) retryKey() retryKey { return retryKey{r.kind.gvk.Kind, r.key} }

// parse reads a spec of the run's resource (the desired one, or one recorded
// in the status) as the job it deploys.
func (r *run) parse(spec map[string]any) (*deploymentSpec, error) {
	if r.kind.session {
		return parseSessionJobSpec(spec, r.cluster)
	}
	return parseSpec(spec)
}

// ready reports whether the job may be observed and reconciled: always for a
// FlinkDeployment; for a session job once its cluster's JobManager is READY
// (the operator's SessionJobReconciler.readyToReconcile, and its session job
// context, which has no Flink service before).
func (r *run) ready() bool {
	if !r.kind.session {
		return true
	}
	if r.cluster == nil {
		return false
	}
	jm, _, _ := unstructured.NestedString(r.cluster.Object, "status", "jobManagerDeploymentStatus")
	return jm == JMReady
}

// submitted records sub, just submitted with job id id, in the status: the
// job RECONCILING, and for a FlinkDeployment its JobManager deploying and its
// TaskManagers.
func (r *run) submitted(id string, sub sim.Submission) {
	after := r.d.View()
	if after.Job.ID != "" {
		id = after.Job.ID // a simulator that picks its own id
	}
	js := &r.st.JobStatus
	js.JobID, js.JobName, js.State, js.StartTime = id, after.Job.Name, StateReconciling, ""
	js.UpdateTime = strconv.FormatInt(r.ms(), 10)
	if !r.kind.session {
		r.st.JobManagerDeploymentStatus = JMDeploying
		r.setTaskManagers(sub.TaskManagers)
	}
	r.st.Error = ""
}

// setTaskManagers sets a FlinkDeployment's status.taskManager (the scale
// subresource's status); a session job has none.
func (r *run) setTaskManagers(n int) {
	if r.kind.session {
		return
	}
	r.st.TaskManager = &TaskManagerStatus{Replicas: int32(n), LabelSelector: "component=taskmanager,app=" + r.obj.GetName()}
}

// stoppedAtOnce records a job stopped at once (stop-with-savepoint done, or
// nothing left to stop): a session job is FINISHED and its id cleared, as
// the operator's cancelSessionJob leaves it; a FlinkDeployment keeps its
// job's id until the next submission.
func (r *run) stoppedAtOnce() {
	if r.kind.session {
		r.st.JobStatus.JobID = ""
		r.st.JobStatus.State = StateFinished
	}
}

func (r *run) event(typ, reason, format string, args ...any) {
	r.o.event(r.obj, typ, reason, format, args...)
}

func (r *run) step() (ctrl.Result, error) {
	specMap, _, err := unstructured.NestedMap(r.obj.Object, "spec")
	if err != nil {
		return ctrl.Result{}, err
	}
	desired, verr := r.parseDesired(specMap)
	if r.d != nil {
		r.view = r.d.View()
	}
	rs := &r.st.ReconciliationStatus

	if verr != nil {
		r.observe()
		msg := "Invalid spec: " + verr.Error()
		if r.st.Error != msg {
			r.event(corev1.EventTypeWarning, ReasonValidationError, "%s", msg)
		}
		r.st.Error = msg
		return ctrl.Result{}, nil
	}
	if !desired.hasJob {
		return r.sessionCluster(desired)
	}
	if !r.ready() {
		// A session job waits for its cluster: nothing is observed or done.
		return ctrl.Result{}, nil
	}
	if rs.LastReconciledSpec == "" {
		return r.deploy(desired, desired.initialSavepoint, true)
	}
	last, err := ParseReconciledSpec(rs.LastReconciledSpec)
	if err != nil {
		r.st.Error = err.Error()
		return ctrl.Result{}, err
	}

	// Sequences in flight.
	if r.pendingTrigger() {
		r.observe()
		return r.pollSavepoint(desired)
	}
	switch rs.State {
	case ReconUpgrading:
		return r.restore(desired, last)
	case ReconRollingBack:
		return r.rollback()
	}

	r.observe()
	if rs.State == ReconDeployed && r.st.JobStatus.State == StateFailed &&
		rs.LastStableSpec != "" && rs.LastStableSpec != rs.LastReconciledSpec && desired.rollbackEnabled() {
		rs.State = ReconRollingBack
		rs.ReconciliationTimestamp = r.ms()
		r.event(corev1.EventTypeWarning, ReasonRollback, "Job %s failed before the new spec became stable; rolling back to the last stable spec", r.st.JobStatus.JobID)
		return ctrl.Result{RequeueAfter: requeueNow}, nil
	}

	typ, changes := specDiff(last.Spec, desired.raw, desired.mode)
	switch typ {
	case diffNone:
		// Nothing to do and the job runs its stable spec: an error left by
		// an earlier attempt (a failed upgrade whose spec was reverted) is
		// over, as the operator clears it on a successful reconcile.
		if r.st.Error != "" && r.st.JobStatus.State == StateRunning && rs.LastStableSpec == rs.LastReconciledSpec {
			r.st.Error = ""
		}
		// The spec is what runs: this generation is reconciled.
		r.st.ObservedGeneration = r.obj.GetGeneration()
		return ctrl.Result{}, nil
	case diffIgnore:
		// Nothing to deploy: record the spec as reconciled (and as stable if
		// the running one was).
		wasStable := rs.LastStableSpec == rs.LastReconciledSpec
		rs.LastReconciledSpec = reconciledSpecJSON(desired.raw, r.obj.GetGeneration(), false)
		if wasStable {
			rs.LastStableSpec = rs.LastReconciledSpec
		}
		r.st.ObservedGeneration = r.obj.GetGeneration()
		return ctrl.Result{}, nil
	}

	specKey := reconciledSpecJSON(desired.raw, 0, false)
	if held, until := r.o.heldBack(r.retryKey(), specKey, r.now); held {
		log.FromContext(r.ctx).V(1).Info("spec change held back after a failure", "until", until)
		return ctrl.Result{}, nil
	}
	if last.lastJobState() == JobSuspended {
		// Resuming a suspended job (or changing a suspended one).
		r.event(corev1.EventTypeNormal, ReasonSpecChanged, "%s change(s) detected: %v", typ, changes)
		return r.restore(desired, last)
	}
	if typ == diffScale {
		if why := r.inPlaceBlocker(desired, last); why == "" {
			if err := r.scaleInPlace(desired); err == nil {
				return ctrl.Result{}, nil
			} else {
				changes = append(changes, "in-place scaling failed: "+err.Error())
			}
		} else {
			changes = append(changes, "no in-place scaling: "+why)
		}
	}
	return r.upgrade(desired, typ, changes)
}

// observe follows the deployed job in the sim view: jobStatus, the
// JobManager's readiness, and stability of the reconciled spec.
func (r *run) observe() {
	js := &r.st.JobStatus
	v := r.view.Job
	if js.JobID == "" || v.ID != js.JobID || !r.ready() {
		return
	}
	if v.State != "" && v.State != js.State {
		if js.State != "" {
			r.event(corev1.EventTypeNormal, ReasonJobStatusChanged, "Job status changed from %s to %s", js.State, v.State)
		}
		js.State = v.State
		js.UpdateTime = strconv.FormatInt(r.ms(), 10)
	}
	if v.Name != "" {
		js.JobName = v.Name
	}
	if v.StartTime > 0 {
		js.StartTime = strconv.FormatInt(v.StartTime, 10)
	}
	switch {
	case r.kind.session:
		// The JobManager is the session cluster's.
	case v.State == StateReconciling, v.State == StateInitializing:
		r.st.JobManagerDeploymentStatus = JMDeployedNotReady
	default:
		r.st.JobManagerDeploymentStatus = JMReady
	}
	rs := &r.st.ReconciliationStatus
	if rs.State == ReconDeployed && js.State == StateRunning && rs.LastStableSpec != rs.LastReconciledSpec {
		rs.LastStableSpec = rs.LastReconciledSpec
	}
}

// deploy submits spec as a new job (first deployment, or restore after an
// upgrade) and records it as the reconciled spec.
func (r *run) deploy(spec *deploymentSpec, savepointPath string, first bool) (ctrl.Result, error) {
	rs := &r.st.ReconciliationStatus
	if spec.state == JobSuspended {
		// Nothing to run: the spec is reconciled as suspended.
		rs.State = ReconDeployed
		rs.LastReconciledSpec = reconciledSpecJSON(spec.raw, r.obj.GetGeneration(), first)
		rs.ReconciliationTimestamp = r.ms()
		r.st.ObservedGeneration = r.obj.GetGeneration()
		return ctrl.Result{}, nil
	}
	specKey := reconciledSpecJSON(spec.raw, 0, false)
	if held, _ := r.o.heldBack(r.retryKey(), specKey, r.now); held {
		return ctrl.Result{}, nil
	}
	id := r.o.newJobID()
	sub := r.submission(spec, id, savepointPath)
	r.event(corev1.EventTypeNormal, ReasonSubmit, "Starting deployment")
	if err := r.d.Submit(sub); err != nil {
		until := r.o.failed(r.retryKey(), specKey, r.now)
		r.st.Error = "Submit failed: " + err.Error()
		r.event(corev1.EventTypeWarning, ReasonSubmitError, "%s (retry after %s)", r.st.Error, until.Format(time.RFC3339))
		return ctrl.Result{}, nil
	}
	r.o.succeeded(r.retryKey())
	r.submitted(id, sub)
	rs.State = ReconDeployed
	rs.LastReconciledSpec = reconciledSpecJSON(spec.raw, r.obj.GetGeneration(), first)
	rs.ReconciliationTimestamp = r.ms()
	r.st.ObservedGeneration = r.obj.GetGeneration()
	return ctrl.Result{}, nil
}

// restore finishes an upgrade (or resumes a suspended job): the old job is
// gone, deploy the desired spec from the upgrade savepoint unless the job
// was stopped statelessly.
func (r *run) restore(desired *deploymentSpec, last *ReconciledSpec) (ctrl.Result, error) {
	path := r.st.JobStatus.UpgradeSavepointPath
	if last.lastUpgradeMode() == UpgradeStateless {
		path = ""
	}
	if last.ResourceMetadata.FirstDeployment {
		// Created suspended, never run: this is the first deployment.
		return r.deploy(desired, desired.initialSavepoint, true)
	}
	return r.deploy(desired, path, false)
}

// submission is the sim.Submission of spec as job id, restored from
// savepointPath ("" for none).
func (r *run) submission(spec *deploymentSpec, id, savepointPath string) sim.Submission {
	sub := spec.submission(id, savepointPath, r.view.Job.Vertices)
	sub.Session = r.kind.session
	return sub
}

// rollback redeploys the last stable spec from the upgrade savepoint.
func (r *run) rollback() (ctrl.Result, error) {
	rs := &r.st.ReconciliationStatus
	stable, err := ParseReconciledSpec(rs.LastStableSpec)
	if err != nil {
		return ctrl.Result{}, err
	}
	spec, err := r.parse(stable.Spec)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("last stable spec: %w", err)
	}
	if state := r.view.Job.State; r.view.Job.ID == r.st.JobStatus.JobID && !terminal(state) {
		// Only a failed job is rolled back; wait for it to be terminal.
		return ctrl.Result{}, nil
	}
	id := r.o.newJobID()
	sub := r.submission(spec, id, r.st.JobStatus.UpgradeSavepointPath)
	r.event(corev1.EventTypeNormal, ReasonSubmit, "Starting deployment of the last stable spec (rollback)")
	if err := r.d.Submit(sub); err != nil {
		r.st.Error = "Rollback submit failed: " + err.Error()
		r.event(corev1.EventTypeWarning, ReasonSubmitError, "%s", r.st.Error)
		return ctrl.Result{}, nil
	}
	r.submitted(id, sub)
	rs.State = ReconRolledBack
	rs.ReconciliationTimestamp = r.ms()
	return ctrl.Result{}, nil
}

// inPlaceBlocker says why a SCALE change cannot be applied in place ("" if it
// can): the operator's NativeFlinkService.scale preconditions.
func (r *run) inPlaceBlocker(desired *deploymentSpec, last *ReconciledSpec) string {
	switch {
	case desired.mode == ModeStandalone:
		return "standalone mode"
	case !desired.inPlaceScalingEnabled():
		return KeyInPlaceScaling + " is false"
	case !desired.atLeast(1, 18):
		return "Flink " + desired.flinkVersion + " is older than 1.18"
	case !desired.adaptive():
		return KeyScheduler + " is not adaptive"
	}
	v := r.view.Job
	if v.ID != r.st.JobStatus.JobID || terminal(v.State) || v.State == StateReconciling || v.State == StateInitializing {
		return "job is " + v.State
	}
	lastSpec, err := r.parse(last.Spec)
	if err != nil {
		return err.Error()
	}
	for id := range lastSpec.overrides {
		if _, ok := desired.overrides[id]; !ok {
			return "override of vertex " + id + " removed"
		}
	}
	return ""
}

// scaleInPlace sets each overridden vertex's resource requirements to
// [min(p, current lower bound), p] and records the spec as deployed.
func (r *run) scaleInPlace(desired *deploymentSpec) error {
	jobID := r.st.JobStatus.JobID
	cur, err := r.d.ResourceRequirements(jobID)
	if err != nil {
		return err
	}
	req := maps.Clone(cur)
	for id, p := range desired.overrides {
		b, ok := cur[id]
		if !ok {
			return fmt.Errorf("vertex %s is not in the job's resource requirements", id)
		}
		req[id] = sim.Bounds{LowerBound: min(p, b.LowerBound), UpperBound: p}
	}
	if err := r.d.UpdateResourceRequirements(jobID, req); err != nil {
		return err
	}
	r.event(corev1.EventTypeNormal, ReasonScaling, "In-place scaling triggered")
	rs := &r.st.ReconciliationStatus
	rs.State = ReconDeployed
	rs.LastReconciledSpec = reconciledSpecJSON(desired.raw, r.obj.GetGeneration(), false)
	rs.ReconciliationTimestamp = r.ms()
	r.st.ObservedGeneration = r.obj.GetGeneration()
	r.st.Error = ""
	tms := desired.taskManagerReplicas
	if tms == 0 {
		tms = (desired.maxParallelism(r.view.Job.Vertices) + desired.slots - 1) / desired.slots
	}
	r.setTaskManagers(tms)
	r.o.succeeded(r.retryKey())
	return nil
}

// upgrade starts a savepoint-and-restart (or stateless) upgrade.
func (r *run) upgrade(desired *deploymentSpec, typ diffType, changes []string) (ctrl.Result, error) {
	js := &r.st.JobStatus
	v := r.view.Job
	ours := v.ID != "" && v.ID == js.JobID
	if ours && v.State == "RESTARTING" && v.FailureCause != "" && desired.upgradeMode != UpgradeStateless {
		if a, ok := r.d.(Aborter); ok {
			// A job that keeps failing (it never ran its new spec) cannot
			// take a savepoint: the operator's last-state fallback
			// (kubernetes.operator.job.upgrade.last-state-fallback.enabled)
			// deletes the cluster and restores the new spec from the job's
			// latest checkpoint, else the savepoint it was started from.
			r.event(corev1.EventTypeNormal, ReasonSpecChanged, "%s change(s) detected: %v", typ, changes)
			r.event(corev1.EventTypeNormal, ReasonSuspended, "Job %s is not running (%s): deleting the cluster for a last-state upgrade", js.JobID, v.FailureCause)
			if err := a.Abort(js.JobID); err != nil {
				return r.upgradeFailed(desired, "deleting the cluster: "+err.Error())
			}
			js.State = StateCanceled
			js.UpdateTime = strconv.FormatInt(r.ms(), 10)
			if c := v.Checkpoints.LatestCompleted; c != nil && c.ExternalPath != "" {
				js.UpgradeSavepointPath = c.ExternalPath
			}
			r.stoppedAtOnce()
			r.suspended(desired, UpgradeSavepoint)
			return ctrl.Result{RequeueAfter: requeueNow}, nil
		}
	}
	if ours && !terminal(v.State) && v.State != StateRunning {
		// Savepoints need a running job: wait for it to settle.
		return ctrl.Result{}, nil
	}
	r.event(corev1.EventTypeNormal, ReasonSpecChanged, "%s change(s) detected: %v", typ, changes)
	if !ours || terminal(v.State) {
		// Nothing to stop: restore from the last known savepoint (or the
		// latest checkpoint in last-state mode).
		path := js.UpgradeSavepointPath
		if desired.upgradeMode == UpgradeLastState && ours && v.Checkpoints.LatestCompleted != nil && v.Checkpoints.LatestCompleted.ExternalPath != "" {
			path = v.Checkpoints.LatestCompleted.ExternalPath
		}
		mode := UpgradeSavepoint
		if desired.upgradeMode == UpgradeStateless {
			mode, path = UpgradeStateless, ""
		}
		js.UpgradeSavepointPath = path
		r.stoppedAtOnce()
		r.suspended(desired, mode)
		return ctrl.Result{RequeueAfter: requeueNow}, nil
	}

	r.event(corev1.EventTypeNormal, ReasonSuspended, "Suspending existing deployment")
	// The operator cancels a stateless job; and a last-state session job,
	// which it then restores from its latest checkpoint: a session job has
	// no HA metadata of its own (AbstractJobReconciler.allowLastStateCancel).
	lastStateCancel := r.kind.session && desired.upgradeMode == UpgradeLastState
	if desired.upgradeMode == UpgradeStateless || lastStateCancel {
		if c, ok := r.d.(Canceler); ok {
			if err := c.Cancel(js.JobID); err != nil {
				return r.upgradeFailed(desired, "cancel failed: "+err.Error())
			}
			js.State = StateCanceled
			js.UpdateTime = strconv.FormatInt(r.ms(), 10)
			mode, path := UpgradeStateless, ""
			if lastStateCancel {
				mode, path = UpgradeSavepoint, r.latestCheckpoint()
			}
			js.UpgradeSavepointPath = path
			r.suspended(desired, mode)
			return ctrl.Result{RequeueAfter: requeueNow}, nil
		}
	}
	// Without a plain cancel: a canceling savepoint (its savepoint ignored)
	// for a stateless job, else a stop-with-savepoint, which keeps the state
	// a last-state session job's checkpoint would have kept.
	req := sim.SavepointRequest{
		JobID:           js.JobID,
		TargetDirectory: desired.savepointDir(),
		Stop:            desired.upgradeMode != UpgradeStateless,
		Cancel:          desired.upgradeMode == UpgradeStateless,
		FormatType:      desired.savepointFormat(),
	}
	trigger, err := r.d.TriggerSavepoint(req)
	if err != nil {
		return r.upgradeFailed(desired, err.Error())
	}
	if js.SavepointInfo == nil {
		js.SavepointInfo = &SavepointInfo{}
	}
	js.SavepointInfo.TriggerID = trigger
	js.SavepointInfo.TriggerTimestamp = r.ms()
	js.SavepointInfo.TriggerType = "UPGRADE"
	js.SavepointInfo.FormatType = req.FormatType
	return ctrl.Result{}, nil
}

// latestCheckpoint is what the operator restores a canceled job from: its
// latest completed checkpoint (SnapshotObserver.observeLatestCheckpoint),
// else the last savepoint it knows of (restoreJob), else nothing.
func (r *run) latestCheckpoint() string {
	if c := r.d.View().Job.Checkpoints.LatestCompleted; c != nil && c.ExternalPath != "" {
		return c.ExternalPath
	}
	if si := r.st.JobStatus.SavepointInfo; si != nil && si.LastSavepoint != nil {
		return si.LastSavepoint.Location
	}
	return ""
}

func (r *run) pendingTrigger() bool {
	si := r.st.JobStatus.SavepointInfo
	return si != nil && si.TriggerID != ""
}

// pollSavepoint follows the upgrade's savepoint.
func (r *run) pollSavepoint(desired *deploymentSpec) (ctrl.Result, error) {
	js := &r.st.JobStatus
	si := js.SavepointInfo
	ss, err := r.d.SavepointStatus(js.JobID, si.TriggerID)
	if err != nil {
		return r.upgradeFailed(desired, "savepoint status: "+err.Error())
	}
	if ss.Status != "COMPLETED" {
		return ctrl.Result{}, nil
	}
	if ss.FailureCause != "" {
		return r.upgradeFailed(desired, ss.FailureCause)
	}
	si.TriggerID, si.TriggerTimestamp, si.TriggerType = "", 0, ""
	js.UpdateTime = strconv.FormatInt(r.ms(), 10)
	if desired.upgradeMode == UpgradeStateless {
		// A cancel (by savepoint, for want of a plain cancel): start fresh.
		js.State = StateCanceled
		js.UpgradeSavepointPath = ""
		r.suspended(desired, UpgradeStateless)
		return ctrl.Result{RequeueAfter: requeueNow}, nil
	}
	js.State = StateFinished
	js.UpgradeSavepointPath = ss.Location
	si.LastSavepoint = &Savepoint{Location: ss.Location, TimeStamp: r.ms(), TriggerType: "UPGRADE", FormatType: si.FormatType}
	r.stoppedAtOnce()
	r.suspended(desired, UpgradeSavepoint)
	return ctrl.Result{RequeueAfter: requeueNow}, nil
}

// suspended records the old job as stopped: the desired spec becomes the
// reconciled one with job.state suspended, in state UPGRADING (or DEPLOYED,
// lifecycle SUSPENDED, when the user asked for a suspended job).
func (r *run) suspended(desired *deploymentSpec, mode string) {
	rs := &r.st.ReconciliationStatus
	rs.State = ReconUpgrading
	if desired.state == JobSuspended {
		rs.State = ReconDeployed
	}
	spec := desired.withJob(map[string]any{"state": JobSuspended, "upgradeMode": mode})
	rs.LastReconciledSpec = reconciledSpecJSON(spec, r.obj.GetGeneration(), false)
	rs.ReconciliationTimestamp = r.ms()
	r.st.ObservedGeneration = r.obj.GetGeneration()
	r.st.Error = ""
}

// upgradeFailed gives up on this attempt: the job keeps running its current
// spec, the error is reported, and the same spec is retried only after a
// backoff.
func (r *run) upgradeFailed(desired *deploymentSpec, cause string) (ctrl.Result, error) {
	if si := r.st.JobStatus.SavepointInfo; si != nil {
		si.TriggerID, si.TriggerTimestamp, si.TriggerType = "", 0, ""
	}
	until := r.o.failed(r.retryKey(), reconciledSpecJSON(desired.raw, 0, false), r.now)
	r.st.Error = "Upgrade savepoint failed: " + cause
	r.event(corev1.EventTypeWarning, ReasonSavepointError, "%s (job %s keeps running its current spec; retry after %s)",
		r.st.Error, r.st.JobStatus.JobID, until.Format(time.RFC3339))
	return ctrl.Result{}, nil
}
