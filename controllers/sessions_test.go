package controllers_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
)

// sessionWorld is a standalone session cluster of the Flink operator (a
// FlinkDeployment without a job, 3 TaskManagers of 2 slots) running two
// FlinkSessionJobs, orders and clicks, each a simulated job with its own
// topic; both share the cluster's slots and its one REST API. The fake
// operator runs the session jobs; flinkscale scales orders.
type sessionWorld struct {
	t       *testing.T
	ctx     context.Context
	c       client.Client
	ns      string
	orders  *fixtures.LiveJob
	clicks  *fixtures.LiveJob
	session *sim.Session
	pool    *sim.Pool
	rest    *httptest.Server
	clock   *clocktesting.FakeClock
	op      *fakeoperator.Operator
	ctl     *controllers.PolicyReconciler
	rec     *eventLog
	pKey    types.NamespacedName
	nextOp  time.Time
	nextCtl time.Time
}

func sessionJobSpec(name string) sim.JobSpec {
	s := fixtures.OrdersJob()
	s.Name, s.ConsumerGroup, s.Scheduler = name, name, "adaptive"
	s.Topics = []sim.TopicSpec{{Name: name, Partitions: 6}}
	s.Vertices[0].Name, s.Vertices[0].Topics = "Source: "+name, []string{name}
	s.Vertices[1].Inputs[0].From = "Source: " + name
	return s
}

func newSessionWorld(t *testing.T) *sessionWorld {
	t.Helper()
	env, c := fixtures.StartEnv(t)
	w := &sessionWorld{t: t, ctx: context.Background(), c: c, ns: env.CreateNamespace(t, "session"), rec: &eventLog{}}
	w.orders = fixtures.StartLive(t, sessionJobSpec("orders"), fixtures.LiveOptions{Start: t0, Seed: 7, Rate: 1500})
	w.clicks = fixtures.StartLive(t, sessionJobSpec("clicks"), fixtures.LiveOptions{Start: t0, Seed: 8, Rate: 1500})
	w.pool = sim.NewPool(3, 2, 10*time.Second)
	w.orders.Job.UsePool(w.pool)
	w.clicks.Job.UsePool(w.pool)
	w.session = &sim.Session{Jobs: []*sim.Job{w.orders.Job, w.clicks.Job}}
	w.rest = httptest.NewServer(flinkrest.NewSessionHandler(w.session.Clusters()))
	t.Cleanup(w.rest.Close)
	w.clock = clocktesting.NewFakeClock(t0)

	jobs := fakeoperator.NewRegistry()
	jobs.Register(types.NamespacedName{Namespace: w.ns, Name: "orders"}, w.orders.Job)
	jobs.Register(types.NamespacedName{Namespace: w.ns, Name: "clicks"}, w.clicks.Job)
	var seq atomic.Int64
	w.op = &fakeoperator.Operator{Client: c, Clusters: fakeoperator.NewRegistry(), SessionJobs: jobs, Clock: w.clock, Recorder: w.rec,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0x5e0+seq.Add(1)) }}

	cluster := envtest.NewFlinkDeployment(w.ns, "shared")
	require.NoError(t, unstructured.SetNestedField(cluster.Object, map[string]any{
		"flinkVersion": "v1_18", "mode": "standalone", "image": "flink:1.18", "serviceAccount": "flink",
		"flinkConfiguration": map[string]any{"taskmanager.numberOfTaskSlots": "2", "state.savepoints.dir": "s3://bucket/savepoints"},
		"jobManager":         map[string]any{"replicas": int64(1), "resource": map[string]any{"cpu": int64(1), "memory": "2048m"}},
		"taskManager":        map[string]any{"replicas": int64(3), "resource": map[string]any{"cpu": int64(2), "memory": "4096m"}},
	}, "spec"))
	require.NoError(t, c.Create(w.ctx, cluster))
	for _, l := range []*fixtures.LiveJob{w.orders, w.clicks} {
		name := l.Job.Spec().Name
		src, _ := l.Job.VertexID("Source: " + name)
		enr, _ := l.Job.VertexID("Enrich -> Sink")
		sj := envtest.NewFlinkSessionJob(w.ns, name)
		require.NoError(t, unstructured.SetNestedField(sj.Object, map[string]any{
			"deploymentName":     "shared",
			"flinkConfiguration": map[string]any{"pipeline.jobvertex-parallelism-overrides": src + ":2," + enr + ":2"},
			"job":                map[string]any{"jarURI": "local:///opt/flink/usrlib/" + name + ".jar", "parallelism": int64(2), "upgradeMode": "savepoint", "state": "running"},
		}, "spec"))
		require.NoError(t, c.Create(w.ctx, sj))
	}

	w.ctl = &controllers.PolicyReconciler{
		Client: c, Recorder: w.rec, Clock: w.clock, FixedRequeue: true, Metrics: controllers.NewMetrics(prometheus.NewRegistry()),
		Sources: &controllers.ClientSources{Reader: c, Now: w.orders.Job.Now, Timeout: 5 * time.Second,
			FlinkOpts: []flink.CollectorOption{flink.WithClock(w.orders.Job.Now),
				flink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() })}},
	}
	pol := &v1alpha1.FlinkScalingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "orders"}}
	pol.Spec = v1alpha1.FlinkScalingPolicySpec{
		TargetRef: v1alpha1.TargetRef{Kind: v1alpha1.KindFlinkSessionJob, Name: "orders"},
		Mode:      v1alpha1.ModeApply,
		Triggers: &v1alpha1.Triggers{
			Kafka:        []v1alpha1.KafkaTrigger{{Name: "orders", BootstrapServers: w.orders.Kafka.Addrs(), ConsumerGroup: "orders", Topics: []string{"orders"}}},
			FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: w.rest.URL}},
		},
	}
	require.NoError(t, c.Create(w.ctx, pol))
	w.pKey = types.NamespacedName{Namespace: w.ns, Name: "orders"}
	return w
}

// run advances both jobs together, the fake operator every 2 s (the
// cluster and both session jobs), the controller when its requeue is due.
func (w *sessionWorld) run(d time.Duration) {
	w.t.Helper()
	end := w.orders.Job.Now().Add(d)
	for w.orders.Job.Now().Before(end) {
		require.NoError(w.t, w.session.Advance(time.Second))
		now := w.orders.Job.Now()
		w.clock.SetTime(now)
		if !now.Before(w.nextOp) {
			_, err := w.op.Reconcile(w.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: w.ns, Name: "shared"}})
			require.NoError(w.t, err)
			for _, name := range []string{"orders", "clicks"} {
				_, err := w.op.ReconcileSessionJob(w.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: w.ns, Name: name}})
				require.NoError(w.t, err)
			}
			w.nextOp = now.Add(2 * time.Second)
		}
		reconcileDue(w.t, w.ctx, w.ctl, w.pKey, now, &w.nextCtl)
	}
}

func (w *sessionWorld) policy() *v1alpha1.FlinkScalingPolicy {
	p := &v1alpha1.FlinkScalingPolicy{}
	require.NoError(w.t, w.c.Get(w.ctx, w.pKey, p))
	return p
}

// Two session jobs share a standalone session cluster of 6 slots, 2 each.
// orders' load triples: alone it would need 6 slots for its keyed vertex,
// but the cluster's TaskManagers cannot grow and clicks holds 2, so the
// plan is held to the 2 orders holds plus the 2 free (ClusterCapacity),
// applied as the operator applies a session job's overrides on a
// standalone session cluster: a savepoint upgrade. clicks never moves.
func TestSessionJobsShareTheirClustersSlots(t *testing.T) {
	w := newSessionWorld(t)
	w.run(12 * time.Minute)
	p := w.policy()
	require.Empty(t, p.Status.History.Rescales, "%+v", p.Status.Conditions)
	assert.Equal(t, v1alpha1.PathOperatorUpgrade, p.Status.RescalePath, p.Status.RescalePathReason)
	total, free := w.pool.Slots()
	assert.Equal(t, 6, total)
	assert.Equal(t, 2, free, "2 slots each, 2 free")
	clicksJob := w.clicks.Job.View().Job.ID
	ordersJob := w.orders.Job.View().Job.ID

	w.orders.SetRate(4500)
	w.run(15 * time.Minute)
	p = w.policy()
	rs := p.Status.History.Rescales
	require.NotEmpty(t, rs, "a rescale\n%s", w.rec.dump())
	assert.Equal(t, scaling.OutcomeSucceeded, rs[0].Outcome, w.rec.dump())
	assert.NotEqual(t, ordersJob, w.orders.Job.View().Job.ID, "a savepoint upgrade runs a new job")
	run := parallelism(w.orders.Job)
	assert.Equal(t, 4, max(run["Source: orders"], run["Enrich -> Sink"]), "the 2 slots orders held and the 2 free: %v", run)
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionLimited)
	require.NotNil(t, c)
	assert.Equal(t, string(scaling.ReasonClusterCapacity), c.Reason, c.Message)

	assert.Equal(t, clicksJob, w.clicks.Job.View().Job.ID, "the other session job was never touched")
	assert.Equal(t, map[string]int{"Source: clicks": 2, "Enrich -> Sink": 2}, parallelism(w.clicks.Job))
	assert.Equal(t, "RUNNING", w.clicks.Job.View().Job.State)

	// flinkscale wrote the session job's overrides only, never the
	// session cluster.
	cluster := envtest.NewFlinkDeployment(w.ns, "shared")
	require.NoError(t, w.c.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: "shared"}, cluster))
	assert.Equal(t, int64(1), cluster.GetGeneration())
	for _, mf := range cluster.GetManagedFields() {
		assert.NotEqual(t, controllers.FieldManager, mf.Manager)
	}

	// Deleting the policy hands the session job's overrides over, values
	// kept, and nothing restarts.
	key := types.NamespacedName{Namespace: w.ns, Name: "orders"}
	sj := envtest.NewFlinkSessionJob(w.ns, "orders")
	require.NoError(t, w.c.Get(w.ctx, key, sj))
	require.ElementsMatch(t, []string{target.FieldOverrides}, managedBy(t, sj, controllers.FieldManager))
	overrides, _, _ := unstructured.NestedString(sj.Object, "spec", "flinkConfiguration", target.KeyOverrides)
	gen, job := sj.GetGeneration(), w.orders.Job.View().Job.ID
	require.NoError(t, w.c.Delete(w.ctx, w.policy()))
	w.run(time.Minute)
	require.True(t, apierrors.IsNotFound(w.c.Get(w.ctx, w.pKey, &v1alpha1.FlinkScalingPolicy{})), "the policy is gone")
	require.NoError(t, w.c.Get(w.ctx, key, sj))
	after, _, _ := unstructured.NestedString(sj.Object, "spec", "flinkConfiguration", target.KeyOverrides)
	assert.Equal(t, overrides, after)
	assert.Equal(t, gen, sj.GetGeneration(), "the spec did not change")
	assert.Empty(t, managedBy(t, sj, controllers.FieldManager))
	assert.ElementsMatch(t, []string{target.FieldOverrides}, managedBy(t, sj, controllers.ReleasedFieldManager))
	assert.Equal(t, job, w.orders.Job.View().Job.ID)
}
