package scale

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/shard"
)

// leaseNamespace holds the shard Leases of a run with several replicas.
const leaseNamespace = "flinkscale-system"

// replica is one controller replica of a sharded run: its own manager
// (cache, clients), policy reconciler, metric sources, metrics registry
// and shard Leases, as a pod of flinkscale controller --shards N.
type replica struct {
	index int
	src   *sources
	reg   *prometheus.Registry
	// metrics gathers reg and the gauges (controllers.NewGatheredMetrics).
	metrics prometheus.Gatherer
	sm      *shard.Manager
	// dead cuts the replica's connection to the API server (kill).
	dead atomic.Bool
	stop context.CancelFunc
	done chan error
}

// admitGate is a replica's shard gate, noting which reconciles it admitted
// (the others did nothing and are not measured).
type admitGate struct {
	sm       *shard.Manager
	mu       sync.Mutex
	admitted map[types.NamespacedName]bool
}

func (a *admitGate) Enter(k types.NamespacedName) (func(), bool) {
	done, ok := a.sm.Enter(k)
	if ok {
		a.mu.Lock()
		a.admitted[k] = true
		a.mu.Unlock()
	}
	return done, ok
}

// Fence passes the takeover's fence on, as the controller's gate is the
// shard.Manager itself.
func (a *admitGate) Fence(k types.NamespacedName) (alive, fence time.Time) { return a.sm.Fence(k) }

func (a *admitGate) take(k types.NamespacedName) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ok := a.admitted[k]
	delete(a.admitted, k)
	return ok
}

// replicaTimed times a replica's admitted reconciles into the shared log.
type replicaTimed struct {
	r    reconcile.Reconciler
	log  *timed
	gate *admitGate
	idx  int
}

func (t *replicaTimed) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	r, res, err := measure(ctx, t.r, req)
	if t.gate.take(req.NamespacedName) {
		r.replica = t.idx
		t.log.add(r)
	}
	return res, err
}

// startReplicas starts n replicas sharing the fleet through n shard Leases
// (replica i's home is shard i), as flinkscale controller --shards n
// registers itself.
func startReplicas(ctx context.Context, base *rest.Config, scheme *k8sruntime.Scheme, n, concurrency int, flinkTimeout time.Duration,
	vertexDetail bool, log *timed, kube *kubeCounter) ([]*replica, error) {
	c, err := client.New(base, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}}
	if err := c.Create(ctx, ns); err != nil {
		return nil, fmt.Errorf("creating the Lease namespace: %w", err)
	}
	var out []*replica
	for i := range n {
		r := &replica{index: i, src: newSources(flinkTimeout, n), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
		cfg := rest.CopyConfig(base)
		cfg.Wrap(kube.wrap)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripper(func(req *http.Request) (*http.Response, error) {
				if r.dead.Load() {
					return nil, errors.New("replica killed")
				}
				return rt.RoundTrip(req)
			})
		})
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
			Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
			Cache:  cache.Options{DefaultTransform: controllers.TrimManagedFields},
		})
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		lc, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return nil, err
		}
		var m *controllers.Metrics
		m, r.metrics = controllers.NewGatheredMetrics(r.reg, r.reg)
		m.SetVertexDetail(vertexDetail)
		pr := &controllers.PolicyReconciler{Client: mgr.GetClient(), Sources: r.src, PrimeAhead: true,
			StatusRefresh: controllers.DefaultStatusRefresh, Metrics: m}
		r.sm, err = shard.New(shard.Options{
			Shards: n, Identity: fmt.Sprintf("flinkscale-%d", i), Namespace: leaseNamespace, Prefix: "flinkscale",
			Client: lc, Reader: mgr.GetCache(), Log: logr.Discard(),
			OnRelease: func(s int) { pr.ForgetWhere(func(k types.NamespacedName) bool { return shard.Of(k, n) == s }) },
		})
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(r.sm); err != nil {
			return nil, err
		}
		gate := &admitGate{sm: r.sm, admitted: map[types.NamespacedName]bool{}}
		pr.Shards = gate
		if err := pr.SetupWithManager(mgr, controllers.Options{
			MaxConcurrentReconciles: concurrency, SkipNameValidation: true,
			Wake: r.sm.Watch(func() client.ObjectList { return &v1alpha1.FlinkScalingPolicyList{} }),
			Wrap: func(rec reconcile.Reconciler) reconcile.Reconciler {
				return &replicaTimed{r: rec, log: log, gate: gate, idx: i}
			},
		}); err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		mctx, stop := context.WithCancel(ctx)
		r.stop = stop
		go func() {
			r.done <- mgr.Start(mctx)
			close(r.done)
		}()
		out = append(out, r)
	}
	return out, nil
}

// kill stops a replica as a crashed pod stops: its connection to the API
// server is cut first, so it neither renews nor releases its Leases, and
// the others take its shards when they expire.
func (r *replica) kill() {
	r.dead.Store(true)
	r.stop()
}

// shardReport measures the replicas' split of the steady period
// [from, to], and with a kill at killedAt the takeover of orphans (the
// policies of the shards the killed replica held).
func shardReport(log *timed, replicas int, interval time.Duration, from, to time.Time, killedAt time.Time, orphanShards []int) *Shards {
	rep := &Shards{Replicas: replicas, ReconcilesByReplica: make([]int, replicas)}
	runs := log.all()
	byKey := map[types.NamespacedName][]run{}
	for _, r := range runs {
		byKey[r.key] = append(byKey[r.key], r)
		start := r.end.Add(-r.d)
		if !r.primed && !start.Before(from) && !r.end.After(to) {
			rep.ReconcilesByReplica[r.replica]++
		}
	}
	var gaps []time.Duration
	var firstTakeover time.Duration = -1
	for key, rs := range byKey {
		slices.SortFunc(rs, func(a, b run) int { return a.end.Add(-a.d).Compare(b.end.Add(-b.d)) })
		var lastDeciding *run
		for i := range rs {
			r := &rs[i]
			if i > 0 && rs[i-1].replica != r.replica && r.end.Add(-r.d).Before(rs[i-1].end) {
				rep.Overlapping++
			}
			if r.primed {
				continue
			}
			if lastDeciding != nil && lastDeciding.replica != r.replica &&
				r.end.Add(-r.d).Sub(lastDeciding.end.Add(-lastDeciding.d)) < interval/2 {
				rep.DoublePolls++
			}
			lastDeciding = r
		}
		if killedAt.IsZero() || !slices.Contains(orphanShards, shard.Of(key, replicas)) {
			continue
		}
		rep.Orphans++
		// The takeover: the first reconcile after the kill, of any kind
		// (admitted: the shard is held). The gap: between the orphan's
		// polls, its last deciding reconcile before the kill and its first
		// after (not one that only primed or waited for the slot).
		var before, after *run
		for i := range rs {
			start := rs[i].end.Add(-rs[i].d)
			if start.After(killedAt) {
				if d := start.Sub(killedAt); firstTakeover < 0 || d < firstTakeover {
					firstTakeover = d
				}
			}
			if rs[i].primed {
				continue
			}
			if !start.After(killedAt) {
				before = &rs[i]
			} else if after == nil {
				after = &rs[i]
			}
		}
		if after == nil {
			rep.Dropped++
			continue
		}
		if before != nil {
			gaps = append(gaps, after.end.Add(-after.d).Sub(before.end.Add(-before.d)))
		}
	}
	if !killedAt.IsZero() {
		rep.KilledAtS = killedAt.Sub(from).Seconds()
		rep.FirstTakeover = firstTakeover.Seconds()
		rep.TakeoverGap = latency(gaps)
	}
	return rep
}
