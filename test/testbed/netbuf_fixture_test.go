package testbed

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
)

// TestNetworkNeedMatchesRealFlink checks scaling.NetworkNeed against what
// real Flink reserved and refused (testdata/network-buffers.json, written
// by TestRealNetworkBuffers on Flink 1.20 and 2.x), every go test:
//
//   - a job on one TaskManager (every channel local): the segments in use
//     once it runs are exactly the buffers the model says it requires
//     (6, 13, 23 for source/keyed/sink at 1/1/1, 2/2/1, 2/4/1);
//   - a job over several TaskManagers: no TaskManager uses more than the
//     model's worst TaskManager (channels counted remote: an upper bound);
//   - on TaskManagers of 32 segments, the layouts real Flink deployed fit
//     and the one it refused ("Insufficient number of network buffers")
//     does not (33 > 32).
func TestNetworkNeedMatchesRealFlink(t *testing.T) {
	b, err := os.ReadFile(networkBuffersFixture)
	require.NoError(t, err)
	var f NetworkBuffers
	require.NoError(t, json.Unmarshal(b, &f))
	require.Equal(t, []string{nbSource + " -> " + nbKeyed + ": HASH", nbKeyed + " -> " + nbSink + ": REBALANCE"}, f.Edges,
		"the graph below is the fixture's")
	graph := []scaling.Vertex{
		{ID: nbSource},
		{ID: nbKeyed, Inputs: []scaling.Input{{ID: nbSource, ShipStrategy: scaling.ShipHash}}},
		{ID: nbSink, Inputs: []scaling.Input{{ID: nbKeyed, ShipStrategy: scaling.ShipRebalance}}},
	}
	exact, bounded, refused := 0, 0, 0
	for _, r := range f.Runs {
		version := scaling.Flink2
		if r.Flink == "1.20" {
			version = scaling.Flink120
		}
		for _, c := range r.Cases {
			cfg := scaling.DefaultNetworkConfig(version)
			cfg.SegmentSize = r.SegmentSize
			var total int64
			occupied, maxUsed := 0, int64(0)
			for _, tm := range c.PerTaskManager {
				total = tm.TotalSegments
				if len(tm.Subtasks) > 0 {
					occupied++
				}
				maxUsed = max(maxUsed, tm.UsedSegments)
			}
			cfg.NetworkMemory = total * r.SegmentSize
			slots := 0
			for _, p := range c.Parallelism {
				slots = max(slots, p) // one slot-sharing group
			}
			if !c.Deployed {
				// Flink refused it while placing it; the adaptive scheduler
				// packs a job onto as few TaskManagers as its slots need.
				u := scaling.NetworkNeed(graph, c.Parallelism, c.SlotsPerTaskManager, 0, cfg)
				assert.False(t, u.Fits, "Flink %s %v: refused by Flink, the model needs %d of %d", r.Flink, c.Parallelism, u.Required, u.Available)
				assert.Equal(t, int64(c.TotalBuffers), u.Available, "Flink %s: the segments in the refusal's message", r.Flink)
				refused++
				continue
			}
			if occupied == 1 {
				u := scaling.NetworkNeed(graph, c.Parallelism, slots, 1, cfg)
				assert.Equal(t, maxUsed, u.Required, "Flink %s %v on one TaskManager: segments in use vs the model", r.Flink, c.Parallelism)
				assert.True(t, u.Fits, "Flink %s %v deployed", r.Flink, c.Parallelism)
				exact++
				continue
			}
			u := scaling.NetworkNeed(graph, c.Parallelism, c.SlotsPerTaskManager, occupied, cfg)
			assert.LessOrEqual(t, maxUsed, u.Required, "Flink %s %v on %d TaskManagers: the worst TaskManager's need bounds its use", r.Flink, c.Parallelism, occupied)
			assert.True(t, u.Fits, "Flink %s %v deployed", r.Flink, c.Parallelism)
			bounded++
		}
	}
	t.Logf("%d exact, %d bounded, %d refused", exact, bounded, refused)
	assert.GreaterOrEqual(t, exact, 6, "one-TaskManager layouts of both Flink lines")
	assert.GreaterOrEqual(t, bounded, 4)
	assert.GreaterOrEqual(t, refused, 2, "a refusal on each Flink line")
}
