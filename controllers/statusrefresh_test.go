package controllers_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
)

// With a StatusRefresh of 5 minutes, a steady job's status is written about
// once per 5 minutes instead of every 30 s poll, and what is written still
// holds every poll's recommendation (the polls in between are written with
// the next write): the stabilization windows of a controller that starts
// over from the status see them all, up to its last write.
func TestStatusRefreshWritesASteadyJobLessOften(t *testing.T) {
	var patches atomic.Int64
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun, client: func(c client.Client) client.Client {
		return &statusPatchCounter{Client: c, statusPatches: &patches}
	}})
	w.ctl.StatusRefresh = controllers.DefaultStatusRefresh
	w.run(10 * time.Minute) // a full metrics window: every decision sizes the job
	decisions0 := w.metric("flinkscale_decisions_total", "policy", w.pKey.Name)
	patches0 := patches.Load()

	w.run(20 * time.Minute)
	decisions := w.metric("flinkscale_decisions_total", "policy", w.pKey.Name) - decisions0
	written := patches.Load() - patches0
	t.Logf("20 minutes: %.0f decisions, %d status writes", decisions, written)
	require.GreaterOrEqual(t, decisions, 38.0, "a decision per 30 s poll")
	// 20 min / 5 min = 4 refreshes, plus what changed materially (the
	// recommendation of a job whose load moves a little).
	assert.LessOrEqual(t, written, int64(decisions/3), "most polls write nothing")
	assert.GreaterOrEqual(t, written, int64(3), "at least one write per refresh period")

	pol := w.policy()
	require.NotNil(t, pol.Status.History)
	recs := pol.Status.History.ToHistory().Recommendations
	require.NotEmpty(t, recs)
	for i := 1; i < len(recs); i++ {
		gap := recs[i].At.Sub(recs[i-1].At)
		assert.LessOrEqual(t, gap, 31*time.Second, "entry %d: every poll's recommendation is written (gap %s)", i, gap)
	}
	assert.WithinDuration(t, w.job.Now(), pol.Status.LastDecision.Time.Time, controllers.DefaultStatusRefresh+31*time.Second,
		"the decision written is at most one refresh period old")

	// A controller that starts over reads the history written and goes on
	// from it: nothing written is lost.
	w.ctl = w.newController(nil)
	w.ctl.StatusRefresh = controllers.DefaultStatusRefresh
	before := recs
	w.run(6 * time.Minute) // past one refresh: it has written
	after := w.policy().Status.History.ToHistory().Recommendations
	newest := before[len(before)-1].At
	var kept int
	for _, r := range after {
		if !r.At.After(newest) {
			kept++
		}
	}
	oldest := after[0].At
	var expected int
	for _, r := range before {
		if !r.At.Before(oldest) {
			expected++
		}
	}
	assert.Equal(t, expected, kept, "the restarted controller keeps every written recommendation still in its windows")
}
