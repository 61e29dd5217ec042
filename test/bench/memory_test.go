package bench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// networkNeed is the network buffers the worst 4-slot TaskManager of the
// scenario's job needs at parallelism par (vertex id → subtasks), on Flink
// 1.20's rules: what the simulator checks a deployment against.
func networkNeed(t *testing.T, s *scenario.Scenario, par map[string]int) scaling.NetworkUse {
	t.Helper()
	job, err := sim.NewJob(s.Job, sim.Options{})
	require.NoError(t, err)
	id := func(name string) string {
		v, ok := job.VertexID(name)
		require.True(t, ok, name)
		return v
	}
	var vs []scaling.Vertex
	for _, v := range s.Job.Vertices {
		sv := scaling.Vertex{ID: id(v.Name), Parallelism: v.Parallelism, SlotSharingGroup: v.SlotSharingGroup}
		for _, in := range v.Inputs {
			sv.Inputs = append(sv.Inputs, scaling.Input{ID: id(in.From), ShipStrategy: in.Ship})
		}
		vs = append(vs, sv)
	}
	cfg := scaling.DefaultNetworkConfig(scaling.Flink120)
	cfg.NetworkMemory = 8 << 20 // the scenario's taskmanager.memory.network.min = max
	return scaling.NetworkNeed(vs, par, s.Job.TaskManager.Slots, 0, cfg)
}

// network-buffers-wide: a ramp from 25k to 80k records/s needs a scale-up
// that does not fit the TaskManagers' 8 MiB of network memory (256
// segments of 32 KiB). Per slot, on Flink 1.20 with every channel remote,
// the source's partition needs p_keyed + 1 buffers, the keyed vertex's
// gate 2·p_source + 1 and its partition p_sink + 1, the sink's gate
// 2·p_keyed + 1; a TaskManager holds four slots:
//
//   - start (8/8/8): 4 × (9 + 17 + 9 + 17) = 208 ≤ 256: it runs;
//   - the keyed vertex alone at 16 (the operator's first plan): 4 × (17 +
//     17 + 9 + 33) = 304 > 256: the job never runs;
//   - 80k/s needs the keyed vertex at 80k / 5k per subtask = 16 subtasks
//     at 100 % busy, more at any target utilization.
//
// The Flink operator's autoscaler ignores memory: its scale-ups fail and
// are rolled back after RollbackAfter. flinkscale (memory mode Recommend,
// the default) reduces every plan to what fits 256 segments: no failure,
// but too few subtasks for 80k/s. With memory mode Apply, its plans bring
// the network memory they need: no failure, and the keyed vertex reaches
// what the load needs.
func TestNetworkMemoryBoundsTheScaleUp(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-hour scenario under three policies")
	}
	s := library(t, "network-buffers-wide")
	keyed := func(r *Result, par map[string]int) int {
		t.Helper()
		job, err := sim.NewJob(s.Job, sim.Options{})
		require.NoError(t, err)
		id, _ := job.VertexID("KeyedProcess: sessions")
		return par[id]
	}
	const peak, perSubtask = 80000.0, 5000.0 // the load's plateau, the keyed vertex's capacity
	for _, tc := range []struct {
		policy Policy
		// failed: some rescale fails; fits: every plan fits 256
		// segments; reaches: the keyed vertex ends with what 80k/s
		// needs; limited: flinkscale says its plans were held back by
		// the network memory.
		failed, fits, reaches, limited bool
	}{
		{policy: NewFlinkOperator(), failed: true, fits: false, reaches: false},
		{policy: NewFlinkscale(), failed: false, fits: true, reaches: false, limited: true},
		{policy: NewFlinkscaleMemory(), failed: false, fits: false, reaches: true},
	} {
		t.Run(tc.policy.Name(), func(t *testing.T) {
			limited := false
			if f, ok := tc.policy.(*Flinkscale); ok {
				f.OnDecision = func(d scaling.Decision) {
					for _, r := range d.Reasons {
						limited = limited || r.Code == scaling.ReasonNetworkMemoryLimited
					}
				}
			}
			r, err := Run(context.Background(), s, tc.policy, Options{})
			require.NoError(t, err)
			t.Logf("%s: %+v", r.Policy, summary(r))
			require.Zero(t, r.RecordsLost, "produced − consumed − lag")
			require.Zero(t, r.Reprocessed, "savepoint restarts and rollbacks from the savepoint re-read nothing")
			require.NotEmpty(t, r.Events)
			failed := 0
			allFit := true
			for _, e := range r.Events {
				u := networkNeed(t, s, e.To)
				t.Logf("  %s → keyed %d: %d of %d buffers, failed %v, memory %v", e.T, keyed(r, e.To), u.Required, u.Available, e.Failed, e.Memory)
				if e.Failed {
					failed++
					assert.False(t, u.Fits, "a rescale fails only for want of buffers")
				}
				allFit = allFit && u.Fits
				if !u.Fits && !e.Failed {
					assert.True(t, e.Memory, "a layout that does not fit the 256 segments runs only with more network memory")
				}
			}
			assert.Equal(t, failed, r.Failed)
			assert.Equal(t, tc.failed, r.Failed > 0, "failed rescales")
			assert.Equal(t, tc.fits, allFit, "every plan fits the TaskManagers' network memory")
			// Every rollback deploys again: the job runs at the end.
			last := r.Timeline[len(r.Timeline)-1]
			assert.Positive(t, last.Capacity, "the job runs at the end")
			final := r.Events[len(r.Events)-1].To
			if r.Events[len(r.Events)-1].Failed {
				final = r.Events[len(r.Events)-1].From
			}
			assert.Equal(t, tc.reaches, float64(keyed(r, final))*perSubtask >= peak,
				"the keyed vertex's %d subtasks against %.0f records/s", keyed(r, final), peak)
			assert.Equal(t, tc.limited, limited, "decisions held back by the network memory (NetworkMemoryLimited)")
		})
	}
}
