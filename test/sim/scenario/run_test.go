package scenario

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// Every scenario of the library runs its whole duration on the simulator at
// its initial parallelism (no autoscaler): the job starts, records are
// conserved, and the initial lag is in the topics.
func TestLibraryRunsOnTheSimulator(t *testing.T) {
	all, err := All(libraryDir)
	require.NoError(t, err)
	for _, s := range all {
		t.Run(s.Name, func(t *testing.T) {
			j, err := s.NewJob(nil, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 0)
			require.NoError(t, err)
			var backlog int64
			for _, n := range s.InitialLag {
				backlog += n
			}
			assert.Equal(t, backlog, j.Stats().Produced)
			require.NoError(t, j.Advance(s.Duration))
			st := j.Stats()
			assert.Equal(t, st.Produced, st.Consumed+st.Lag)
			assert.Zero(t, st.Reprocessed)
			// Arrivals integrate the load exactly: what was produced is the
			// initial lag plus the integral of the rate (whole records).
			want := float64(backlog)
			for _, l := range s.Load {
				want += s.Arrivals(l.Topic, 0, s.Duration)
			}
			assert.InDelta(t, want, float64(st.Produced), float64(len(s.Job.Topics)*64))
			assert.Equal(t, "RUNNING", j.View().Job.State)
		})
	}
}

// Same seed, same trace: two runs of a scenario end in the same state.
func TestSameSeedSameRun(t *testing.T) {
	s, err := Load(libraryDir + "/short-spike.yaml")
	require.NoError(t, err)
	run := func() (sim.Stats, sim.View) {
		j, err := s.NewJob(nil, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 0)
		require.NoError(t, err)
		require.NoError(t, j.Advance(s.Duration))
		return j.Stats(), j.View()
	}
	s1, v1 := run()
	s2, v2 := run()
	assert.Equal(t, s1, s2)
	assert.Equal(t, v1, v2)
}
