package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// broadcastJoin: orders keyed into a join that also receives every rule
// (a BROADCAST edge), then a sink. Rules are a fifth of the orders' rate.
const broadcastJoin = `
name: broadcast-join
duration: 1h
job:
  flinkVersion: "1.20"
  topics:
    - {name: orders, partitions: 8}
    - {name: rules, partitions: 1}
  vertices:
    - {name: "Source: orders", parallelism: 2, capacity: 10000, selectivity: 1, topics: [orders]}
    - {name: "Source: rules", parallelism: 1, capacity: 10000, selectivity: 1, topics: [rules]}
    - name: Join
      parallelism: 4
      maxParallelism: 128
      capacity: 1000
      selectivity: 1
      inputs:
        - {from: "Source: orders", ship: HASH}
        - {from: "Source: rules", ship: BROADCAST}
    - {name: Sink, parallelism: 1, capacity: 20000, selectivity: 0, inputs: [{from: Join, ship: REBALANCE}]}
  taskManager: {cpu: 4, slots: 4}
  checkpoints: {interval: 30s, base: 1s}
  restart: {time: 60s}
load:
  - topic: orders
    segments: [{kind: constant, rate: 2000}]
  - topic: rules
    segments: [{kind: constant, rate: 400}]
`

// What the benchmark takes for a job's capacity and the oracle's sizes
// counts a broadcast input as Flink runs it: every subtask processes all
// of it, so it does not shrink with parallelism, and the receiver emits a
// copy per subtask.
func TestBroadcastCapacityAndOracle(t *testing.T) {
	s := parse(t, broadcastJoin)
	j := job(t, s)
	ids := map[string]string{}
	for _, v := range s.Job.Vertices {
		ids[v.Name], _ = j.VertexID(v.Name)
	}
	rates := map[string]float64{"orders": 2000, "rules": 400}
	par := map[string]int{ids["Source: orders"]: 2, ids["Source: rules"]: 1, ids["Join"]: 4, ids["Sink"]: 1}
	// Per arriving record (2400/s in all): 5/6 an order, 1/6 a rule. A
	// join subtask of 4 (uniform keys: a quarter of the orders) takes
	// 5/24 + 1/6 = 9/24 of the arrivals at 1000/s: 2667 arrivals/s; the
	// sink receives 5/6 + 4 × 1/6 = 3/2 records per arrival.
	assert.InDelta(t, 1000*24.0/9, JobCapacity(j, par, 4, rates), 1e-6)
	fl := flows(j.Truth(), rates, par)
	assert.InDelta(t, 1.5, fl[ids["Sink"]].part, 1e-12)
	assert.InDelta(t, 1.0/6, fl[ids["Join"]].bcast, 1e-12)

	// The oracle sizes the join for 70 %: its subtasks spend 400 ms/s on
	// the rules whatever the parallelism, so 300 ms/s are left for the
	// orders: 2000/300 → 7 subtasks at least. The simulator agrees: at the
	// oracle's size the busiest join subtask is at or under 70 % busy, one
	// subtask fewer is over.
	o, err := Oracle(s, 0.7, 0)
	require.NoError(t, err)
	p := o.Timeline[0].Parallelism["Join"]
	assert.GreaterOrEqual(t, p, 7)
	busiest := func(p int) float64 {
		sj, err := sim.NewJob(s.Job, sim.Options{Start: time.Unix(0, 0), Load: s})
		require.NoError(t, err)
		require.NoError(t, sj.Submit(sim.Submission{Overrides: map[string]int{ids["Join"]: p}}))
		// The minute of arrivals its start leaves behind is caught up.
		require.NoError(t, sj.Advance(10*time.Minute))
		b := 0.0
		for _, v := range sj.View().Job.Vertices {
			if v.Name == "Join" {
				for _, st := range v.Subtasks {
					b = max(b, st.BusyTimeMsPerSecond)
				}
			}
		}
		return b
	}
	assert.LessOrEqual(t, busiest(p), 705.0, "at the oracle's %d", p)
	assert.Greater(t, busiest(p-1), 700.0, "at %d", p-1)
	assert.Equal(t, 1, o.Timeline[0].Parallelism["Sink"], "the sink takes 6000/s of 20000")
}
