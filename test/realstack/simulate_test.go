package realstack_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/realstack"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// The simulator's side of the comparison, on the e2e scenario at the
// second the real rescales happened (1:53 of load, the keyed vertex 2 → 4).
func TestSimulateRescaleMeasuresBothPaths(t *testing.T) {
	s, err := scenario.Parse(stepScenario)
	require.NoError(t, err)
	keyed := map[string]int{"KeyedProcess: count": 4}

	// In place on the 1.20 model: the scenario's restart.time (5 s) and no
	// TaskManager start (the adaptive scheduler takes the slots there are).
	inPlace, err := realstack.SimulateRescale(s, "1.20", realstack.Rescale{At: 113 * time.Second, InPlace: true,
		Parallelism: keyed, Slots0: 2, TaskManagers0: 2})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, inPlace.Downtime, 5*time.Second)
	assert.Less(t, inPlace.Downtime, 20*time.Second)

	// By savepoint with a slot change: the savepoint, restart.time and a
	// TaskManager start (5 s): longer than in place.
	restart, err := realstack.SimulateRescale(s, "1.20", realstack.Rescale{At: 113 * time.Second,
		Parallelism: keyed, Slots0: 1, TaskManagers0: 2, Slots: 2, TaskManagers: 2})
	require.NoError(t, err)
	assert.Greater(t, restart.Downtime, inPlace.Downtime)
	assert.GreaterOrEqual(t, restart.Downtime, 10*time.Second)

	// 13 s of the step's 200 records/s of excess lag (backpressured from
	// 1:40), plus the downtime's arrivals at 1,000/s: far under the SLO's
	// 30,000 records, so the lag is under it as soon as the job runs.
	for _, o := range []realstack.Outcome{inPlace, restart} {
		assert.Equal(t, o.Downtime, o.Recovered)
	}

	_, err = realstack.SimulateRescale(s, "1.20", realstack.Rescale{At: 113 * time.Second, InPlace: true,
		Parallelism: map[string]int{"KeyedProcess: count": 400}, Slots0: 2, TaskManagers0: 2})
	assert.Error(t, err, "a parallelism the job never runs at is an error")
}
