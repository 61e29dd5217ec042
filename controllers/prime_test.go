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

// With PrimeAhead, a poll that must prime Flink's metric fetcher sends the
// priming request, writes nothing and comes back after the fetcher's wait
// (1 s) to collect and decide: no worker sleeps through the wait, and the
// policy is polled, decided and reported as before.
func TestPrimeAheadFreesTheWorker(t *testing.T) {
	var patches atomic.Int64
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun, client: func(c client.Client) client.Client {
		return &statusPatchCounter{Client: c, statusPatches: &patches}
	}})
	w.ctl.PrimeAhead = true
	// Every deciding poll writes (what is counted below): the refresh of
	// a steady status is TestStatusRefreshWritesASteadyJobLessOften's.
	w.ctl.StatusRefresh = 0
	var primings atomic.Int64
	w.ctx = controllers.WithPrimedHook(w.ctx, func() { primings.Add(1) })

	// The first poll primes inline (no vertex known yet); every later one
	// primes ahead: 30 s polls plus the 1 s wait, over 5 minutes.
	w.run(5 * time.Minute)
	n := primings.Load()
	assert.GreaterOrEqual(t, n, int64(8), "polls that primed ahead")
	assert.LessOrEqual(t, n, int64(10))

	pol := w.policy()
	require.NotNil(t, pol.Status.LastDecision)
	assert.WithinDuration(t, w.job.Now(), pol.Status.LastDecision.Time.Time, 32*time.Second, "decided at the latest poll")
	assert.True(t, meta.IsStatusConditionTrue(pol.Status.Conditions, v1alpha1.ConditionReady), "%+v", pol.Status.Conditions)

	// A priming reconcile writes nothing: the status is patched at most
	// once per deciding poll.
	deciding := int64(5*60/31) + 1
	assert.LessOrEqual(t, patches.Load(), deciding+1, "status patches over %d deciding polls", deciding)
	assert.Greater(t, patches.Load(), int64(0))
}
