package controllers_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/eventlog"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim"
)

// The tests share one control plane and isolate themselves by namespace.
func TestMain(m *testing.M) { envtest.Main(m) }

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// world is one simulated Flink job behind its real REST API, a kfake Kafka
// cluster, the fake Flink operator and the flinkscale controller, all on a
// real API server, driven in virtual time: each reconciler runs when the
// delay it asked for has passed on the simulator's clock, as a manager would
// run it in real time.
type world struct {
	t   *testing.T
	ctx context.Context
	// reg holds the controller's metrics (each controller of the world
	// records into the same ones, as a restarted process's would start
	// over: tests that restart read them accordingly).
	reg     *prometheus.Registry
	metrics *controllers.Metrics
	env     *envtest.Env
	c       client.Client
	ns      string
	live    *fixtures.LiveJob // the job, its Kafka and REST API, its load
	job     *sim.Job          // live.Job
	clock   *clocktesting.FakeClock

	op    *fakeoperator.Operator
	ctl   *controllers.PolicyReconciler
	rec   *eventLog
	fdKey types.NamespacedName
	pKey  types.NamespacedName

	flinkTimeout time.Duration
	nextOp       time.Time
	nextFS       time.Time
	// queueDelay is added to every requeue: the time a request spends in
	// the queue of a controller with a backlog.
	queueDelay time.Duration
}

type worldOptions struct {
	upgradeMode string
	mode        v1alpha1.Mode
	// client wraps the controller's client (to inject concurrent edits).
	client func(client.Client) client.Client
	policy func(*v1alpha1.FlinkScalingPolicy)
	// conf adds flinkConfiguration entries to the deployment.
	conf map[string]any
	// rest wraps the simulated Flink REST API (to inject faults).
	rest func(http.Handler) http.Handler
	// flinkTimeout bounds the controller's Flink requests (real time;
	// default 5 s).
	flinkTimeout time.Duration
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	if o.upgradeMode == "" {
		o.upgradeMode = target.UpgradeSavepoint
	}
	if o.mode == "" {
		o.mode = v1alpha1.ModeApply
	}
	env, c := fixtures.StartEnv(t)
	w := &world{t: t, ctx: context.Background(), env: env, c: c, ns: env.CreateNamespace(t, "scale")}
	w.fdKey = types.NamespacedName{Namespace: w.ns, Name: "orders"}
	w.pKey = types.NamespacedName{Namespace: w.ns, Name: "orders"}

	spec := fixtures.OrdersJob()
	if o.conf["jobmanager.scheduler"] == "adaptive" {
		spec.Scheduler = "adaptive" // the simulated cluster runs what the deployment configures
	}
	w.live = fixtures.StartLive(t, spec, fixtures.LiveOptions{Start: t0, Seed: 7, Rate: 1500, WrapREST: o.rest})
	j := w.live.Job
	w.job = j
	w.clock = clocktesting.NewFakeClock(t0)

	w.rec = &eventLog{}
	reg := fakeoperator.NewRegistry()
	reg.Register(w.fdKey, j)
	var seq atomic.Int64
	w.op = &fakeoperator.Operator{
		Client: c, Clusters: reg, Clock: w.clock, Recorder: w.rec,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0xb0+seq.Add(1)) },
	}
	w.reg = prometheus.NewRegistry()
	w.metrics = controllers.NewMetrics(w.reg)
	w.flinkTimeout = cmp.Or(o.flinkTimeout, 5*time.Second)
	w.ctl = w.newController(o.client)

	fd := envtest.NewFlinkDeployment(w.ns, w.fdKey.Name)
	fdSpec := fixtures.OrdersDeploymentSpec(o.upgradeMode)
	for k, v := range o.conf {
		fdSpec["flinkConfiguration"].(map[string]any)[k] = v
	}
	require.NoError(t, unstructured.SetNestedField(fd.Object, fdSpec, "spec"))
	require.NoError(t, c.Create(w.ctx, fd))

	pol := &v1alpha1.FlinkScalingPolicy{}
	pol.Namespace, pol.Name = w.pKey.Namespace, w.pKey.Name
	pol.Spec = v1alpha1.FlinkScalingPolicySpec{
		TargetRef: v1alpha1.TargetRef{Name: w.fdKey.Name},
		Mode:      o.mode,
		Triggers: &v1alpha1.Triggers{
			Kafka:        []v1alpha1.KafkaTrigger{{Name: "orders", BootstrapServers: w.live.Kafka.Addrs(), ConsumerGroup: "orders", Topics: []string{"orders"}}},
			FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: w.live.REST.URL}},
		},
	}
	if o.policy != nil {
		o.policy(pol)
	}
	require.NoError(t, c.Create(w.ctx, pol))
	return w
}

// newController builds a controller as a fresh process would: nothing in
// memory, everything from the API server.
func (w *world) newController(wrap func(client.Client) client.Client) *controllers.PolicyReconciler {
	c := w.c
	if wrap != nil {
		c = wrap(c)
	}
	return &controllers.PolicyReconciler{
		Client:   c,
		Recorder: w.rec,
		Sources: &controllers.ClientSources{Reader: w.c, Now: w.job.Now, Timeout: w.flinkTimeout,
			// The metric fetcher is primed on the job's clock, without
			// waiting: the clock stands still during a reconcile and the
			// simulated fetch lands at once.
			FlinkOpts: []flink.CollectorOption{flink.WithClock(w.job.Now),
				flink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() })}},
		Clock:        w.clock,
		FixedRequeue: true,
		Metrics:      w.metrics,
		// As flinkscale controller runs.
		StatusRefresh: controllers.DefaultStatusRefresh,
	}
}

// metric is the value of the series of name whose labels include these
// (name=value pairs), summed over matching series; histograms give their
// sample count. Missing: -1.
func (w *world) metric(name string, labels ...string) float64 {
	w.t.Helper()
	v, err := fixtures.Metric(w.reg, name, labels...)
	require.NoError(w.t, err)
	return v
}

// run advances the world by d: the simulator second by second, the operator
// every 2 s (its resync), the controller when its requeue is due.
func (w *world) run(d time.Duration) {
	w.t.Helper()
	r := &replica{ctl: w.ctl, next: w.nextFS}
	w.runReplicas(d, r)
	w.nextFS = r.next
}

// replica is one controller process of a world that runs several.
type replica struct {
	ctl  *controllers.PolicyReconciler
	next time.Time
}

// runReplicas advances the world by d as run does, with every replica
// reconciling the policy when its own requeue is due (in order, within a
// second: interleavings inside a reconcile are the hooks' to make).
func (w *world) runReplicas(d time.Duration, rs ...*replica) {
	w.t.Helper()
	end := w.job.Now().Add(d)
	for w.job.Now().Before(end) {
		require.NoError(w.t, w.job.Advance(time.Second))
		now := w.job.Now()
		w.clock.SetTime(now)
		if !now.Before(w.nextOp) {
			_, err := w.op.Reconcile(w.ctx, ctrl.Request{NamespacedName: w.fdKey})
			require.NoError(w.t, err)
			w.nextOp = now.Add(2 * time.Second)
		}
		for i, r := range rs {
			if now.Before(r.next) {
				continue
			}
			res, err := r.ctl.Reconcile(w.ctx, ctrl.Request{NamespacedName: w.pKey})
			next := 30 * time.Second
			if err != nil {
				w.t.Logf("%s replica %d: %v", now.Format(time.TimeOnly), i, err)
				next = time.Second
			} else if res.RequeueAfter > 0 {
				next = res.RequeueAfter
			}
			r.next = now.Add(next + w.queueDelay)
		}
	}
}

// until runs until done holds, for at most max.
func (w *world) until(what string, max time.Duration, done func() bool) {
	w.t.Helper()
	end := w.job.Now().Add(max)
	for !done() {
		if !w.job.Now().Before(end) {
			w.t.Fatalf("%s: not within %s; policy status: %+v", what, max, w.policy().Status)
		}
		w.run(5 * time.Second)
	}
}

func (w *world) policy() *v1alpha1.FlinkScalingPolicy {
	w.t.Helper()
	var p v1alpha1.FlinkScalingPolicy
	require.NoError(w.t, w.c.Get(w.ctx, w.pKey, &p))
	return &p
}

func (w *world) deployment() *unstructured.Unstructured {
	w.t.Helper()
	u := target.New()
	require.NoError(w.t, w.c.Get(w.ctx, w.fdKey, u))
	return u
}

func (w *world) read() *target.Deployment {
	w.t.Helper()
	d, err := target.Read(w.deployment())
	require.NoError(w.t, err)
	return d
}

// running is the parallelism the simulated job runs, by vertex name.
func (w *world) running() map[string]int { return parallelism(w.job) }

// parallelism is the parallelism a simulated job runs, by vertex name.
func parallelism(j *sim.Job) map[string]int {
	out := map[string]int{}
	for _, v := range j.View().Job.Vertices {
		out[v.Name] = v.Parallelism
	}
	return out
}

// reconcileDue reconciles the policy key with ctl when *next is due at
// now, and sets *next to when it asked to be requeued (30 s without a
// requeue, 1 s after an error), as a manager would.
func reconcileDue(t *testing.T, ctx context.Context, ctl *controllers.PolicyReconciler, key types.NamespacedName, now time.Time, next *time.Time) {
	t.Helper()
	if now.Before(*next) {
		return
	}
	res, err := ctl.Reconcile(ctx, ctrl.Request{NamespacedName: key})
	wait := 30 * time.Second
	if err != nil {
		t.Logf("%s: %v", now.Format(time.TimeOnly), err)
		wait = time.Second
	} else if res.RequeueAfter > 0 {
		wait = res.RequeueAfter
	}
	*next = now.Add(wait)
}

func (w *world) vertexID(name string) string {
	w.t.Helper()
	id, ok := w.job.VertexID(name)
	require.True(w.t, ok, name)
	return id
}

// rescales are the policy's recorded rescales.
func (w *world) rescales() []v1alpha1.RescaleRecordStatus {
	if h := w.policy().Status.History; h != nil {
		return h.Rescales
	}
	return nil
}

// eventLog records the controller's and the operator's events for
// assertions.
type eventLog struct{ eventlog.Log }

// count is how many events of reason went to objects of kind.
func (l *eventLog) count(kind, reason string) int { return l.Count(kind, reason) }

func (l *eventLog) dump() string { return l.String() }

var _ = corev1.EventTypeNormal
