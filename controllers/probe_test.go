package controllers_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
)

// A JobManager that hangs costs a worker the whole Flink request timeout
// (here 5 s) once; every later, backed-off poll first probes it (GET
// /overview) for FailingProbeTimeout (2 s) at the most, whether or not the
// poll would prime the metric fetcher. Once it answers again the job is
// collected and decided as before.
func TestHungJobManagerIsProbedBriefly(t *testing.T) {
	var hang atomic.Bool
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun, flinkTimeout: 5 * time.Second, rest: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if hang.Load() {
				<-r.Context().Done() // never answers: the client gives up
				return
			}
			next.ServeHTTP(rw, r)
		})
	}})
	w.ctl.PrimeAhead = true
	w.run(3 * time.Minute) // healthy: polled and decided
	require.NotNil(t, w.policy().Status.LastDecision)

	hang.Store(true)
	reconcile := func() (time.Duration, ctrl.Result) {
		t.Helper()
		start := time.Now()
		res, err := w.ctl.Reconcile(w.ctx, ctrl.Request{NamespacedName: w.pKey})
		require.NoError(t, err)
		return time.Since(start), res
	}
	first, res := reconcile()
	assert.GreaterOrEqual(t, first, 5*time.Second, "the first failing poll waits the whole timeout")
	assert.Equal(t, v1alpha1.ReasonMetricsError, condition(w.policy(), v1alpha1.ConditionReady).Reason)
	assert.GreaterOrEqual(t, res.RequeueAfter, 30*time.Second, "backed off")
	for i := range 2 {
		took, _ := reconcile()
		assert.Less(t, took, controllers.FailingProbeTimeout+time.Second, "backed-off poll %d: a short probe", i+1)
		assert.GreaterOrEqual(t, took, controllers.FailingProbeTimeout-100*time.Millisecond, "it waited for the probe")
	}

	hang.Store(false)
	w.run(2 * time.Minute)
	assert.Equal(t, v1alpha1.ReasonReady, condition(w.policy(), v1alpha1.ConditionReady).Reason, "collected again")
}
