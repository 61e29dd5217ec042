package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// The whole system under one real manager, in real time: a FlinkDeployment
// annotated flinkscale.io/enabled gets its policy from the opt-in
// controller, the policy controller polls the simulated job (running 30×
// faster than the wall clock) over HTTP and Kafka, and a step in load ends in
// one completed rescale performed by the fake operator. Watches, requeues,
// the field index and the event recorder are the manager's.
func TestOptInUnderAManagerRescalesOnce(t *testing.T) {
	const speed = 30.0
	env, c := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "mgr")
	key := types.NamespacedName{Namespace: ns, Name: "orders"}

	live := fixtures.StartLive(t, fixtures.OrdersJob(), fixtures.LiveOptions{Start: t0, Seed: 9, Rate: 1500})
	j := live.Job

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 fixtures.Scheme(t),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	require.NoError(t, err)
	reg := fakeoperator.NewRegistry()
	reg.Register(key, j)
	var seq atomic.Int64
	clk := live.Clock()
	require.NoError(t, (&fakeoperator.Operator{Clusters: reg, Clock: clk, ResyncInterval: 200 * time.Millisecond,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0xc0+seq.Add(1)) }}).SetupWithManager(mgr))
	require.NoError(t, (&optin.Reconciler{}).SetupWithManager(mgr))
	pr := &controllers.PolicyReconciler{
		Client: mgr.GetClient(),
		Sources: &controllers.ClientSources{Reader: mgr.GetAPIReader(), Now: j.Now, Timeout: 5 * time.Second,
			FlinkOpts: []flink.CollectorOption{flink.WithClock(j.Now), flink.WithSleep(live.Sleep)}},
		Clock:         clk,
		TrackInterval: 200 * time.Millisecond,
	}
	require.NoError(t, pr.SetupWithManager(mgr, controllers.Options{SkipNameValidation: true}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- mgr.Start(ctx) }()
	go func() { done <- j.RunRealtime(ctx, speed, 50*time.Millisecond) }()

	fd := live.OptedIn(ns, key.Name, "Apply", "1s") // 1s: 30 virtual seconds
	require.NoError(t, c.Create(ctx, fd))

	// Every Scale decision seen, with its reasons, for the failure messages.
	var scales []string
	seen := map[time.Time]bool{}
	policy := func() *v1alpha1.FlinkScalingPolicy {
		var p v1alpha1.FlinkScalingPolicy
		if err := c.Get(ctx, key, &p); err != nil {
			return nil
		}
		if d := p.Status.LastDecision; d != nil && d.Action == "Scale" && !seen[d.Time.Time] {
			seen[d.Time.Time] = true
			scales = append(scales, fmt.Sprintf("%s %s %+v", d.Time.Format(time.TimeOnly), d.Summary, d.Reasons))
		}
		return &p
	}
	// Settled at the base load: decisions, and they hold.
	require.Eventually(t, func() bool {
		p := policy()
		return p != nil && p.Status.LastDecision != nil && j.Now().Sub(t0) > 12*time.Minute
	}, 90*time.Second, 100*time.Millisecond, "the opt-in policy decides")
	p := policy()
	require.Equal(t, "Hold", p.Status.LastDecision.Action, p.Status.LastDecision.Summary)
	require.Empty(t, scales, "no rescale at the base load")
	assert.Equal(t, v1alpha1.ModeApply, p.Spec.Mode)

	// The step starts just after a poll, so that the next poll sees a
	// whole polling interval of it. (A poll that sees part of a step sizes
	// for part of it, and the rest takes a second rescale: with the clock
	// at 30×, a tenth of a second of wall time is 3 s of a 30 s interval.)
	stepAfterNextDecision(t, live, 3000, func() *v1alpha1.DecisionStatus {
		if p := policy(); p != nil {
			return p.Status.LastDecision
		}
		return nil
	})
	require.Eventually(t, func() bool {
		p := policy()
		return p != nil && p.Status.History != nil && len(p.Status.History.Rescales) > 0 &&
			p.Status.History.Rescales[0].Outcome == scaling.OutcomeSucceeded
	}, 90*time.Second, 100*time.Millisecond, "a rescale completes")
	// 10 more virtual minutes: no second rescale.
	until := j.Now().Add(10 * time.Minute)
	require.Eventually(t, func() bool { return j.Now().After(until) }, 60*time.Second, 100*time.Millisecond)
	p = policy()
	require.Len(t, p.Status.History.Rescales, 1, "%+v\nScale decisions seen:\n%s", p.Status.History.Rescales, strings.Join(scales, "\n"))
	r := p.Status.History.Rescales[0]
	assert.Positive(t, r.Downtime.Duration)
	stats := j.Stats()
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag)
	assert.Less(t, stats.Lag, int64(3000*30), "the lag drained")

	cancel()
	for range 2 {
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
	}
}

// stepAfterNextDecision sets live's arrival rate to rate as soon as the
// policy's last decision (read by last) is newer than it is now.
func stepAfterNextDecision(t *testing.T, live *fixtures.LiveJob, rate float64, last func() *v1alpha1.DecisionStatus) {
	t.Helper()
	var before time.Time
	if d := last(); d != nil {
		before = d.Time.Time
	}
	require.Eventually(t, func() bool {
		d := last()
		return d != nil && d.Time.After(before)
	}, 30*time.Second, 5*time.Millisecond, "a decision after %s", before)
	live.SetRate(rate)
}
