package realbench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/test/testbed"
)

func TestCompareLinesVerdictsUpWithinOneLoop(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// Ten advisory evaluations, every 10 s from t0.
	evals := make([]advice, 10)
	for i := range evals {
		evals[i].At = at(float64(10 * i))
	}
	evals[2].To = map[string]int{"a": 4, "b": 8} // matches the real rescale at 27 s (nearest evaluation 3: a neighbour)
	evals[6].To = map[string]int{"b": 2}         // the real one held: a disagreement
	real := []testbed.RivalEntry{
		{At: at(27), Outcome: testbed.RivalScaling, From: map[string]int{"a": 1, "b": 2, "c": 1}, To: map[string]int{"a": 4, "b": 8, "c": 1}},
		{At: at(29), Outcome: testbed.RivalWithinTarget},
		// Nearest evaluation 8; nothing advisory near: a disagreement.
		{At: at(82), Outcome: testbed.RivalScaling, From: map[string]int{"b": 8}, To: map[string]int{"b": 4}},
	}
	c := compare(real, evals, 90*time.Second)
	// 10 evaluations, 2 unmatched verdicts (advisory at 60 s, real at 82 s).
	assert.Equal(t, 10, c.Evaluations)
	assert.Equal(t, 8, c.Agree)
	assert.Equal(t, 2, c.RivalRescales)
	assert.Equal(t, 2, c.AdvisorRescales)
	assert.Equal(t, 1, c.Matched)
	assert.Equal(t, 1, c.SameTargets, "c did not change: only a and b count")
	assert.InDelta(t, 0.8, c.Agreement(), 1e-9)
	assert.Equal(t, []string{
		"06:01:00: the re-implementation would rescale to {b:2}; the real one held",
		"06:01:22: the real one rescaled ({b:4}); the re-implementation held",
	}, c.Lines)
	assert.Contains(t, c.String(), "8 of 10 evaluations agree (80 %)")
}

func TestCompareDifferentTargets(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	evals := []advice{{At: t0, To: map[string]int{"a": 6}}, {At: t0.Add(10 * time.Second)}}
	real := []testbed.RivalEntry{{At: t0.Add(time.Second), Outcome: testbed.RivalScaling, From: map[string]int{"a": 2}, To: map[string]int{"a": 8}}}
	c := compare(real, evals, time.Minute)
	assert.Equal(t, 2, c.Agree, "both said rescale at the first evaluation")
	assert.Equal(t, 1, c.Matched)
	assert.Equal(t, 0, c.SameTargets)
	assert.Equal(t, []string{"06:00:01: the real one rescaled to {a:8}, the re-implementation asked for {a:6}"}, c.Lines)
	assert.True(t, (&CrossCheck{}).Agreement() != (&CrossCheck{}).Agreement(), "no evaluations: NaN")
}
