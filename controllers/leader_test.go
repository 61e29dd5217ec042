package controllers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// candidate is one replica of the controller: a manager with leader
// election and its own policy reconciler, whose reconciles are counted.
type candidate struct {
	name       string
	mgr        ctrl.Manager
	reconciles atomic.Int32
	events     *eventLog
	cancel     context.CancelFunc
	done       chan error
}

func (c *candidate) elected() bool {
	select {
	case <-c.mgr.Elected():
		return true
	default:
		return false
	}
}

// Two replicas of the controller, each a manager electing a leader on the
// same Lease, against one API server, with the simulated job running 60×
// faster than the wall clock and the fake operator as a third process. Only
// the leader's reconciler runs; the policy's status is written and a step in
// load is rescaled once. The leader is stopped while the rescale is in
// progress: the other replica takes the Lease within seconds, finishes
// following the rescale from the status alone, and does not rescale again.
func TestLeaderElectionOnlyTheLeaderActs(t *testing.T) {
	const speed = 60.0
	env, c := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "leader")
	key := types.NamespacedName{Namespace: ns, Name: "orders"}
	leaseKey := types.NamespacedName{Namespace: ns, Name: "flinkscale-" + ns}

	live := fixtures.StartLive(t, fixtures.OrdersJob(), fixtures.LiveOptions{Start: t0, Seed: 11, Rate: 1500})
	j, clk := live.Job, live.Clock()
	var applies, statusErrs atomic.Int32

	ctx, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	simDone := make(chan error, 1)
	go func() { simDone <- j.RunRealtime(ctx, speed, 50*time.Millisecond) }()

	// The operator: another process, no election of its own here.
	opMgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: fixtures.Scheme(t), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	require.NoError(t, err)
	reg := fakeoperator.NewRegistry()
	reg.Register(key, j)
	var seq atomic.Int64
	require.NoError(t, (&fakeoperator.Operator{Clusters: reg, Clock: clk, ResyncInterval: 200 * time.Millisecond,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0xd0+seq.Add(1)) }}).SetupWithManager(opMgr))
	opDone := make(chan error, 1)
	go func() { opDone <- opMgr.Start(ctx) }()

	lease, renew, retry := 2*time.Second, 1500*time.Millisecond, 300*time.Millisecond
	start := func(name string) *candidate {
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                        fixtures.Scheme(t),
			Metrics:                       metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress:        "0",
			LeaderElection:                true,
			LeaderElectionID:              leaseKey.Name,
			LeaderElectionNamespace:       ns,
			LeaderElectionReleaseOnCancel: true,
			LeaseDuration:                 &lease,
			RenewDeadline:                 &renew,
			RetryPeriod:                   &retry,
		})
		require.NoError(t, err)
		cd := &candidate{name: name, mgr: mgr, done: make(chan error, 1), events: &eventLog{}}
		pr := &controllers.PolicyReconciler{
			Client:   &countingClient{Client: mgr.GetClient(), applies: &applies, statusErrs: &statusErrs},
			Recorder: cd.events,
			Sources: &controllers.ClientSources{Reader: mgr.GetAPIReader(), Now: j.Now, Timeout: 5 * time.Second,
				FlinkOpts: []flink.CollectorOption{flink.WithClock(j.Now), flink.WithSleep(live.Sleep)}},
			Clock:         clk,
			TrackInterval: 200 * time.Millisecond,
			Metrics:       controllers.NewMetrics(prometheus.NewRegistry()),
		}
		require.NoError(t, pr.SetupWithManager(mgr, controllers.Options{SkipNameValidation: true,
			Wrap: func(r reconcile.Reconciler) reconcile.Reconciler {
				return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
					cd.reconciles.Add(1)
					return r.Reconcile(ctx, req)
				})
			}}))
		mctx, cancel := context.WithCancel(ctx)
		cd.cancel = cancel
		go func() { cd.done <- mgr.Start(mctx) }()
		return cd
	}
	replicas := []*candidate{start("a"), start("b")}

	fd := envtest.NewFlinkDeployment(ns, key.Name)
	require.NoError(t, unstructured.SetNestedField(fd.Object, fixtures.OrdersDeploymentSpec("savepoint"), "spec"))
	require.NoError(t, c.Create(ctx, fd))
	pol := &v1alpha1.FlinkScalingPolicy{}
	pol.Namespace, pol.Name = ns, key.Name
	pol.Spec = v1alpha1.FlinkScalingPolicySpec{
		TargetRef:       v1alpha1.TargetRef{Name: key.Name},
		Mode:            v1alpha1.ModeApply,
		PollingInterval: &metav1.Duration{Duration: time.Second}, // 60 virtual seconds
		Triggers: &v1alpha1.Triggers{
			Kafka:        []v1alpha1.KafkaTrigger{{Name: "orders", BootstrapServers: live.Kafka.Addrs(), ConsumerGroup: "orders", Topics: []string{"orders"}}},
			FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: live.REST.URL}},
		},
	}
	require.NoError(t, c.Create(ctx, pol))

	policy := func() *v1alpha1.FlinkScalingPolicy {
		var p v1alpha1.FlinkScalingPolicy
		require.NoError(t, c.Get(ctx, key, &p))
		return &p
	}
	holder := func() (string, int32) {
		var l coordinationv1.Lease
		if err := c.Get(ctx, leaseKey, &l); err != nil {
			return "", 0
		}
		var id string
		var n int32
		if l.Spec.HolderIdentity != nil {
			id = *l.Spec.HolderIdentity
		}
		if l.Spec.LeaseTransitions != nil {
			n = *l.Spec.LeaseTransitions
		}
		return id, n
	}

	// One leader, and the Lease names it.
	require.Eventually(t, func() bool { return replicas[0].elected() || replicas[1].elected() }, 15*time.Second, 20*time.Millisecond, "a replica is elected")
	leader, follower := replicas[0], replicas[1]
	if !leader.elected() {
		leader, follower = follower, leader
	}
	firstHolder, _ := holder()
	require.NotEmpty(t, firstHolder, "the Lease names its holder")
	t.Logf("replica %s leads as %s", leader.name, firstHolder)

	// The leader writes the status; at the base load it holds.
	require.Eventually(t, func() bool {
		p := policy()
		return p.Status.LastDecision != nil && j.Now().Sub(t0) > 3*time.Minute
	}, 20*time.Second, 50*time.Millisecond, "the leader decides")
	require.Equal(t, "Hold", policy().Status.LastDecision.Action, policy().Status.LastDecision.Summary)
	assert.Positive(t, leader.reconciles.Load())
	assert.Zero(t, follower.reconciles.Load(), "the follower's reconciler never runs")
	assert.False(t, follower.elected())
	gen := func() int64 {
		u := target.New()
		require.NoError(t, c.Get(ctx, key, u))
		return u.GetGeneration()
	}
	gen0 := gen()

	// A step in load: the leader starts a rescale; it is stopped at once.
	stepAfterNextDecision(t, live, 3000, func() *v1alpha1.DecisionStatus { return policy().Status.LastDecision })
	if !assert.Eventually(t, func() bool { return policy().Status.Rescale != nil }, 20*time.Second, 20*time.Millisecond, "a rescale starts") {
		p := policy()
		t.Fatalf("no rescale; conditions %+v\nlast decision %+v", p.Status.Conditions, p.Status.LastDecision)
	}
	phase := policy().Status.Rescale.Phase
	require.Zero(t, follower.reconciles.Load(), "the follower's reconciler never ran while the leader led")
	stopped := time.Now()
	leader.cancel()
	select {
	case err := <-leader.done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("the leader did not stop")
	}
	leaderReconciles := leader.reconciles.Load()
	t.Logf("leader stopped in phase %s after %d reconciles (%s)", phase, leaderReconciles, time.Since(stopped).Round(time.Millisecond))

	// The follower takes the Lease within seconds (the leader released
	// it) and reconciles.
	require.Eventually(t, follower.elected, 5*time.Second, 20*time.Millisecond, "the follower takes over")
	took := time.Since(stopped)
	secondHolder, transitions := holder()
	assert.NotEmpty(t, secondHolder)
	assert.NotEqual(t, firstHolder, secondHolder, "the Lease names the new leader")
	assert.Positive(t, transitions)
	require.Eventually(t, func() bool { return follower.reconciles.Load() > 0 }, 5*time.Second, 20*time.Millisecond, "the new leader reconciles")
	t.Logf("replica %s leads as %s %s after the leader stopped", follower.name, secondHolder, took.Round(time.Millisecond))

	// It follows the rescale to its end, and nothing starts again.
	require.Eventually(t, func() bool {
		p := policy()
		return p.Status.Rescale == nil && p.Status.History != nil && len(p.Status.History.Rescales) > 0
	}, 20*time.Second, 50*time.Millisecond, "the rescale is recorded as finished")
	until := j.Now().Add(6 * time.Minute) // past the cooldown
	require.Eventually(t, func() bool { return j.Now().After(until) }, 20*time.Second, 50*time.Millisecond)

	p := policy()
	dump := leader.events.dump() + follower.events.dump()
	require.Len(t, p.Status.History.Rescales, 1, dump)
	assert.Equal(t, scaling.OutcomeSucceeded, p.Status.History.Rescales[0].Outcome, dump)
	// The generation is the truth: an apply cut off by the leader's stop
	// can reach the API server without its client seeing the answer (and
	// the new leader then adopts it rather than applying again).
	assert.LessOrEqual(t, applies.Load(), int32(1), "at most one apply seen")
	assert.Equal(t, gen0+1, gen(), "the deployment's spec changed once")
	// At most one start announced: by the leader if it lived to send it
	// (events follow the status, so a stop right after the status patch
	// loses it), or by the new leader adopting (or redoing) the rescale the
	// status recorded; the completion by the new leader.
	assert.LessOrEqual(t, leader.events.count(kindPolicy, controllers.EventRescaleStarted)+follower.events.count(kindPolicy, controllers.EventRescaleStarted), 1, dump)
	assert.Zero(t, leader.events.count(kindPolicy, controllers.EventRescaleCompleted), dump)
	assert.Equal(t, 1, follower.events.count(kindPolicy, controllers.EventRescaleCompleted), dump)
	assert.Equal(t, leaderReconciles, leader.reconciles.Load(), "the stopped replica does nothing more")
	assert.Positive(t, follower.reconciles.Load())
	stats := j.Stats()
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag, "no record lost")
	assert.Zero(t, stats.Reprocessed)

	cancelAll()
	for _, ch := range []chan error{follower.done, opDone, simDone} {
		select {
		case err := <-ch:
			if err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		case <-time.After(15 * time.Second):
			t.Error("a process did not stop")
		}
	}
}
