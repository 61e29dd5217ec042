package bench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func library(t testing.TB, name string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(filepath.Join("..", "scenarios", name+".yaml"))
	require.NoError(t, err)
	return s
}

// The step scenario under flinkscale and under no autoscaler at all: the
// run accounts every record, and the numbers tell the two apart.
func TestRunStepScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-hour scenario")
	}
	s := library(t, "step-up-3x")
	ctx := context.Background()
	fs, err := Run(ctx, s, NewFlinkscale(), Options{})
	require.NoError(t, err)
	st, err := Run(ctx, s, Static{}, Options{})
	require.NoError(t, err)
	t.Logf("flinkscale: %+v", summary(fs))
	t.Logf("static: %+v", summary(st))
	for _, r := range []*Result{fs, st} {
		assert.Zero(t, r.RecordsLost, r.Policy)
	}
	assert.Zero(t, st.Rescales)
	assert.Positive(t, fs.Rescales)
	assert.Less(t, fs.OverSLO, st.OverSLO)
	assert.Greater(t, fs.SlotHours, st.SlotHours, "scaling up costs slots")
}

func summary(r *Result) map[string]any {
	return map[string]any{"rescales": r.Rescales, "overSLO": r.OverSLO, "maxLagS": r.MaxLagSeconds, "slotH": r.SlotHours,
		"converge": r.Converge, "events": len(r.Events), "lost": r.RecordsLost}
}

func TestOracleStep(t *testing.T) {
	s := library(t, "step-up-3x")
	o, err := Oracle(s, 0.7, 0)
	require.NoError(t, err)
	// 20k/s for 1h then 60k/s for 2h (±3 %): the source needs
	// ⌈20000/(0.7·20000)⌉ = 2 then ⌈60000/14000⌉ = 5 (aligned by the
	// busiest reader of 24 partitions: 5 readers own 5,5,5,5,4 → share
	// 5/24, capacity 20000·24/5 = 96000 ≥ 85714 ✓); dedupe 18k→54k of
	// 15k at 0.7: 2 → 6 (key groups 128: 6 subtasks own ≤ 22/128 →
	// 15000·128/22 = 87272 ≥ 77142 ✓); async 17.46k→52.4k of 8k: 4 → 10.
	// Slots = max = 10 after the step, 4 before.
	last := o.Timeline[len(o.Timeline)-1]
	first := o.Timeline[0]
	t.Logf("oracle: first %+v last %+v slotH %.1f overSLO %s", first.Parallelism, last.Parallelism, o.SlotHours, o.OverSLO)
	assert.Equal(t, 4, first.Slots)
	assert.Zero(t, o.OverSLO, "a 2-minute restart at 60k/s is well under the 5-minute SLO")
}
