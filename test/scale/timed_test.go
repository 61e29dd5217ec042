package scale

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flinkscale/flinkscale/scaling"
)

// The packed log gives back every record as added, in order, across
// blocks, with policies and error messages shared by index.
func TestTimedKeepsEveryRun(t *testing.T) {
	var log timed
	t0 := time.Unix(1_800_000_000, 0)
	var want []run
	for i := range runBlock + 10 {
		r := run{key: types.NamespacedName{Namespace: "team", Name: []string{"a", "b", "c"}[i%3]}, replica: i % 2,
			end: t0.Add(time.Duration(i) * time.Millisecond), d: time.Duration(i) * time.Microsecond, primed: i%5 == 0}
		if i%7 == 0 {
			r.err = []string{"no answer within 10s", "503 Service Unavailable"}[i%2]
		}
		log.add(r)
		want = append(want, r)
	}
	got := log.all()
	require.Len(t, got, len(want))
	assert.Equal(t, len(want), log.count())
	for i := range want {
		w, g := want[i], got[i]
		assert.True(t, w.end.Equal(g.end), "run %d end", i)
		w.end, g.end = time.Time{}, time.Time{}
		assert.Equal(t, w, g, "run %d", i)
	}
	assert.Len(t, log.blocks, 2)
	assert.Len(t, log.names, 3)
	assert.Len(t, log.errs, 2)

	// primedBetween and between read it too: the first 1,000 runs end in
	// [t0, t0+999ms]; every fifth primed, every seventh failed of the others.
	to := t0.Add(999 * time.Millisecond)
	assert.Equal(t, 200, log.primedBetween(t0, to))
	durs, errs, samples := log.between(t0, to)
	assert.Len(t, durs, 800)
	assert.Equal(t, 114, errs) // 143 multiples of 7 below 1,000, less the 29 that are multiples of 35 (primed)
	assert.Len(t, samples, 5)
}

// The backfill adds copies of the oldest decision, an interval apart,
// until the history covers keep before its newest.
func TestBackfilled(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	rec := func(sec int, p int) scaling.RecommendationRecord {
		return scaling.RecommendationRecord{At: t0.Add(time.Duration(sec) * time.Second), Parallelism: map[string]int{"a": p},
			Arrival: map[string]float64{"a": float64(p * 100)}}
	}
	// 35m30s at 30 s: the newest at 600 s, so decisions down to 600 − 2,130
	// = −1,530 s exclusive: −1,500 … 570 in 30 s steps (71 in all), the
	// new ones copies of the oldest (at 0 s, parallelism 3).
	got := backfilled([]scaling.RecommendationRecord{rec(0, 3), rec(300, 4), rec(600, 4)}, 35*time.Minute+30*time.Second, 30*time.Second)
	require.Len(t, got, 50+3)
	assert.Equal(t, rec(-1500, 3), got[0])
	assert.Equal(t, rec(-30, 3), got[49])
	assert.Equal(t, []scaling.RecommendationRecord{rec(0, 3), rec(300, 4), rec(600, 4)}, got[50:])
	for i := 1; i < 50; i++ {
		assert.Equal(t, 30*time.Second, got[i].At.Sub(got[i-1].At))
	}
	full := got
	assert.Equal(t, full, backfilled(full, 35*time.Minute+30*time.Second, 30*time.Second), "covered: as it is")
	assert.Empty(t, backfilled(nil, time.Hour, 30*time.Second))
}
