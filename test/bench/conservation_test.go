package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Across every rescale of every scenario of the library, under flinkscale
// and under the baselines (the Flink operator's autoscaler, KEDA), no record
// is lost: the simulator ends with produced = consumed + lag. Nothing is
// read twice through a stop-with-savepoint restart; an in-place rescale (the
// adaptive scheduler, as real Flink does) restores the latest checkpoint and
// re-reads at most what arrived since it, a replay Flink's checkpointed
// state and transactional sinks absorb: bounded here by the peak arrival
// rate × (checkpoint interval + 2 min of checkpoint and restart) per
// in-place rescale.
//
// The same run (the library is played once) checks that the oracle's
// unavoidable time over the SLO is a lower bound: no policy spends less.
func TestEveryScenarioConservesRecords(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs the whole scenario library, about 3 min (10× longer under -race: `make test` runs it without)")
	}
	ss, err := Library("../scenarios", nil)
	require.NoError(t, err)
	require.NotEmpty(t, ss)
	interval := map[string]time.Duration{}
	for _, s := range ss {
		interval[s.Name] = s.Job.Checkpoints.Interval
	}
	rep, err := Compare(context.Background(), ss, []string{"flinkscale", "flink-operator", "keda-lag", "static"}, 2, nil)
	require.NoError(t, err)
	t.Run("the oracle's time over the SLO is a lower bound", func(t *testing.T) { oracleIsALowerBound(t, rep) })
	rescales, inPlace := 0, 0
	for _, r := range rep.Results {
		if r.Policy == OracleName {
			continue
		}
		rescales += r.Rescales
		assert.Zero(t, r.RecordsLost, "%s under %s: produced − consumed − lag", r.Scenario, r.Policy)
		n := 0
		for _, e := range r.Events {
			if e.InPlace {
				n++
			}
		}
		inPlace += n
		if n == 0 {
			assert.Zero(t, r.Reprocessed, "%s under %s: a savepoint restart re-reads nothing", r.Scenario, r.Policy)
			continue
		}
		peak := 0.0
		for _, p := range r.Timeline {
			peak = max(peak, p.Load)
		}
		bound := float64(n) * peak * (interval[r.Scenario] + 2*time.Minute).Seconds()
		assert.LessOrEqual(t, float64(r.Reprocessed), bound, "%s under %s: %d in-place rescales re-read at most what arrived since their checkpoints", r.Scenario, r.Policy, n)
	}
	t.Logf("%d runs, %d rescales (%d in place): nothing lost; replays only after in-place rescales, within bounds", len(rep.Results), rescales, inPlace)
	assert.Positive(t, rescales, "the library makes the policies rescale")
}

// oracleIsALowerBound checks that on every scenario no policy spends less
// time over the SLO than the oracle's unavoidable minimum.
func oracleIsALowerBound(t *testing.T, rep *Report) {
	for _, r := range rep.Results {
		if r.Policy == OracleName {
			continue
		}
		o := rep.find(r.Scenario, OracleName)
		require.NotNil(t, o, r.Scenario)
		assert.LessOrEqual(t, o.OverSLO, r.OverSLO, "%s: the oracle's unavoidable time over the SLO (%d restart(s)) against %s's",
			r.Scenario, len(o.Unavoidable), r.Policy)
	}
}
