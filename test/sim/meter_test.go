package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Flink's time gauges average over the 5-second updates their 60 s window
// holds so far, so a (re)started task reports its real busy time from its
// first update on, and 1000 ms/s before it (busy is derived from idle and
// backpressured time); the records meters still read low for a minute.
func TestTimeGaugesAverageOverTheUpdatesSoFar(t *testing.T) {
	spec := pipeline()
	j, _ := start(t, spec, afterDeploy(spec, 2000))
	require.NoError(t, j.Advance(50*time.Second))
	require.Equal(t, "RUNNING", j.View().Job.State)

	// The job has run for a few seconds since it started (50 s after
	// submission): no update yet.
	first := vertex(j.View(), "KeyedAgg -> Sink: Print")
	require.NotEmpty(t, first.Subtasks)
	assert.Equal(t, 1000.0, first.Subtasks[0].BusyTimeMsPerSecond, "before the first update: 1000 − (0 + 0)")

	require.NoError(t, j.Advance(20*time.Second))
	// The Map (4 subtasks of 500/s) runs at 100 % from the start: its
	// busy time is 1000 ms/s from the first updates on, rather than a
	// third of it 20 s into the job.
	m := vertex(j.View(), "Map")
	assert.InDelta(t, 1000, m.Subtasks[0].BusyTimeMsPerSecond, 60) // its first second waits for the source
	assert.InDelta(t, 0, m.Subtasks[0].IdleTimeMsPerSecond, 60)
	// The records meter is a MeterView: (now − 60 s ago) / 60, low for a
	// minute.
	assert.Less(t, sum(m, func(s SubtaskView) float64 { return s.NumRecordsInPerSecond }), 0.5*2000)

	require.NoError(t, j.Advance(2*time.Minute))
	v := vertex(j.View(), "KeyedAgg -> Sink: Print")
	assert.InDelta(t, 250, v.Subtasks[0].BusyTimeMsPerSecond, 15)
	// 2000 records/s over 2 keyed subtasks of 4000/s: 250 ms/s.
	assert.InDelta(t, 2000, sum(v, func(s SubtaskView) float64 { return s.NumRecordsInPerSecond }), 40)
}

func TestTimerGaugeWindow(t *testing.T) {
	var m meter
	total := 0.0
	for i := 1; i <= 30; i++ {
		x := 100.0 // ms per second in the first 12 updates, then 500
		if i > 12 {
			x = 500
		}
		total += x * meterUpdateSeconds
		m.updateTimer(total)
		switch i {
		case 1, 12:
			assert.InDelta(t, 100, m.rate, 1e-9, "update %d", i)
		case 18:
			assert.InDelta(t, (6*100+6*500)/12.0, m.rate, 1e-9, "half of the window each")
		case 24, 30:
			assert.InDelta(t, 500, m.rate, 1e-9, "update %d: the last 60 s", i)
		}
	}
}
