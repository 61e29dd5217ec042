package controllers_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
)

// statusPatchCounter counts the status patches a controller sends.
type statusPatchCounter struct {
	client.Client
	statusPatches *atomic.Int64
}

func (c *statusPatchCounter) Status() client.SubResourceWriter {
	return &statusPatchCounterWriter{SubResourceWriter: c.Client.Status(), n: c.statusPatches}
}

type statusPatchCounterWriter struct {
	client.SubResourceWriter
	n *atomic.Int64
}

func (s *statusPatchCounterWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.n.Add(1)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// primeAhead turns PrimeAhead on in w's controller, with every deciding
// poll writing its status, and counts the reconciles that only primed.
func primeAhead(w *world) *atomic.Int64 {
	w.ctl.PrimeAhead = true
	w.ctl.StatusRefresh = 0
	var primings atomic.Int64
	w.ctx = controllers.WithPrimedHook(w.ctx, func() { primings.Add(1) })
	return &primings
}

// runPriming runs w for d and checks that between lo and hi polls primed
// ahead, and that the policy is Ready with a decision of its latest poll
// (less than poll before the end); it returns the policy.
func runPriming(t *testing.T, w *world, d time.Duration, primings *atomic.Int64, lo, hi int64, poll time.Duration) *v1alpha1.FlinkScalingPolicy {
	t.Helper()
	w.run(d)
	n := primings.Load()
	assert.GreaterOrEqual(t, n, lo, "polls that primed ahead")
	assert.LessOrEqual(t, n, hi)
	pol := w.policy()
	require.NotNil(t, pol.Status.LastDecision)
	assert.WithinDuration(t, w.job.Now(), pol.Status.LastDecision.Time.Time, poll, "decided at the latest poll")
	assert.True(t, meta.IsStatusConditionTrue(pol.Status.Conditions, v1alpha1.ConditionReady), "%+v", pol.Status.Conditions)
	return pol
}

// With PrimeAhead, a poll that must prime Flink's metric fetcher sends the
// priming request, writes nothing and comes back after the fetcher's wait
// (1 s) to collect and decide: no worker sleeps through the wait, and the
// policy is polled, decided and reported as before.
func TestPrimeAheadFreesTheWorker(t *testing.T) {
	var patches atomic.Int64
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun, client: func(c client.Client) client.Client {
		return &statusPatchCounter{Client: c, statusPatches: &patches}
	}})
	// Every deciding poll writes (what is counted below): the refresh of
	// a steady status is TestStatusRefreshWritesASteadyJobLessOften's.
	primings := primeAhead(w)

	// The first poll primes inline (no vertex known yet); every later one
	// primes ahead: 30 s polls plus the 1 s wait, over 5 minutes.
	runPriming(t, w, 5*time.Minute, primings, 8, 10, 32*time.Second)

	// A priming reconcile writes nothing: the status is patched at most
	// once per deciding poll.
	deciding := int64(5*60/31) + 1
	assert.LessOrEqual(t, patches.Load(), deciding+1, "status patches over %d deciding polls", deciding)
	assert.Greater(t, patches.Load(), int64(0))
}

// A controller with a backlog brings the priming poll back later than
// Flink's fetcher update interval (10 s). It does not prime again (that
// would send it back to the queue, to come back late again, and never
// decide while the backlog lasts): it collects what the priming refreshed,
// dated by it. With 20 s in the queue every requeue, each poll is one
// priming and one deciding reconcile, (30 − 1) + 20 + (1 + 20) = 70 s
// apart: 8 or 9 of them in 10 minutes.
func TestPrimeAheadOnceUnderABacklog(t *testing.T) {
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun})
	primings := primeAhead(w)
	w.queueDelay = 20 * time.Second

	pol := runPriming(t, w, 10*time.Minute, primings, 7, 9, 72*time.Second)
	// A full window of samples the model could size with.
	for _, r := range pol.Status.LastDecision.Reasons {
		assert.NotContains(t, []string{"MissingMetrics", "StaleSnapshot", "WindowTooShort", "WarmingUp"}, r.Code, "%+v", pol.Status.LastDecision)
	}
}
