package scaling

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A job that needs a scale-up waits while its TaskManagers are GC-bound (or,
// when the policy asks, hold too much heap); the reason gives the figures.
func TestMemoryPressureHoldsARescale(t *testing.T) {
	const mib = 1 << 20
	overloaded := func(gcAvg float64, heapAvg float64) Snapshot {
		// work: 1000 rec/s at p=2 fully busy, 1750 arrive → p=5: a Scale
		// without memory figures (TestDecide's free-slot case).
		s := snapshot(2,
			vtx{id: "src", p: 2, busy: 100, in: 1000, out: 1000, lag: F(0), arrival: F(1750), partitions: 32},
			vtx{id: "work", p: 2, busy: 1000, in: 1000, out: 1000, inputs: from("src", ShipRebalance)},
		)
		s.TaskManagers.Memory = &Memory{
			HeapUsedBytes: &Stat{Avg: F(heapAvg * 1024 * mib), Max: F(1000 * mib)}, HeapMaxBytes: F(1024 * mib),
			GCTimeMsPerSecond: &Stat{Avg: F(gcAvg), Max: F(2 * gcAvg)},
		}
		return s
	}
	cases := []struct {
		name   string
		gc     float64 // ms/s, window average of the busiest TaskManager
		heap   float64 // average share of the heap in use
		policy func(*Policy)
		want   Action
	}{
		{"GC at 10% of the time: scale", 100, 0.5, nil, ActionScale},
		{"GC at 40% > 30% (the default): hold", 400, 0.5, nil, ActionHold},
		{"the check off", 400, 0.5, func(p *Policy) { p.Memory.MaxGCTimeRatio = 0 }, ActionScale},
		{"heap at 95% with maxHeapUsage 90%: hold", 100, 0.95, func(p *Policy) { p.Memory.MaxHeapUsage = 0.9 }, ActionHold},
		{"heap at 95%, maxHeapUsage off (the default): scale", 100, 0.95, nil, ActionScale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testPolicy()
			if c.policy != nil {
				c.policy(&p)
			}
			d := Decide(overloaded(c.gc, c.heap), p, History{}, t0)
			require.Equal(t, c.want, d.Action, "%s %v", d.Summary, d.Reasons)
			if c.want == ActionHold {
				assert.Contains(t, codes(d.Reasons), ReasonMemoryPressure)
				assert.Equal(t, d.Current.Parallelism, d.Recommended.Parallelism, "no plan while memory binds")
			}
		})
	}
	// The figures are in the message: 400 ms/s is 40 %; 1000 of 1024 MiB is 98 %.
	d := Decide(overloaded(400, 0.5), testPolicy(), History{}, t0)
	for _, r := range d.Reasons {
		if r.Code == ReasonMemoryPressure {
			assert.Contains(t, r.Message, "40% of its time in garbage collection")
			assert.Contains(t, r.Message, "heap in use peaked at 98% of 1024 MiB")
		}
	}
}
