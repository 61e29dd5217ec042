// Package controllers holds flinkscale's controller-runtime reconcilers. The
// PolicyReconciler runs one FlinkScalingPolicy per reconcile: load the policy
// and its FlinkDeployment, collect metrics, decide (scaling.Decide), act
// (server-side apply of the plan), and patch the status once. The opt-in
// reconciler, which turns annotated FlinkDeployments into policies, is in
// controllers/optin; the pure reading of FlinkDeployments in
// controllers/target; excluded periods in controllers/schedule.
package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/metrics"
)

// FieldManager is the server-side apply field manager flinkscale writes
// FlinkDeployments with: `kubectl get fdep -o yaml --show-managed-fields`
// shows exactly which fields it owns.
const FieldManager = "flinkscale"

// Event reasons (on the policy and on the FlinkDeployment).
const (
	EventScalingRecommended = "ScalingRecommended"
	EventRescaleStarted     = "RescaleStarted"
	EventRescaleCompleted   = "RescaleCompleted"
	EventRescaleFailed      = "RescaleFailed"
	EventScalingLimited     = "ScalingLimited"
	EventRescaleBlocked     = "RescaleBlocked"
	EventMetricsFailed      = "MetricsFailed"
)

// Defaults of the reconciler's knobs.
const (
	DefaultRescaleTimeout    = 15 * time.Minute
	DefaultRescaleBackoff    = 10 * time.Minute
	DefaultMaxRescaleBackoff = 2 * time.Hour
	// DefaultTrackInterval is the most a rescale in progress waits between
	// two looks (the polling interval when that is shorter): downtime is
	// measured to this resolution.
	DefaultTrackInterval = 5 * time.Second
)

// PolicyReconciler reconciles FlinkScalingPolicy resources.
type PolicyReconciler struct {
	Client client.Client
	// Recorder receives events; nil drops them.
	Recorder record.EventRecorder
	// Sources opens the metric sources (required; see ClientSources).
	Sources Sources
	// APIReader reads the objects the controller does not watch: the
	// Deployments of clusters without the operator (nil: Client). The
	// manager's uncached reader keeps it from watching every Deployment.
	APIReader client.Reader
	// Clock stamps samples, decisions and rescales; nil is the real clock.
	// Requeue delays are always real time.
	Clock clock.PassiveClock
	// RescaleTimeout fails a rescale that has not completed after this
	// long (default DefaultRescaleTimeout; the predicted downtime is added).
	RescaleTimeout time.Duration
	// RescaleBackoff is the wait after a failed rescale before the next may
	// start; it doubles per consecutive failure up to MaxRescaleBackoff.
	RescaleBackoff, MaxRescaleBackoff time.Duration
	// TrackInterval bounds the requeue while a rescale is in progress.
	TrackInterval time.Duration
	// PrimeAhead frees the worker while Flink's metric fetcher refreshes:
	// a poll that must prime it (flink.Collector) sends the priming
	// request, requeues the policy after the fetcher's wait (1 s) and
	// collects then, instead of sleeping through the wait in the worker.
	// At 30 s polling a worker that sleeps serves at most 30 jobs; the
	// controller command sets it. Harnesses on a virtual clock leave it
	// off: their collectors never wait.
	PrimeAhead bool
	// FixedRequeue requeues a policy exactly a polling interval after each
	// poll (less the priming's wait), without backoff jitter or a
	// takeover's wait, for harnesses that count polls on a virtual clock.
	// Otherwise each policy's polls land on slots of its own (cadence.go).
	FixedRequeue bool
	// StatusRefresh, when positive, lets a poll whose status changed only
	// in what can wait (the decision's time and numbers, the lag, one more
	// history entry equal to the last) skip the write, up to this long
	// after the decision last written; a material change is written at
	// once (statuswrite.go). 0 writes every change. flinkscale controller
	// sets DefaultStatusRefresh.
	StatusRefresh time.Duration
	// Metrics records the flinkscale_* Prometheus metrics; nil records
	// none (SetupWithManager sets DefaultMetrics).
	Metrics *Metrics
	// Shards, when set, admits only the policies of the shards this
	// replica holds now (a shard.Manager): the others return at once,
	// untouched. Nil reconciles every policy (one replica, or
	// --shard-selector).
	Shards ShardGate

	mu     sync.Mutex
	states map[types.NamespacedName]*policyState
}

// policyState is what one policy keeps in memory between reconciles: the
// metric window (lost on restart: the next leader refills it) and what was
// last announced, for de-duplicating events.
type policyState struct {
	mu            sync.Mutex
	window        *metrics.Window
	windowLength  time.Duration
	announced     string // recommendation last announced by ScalingRecommended
	limited       bool   // a ScalingLimited event was sent for the current limit
	blocked       string // the blocker last announced by RescaleBlocked
	metricsFailed bool
	// collectFailures counts consecutive failed collections (backoff).
	collectFailures int
	// primeWait is the wait of the latest poll that primed Flink's metric
	// fetcher ahead (PrimeAhead): the next poll is due that much sooner.
	primeWait time.Duration
	// continued: this replica's first reconcile of the policy went on (a
	// shard's takeover waits for the policy's slot first: takeoverWait).
	continued bool
	// unwritten are the recommendations of polls whose status write was
	// skipped (StatusRefresh), newest last; written with the next write.
	unwritten []v1alpha1.RecommendationRunStatus
	reportKey string    // the recommendation the DryRun report holds
	reportAt  time.Time // when it was written
	// metricsFor is the deployment the policy's series are labeled with
	// ("" before the first cycle).
	metricsFor string
}

func (r *PolicyReconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func (r *PolicyReconciler) state(key types.NamespacedName) *policyState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.states == nil {
		r.states = map[types.NamespacedName]*policyState{}
	}
	s := r.states[key]
	if s == nil {
		s = &policyState{}
		r.states[key] = s
	}
	return s
}

func (r *PolicyReconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.states, key)
	r.mu.Unlock()
	r.Metrics.forget(key.Namespace, key.Name)
	if r.Sources != nil {
		r.Sources.Forget(key)
	}
}

// ForgetWhere forgets the in-memory state, metric sources and series of
// the policies match selects (those of a shard this replica no longer
// holds): their new owner exports them.
func (r *PolicyReconciler) ForgetWhere(match func(types.NamespacedName) bool) {
	r.mu.Lock()
	var keys []types.NamespacedName
	for k := range r.states {
		if match(k) {
			keys = append(keys, k)
		}
	}
	r.mu.Unlock()
	for _, k := range keys {
		r.forget(k)
	}
}

// Reconcile runs one cycle for one policy: load, collect, decide, act and
// patch the status once. See run for the steps.
func (r *PolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.Shards != nil {
		done, ok := r.Shards.Enter(req.NamespacedName)
		if !ok {
			return ctrl.Result{}, nil // another replica's shard
		}
		defer done()
	}
	var pol v1alpha1.FlinkScalingPolicy
	if err := r.Client.Get(ctx, req.NamespacedName, &pol); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading FlinkScalingPolicy %s: %w", req.NamespacedName, err)
	}
	if pol.DeletionTimestamp != nil {
		// Fields handed over before the policy goes: the job keeps its
		// parallelism, and nobody conflicts with flinkscale afterwards.
		if err := r.finalize(ctx, &pol); err != nil {
			return ctrl.Result{}, fmt.Errorf("releasing FlinkScalingPolicy %s: %w", req.NamespacedName, err)
		}
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if err := r.ensureFinalizer(ctx, &pol); err != nil {
		return ctrl.Result{}, fmt.Errorf("FlinkScalingPolicy %s: %w", req.NamespacedName, err)
	}
	st := r.state(req.NamespacedName)
	st.mu.Lock()
	defer st.mu.Unlock()
	// A shard taken over: the first poll waits for the policy's slot, so
	// that its previous owner's last poll is an interval behind.
	if wait, ok := r.takeoverWait(ctx, req.NamespacedName, pol.Spec.EffectivePollingInterval(), pol.Status.Rescale != nil,
		pol.Generation != pol.Status.ObservedGeneration, st); ok {
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	c := &cycle{r: r, ctx: ctx, log: log.FromContext(ctx), pol: &pol, orig: pol.DeepCopy(), st: st, now: r.now(), pm: r.Metrics.policy(&pol)}
	if st.metricsFor != pol.Spec.TargetRef.Name {
		// New, or retargeted: the series start over under the new label.
		r.Metrics.forget(pol.Namespace, pol.Name)
		c.pm.start()
		st.metricsFor = pol.Spec.TargetRef.Name
	}
	// The cycle decides with every poll's recommendation, those a skipped
	// write left out included (see statuswrite.go).
	pol.Status.History = withUnwritten(pol.Status.History, st.unwritten)
	res := c.run()
	pol.Status.ObservedGeneration = pol.Generation
	// A status that did not change (a poll that only primed the metric
	// fetcher) is not written, nor, with a StatusRefresh, one whose changes
	// can wait (a steady job's new decision time and numbers).
	if !statusWriteDue(&c.orig.Status, &pol.Status, r.StatusRefresh) {
		st.unwritten = unwrittenOf(c.orig.Status.History, pol.Status.History)
	} else {
		if err := r.Client.Status().Patch(ctx, &pol, client.MergeFromWithOptions(c.orig, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsNotFound(err) {
				r.forget(req.NamespacedName)
				return ctrl.Result{}, nil
			}
			// The cycle's side effects are in the status it could not write:
			// run again at once on a fresh read. A rescale is never among them:
			// act writes status.rescale before it patches the FlinkDeployment,
			// and track adopts or drops an intent whose apply did or did not
			// happen (see cycle.persistIntent).
			return ctrl.Result{}, fmt.Errorf("patching status of FlinkScalingPolicy %s: %w", req.NamespacedName, err)
		}
		st.unwritten = nil
	}
	c.commitEvents()
	c.pm.status(&pol)
	return res, nil
}

func (r *PolicyReconciler) trackInterval() time.Duration {
	if r.TrackInterval > 0 {
		return r.TrackInterval
	}
	return DefaultTrackInterval
}

func (r *PolicyReconciler) rescaleTimeout() time.Duration {
	if r.RescaleTimeout > 0 {
		return r.RescaleTimeout
	}
	return DefaultRescaleTimeout
}

// backoff is the wait after n consecutive failed rescales.
func (r *PolicyReconciler) backoff(n int) time.Duration {
	base, limit := r.RescaleBackoff, r.MaxRescaleBackoff
	if base <= 0 {
		base = DefaultRescaleBackoff
	}
	if limit <= 0 {
		limit = DefaultMaxRescaleBackoff
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
