package testbed

import (
	"github.com/flinkscale/flinkscale/test/sim"
)

// Expected is what a vertex of the workload does when no vertex is
// saturated: the testbed's ground truth, from the scenario alone.
type Expected struct {
	// In and Out are records per second over the vertex (Flink's
	// numRecordsIn/OutPerSecond summed over subtasks).
	In, Out float64
	// Busy is the mean busy time of a subtask in ms/s: In / parallelism /
	// capacity at that parallelism, × the CPU-contention factor.
	Busy float64
}

// ExpectedRates propagates topic arrival rates (records/s per topic)
// through the job graph: a source's input is the sum of its topics, a
// vertex's input the sum of its upstreams' outputs (× the parallelism on a
// BROADCAST edge, where each subtask receives every record), its output
// input × selectivity. It is exact only while no vertex is saturated;
// past that, backpressure caps the rates and the simulator is the model.
func ExpectedRates(j sim.JobSpec, topicRates map[string]float64) map[string]Expected {
	order, err := topological(j)
	if err != nil {
		return nil
	}
	factor := CostFactor(j.TaskManager)
	out := make(map[string]Expected, len(j.Vertices))
	for _, i := range order {
		v := j.Vertices[i]
		var e Expected
		for _, t := range v.Topics {
			e.In += topicRates[t]
		}
		for _, in := range v.Inputs {
			up := out[in.From].Out
			if in.Ship == "BROADCAST" {
				up *= float64(v.Parallelism)
			}
			e.In += up
		}
		e.Out = e.In * v.Selectivity
		n := float64(v.Parallelism)
		capacity := v.Capacity / (1 + v.USL.Sigma*(n-1) + v.USL.Kappa*n*(n-1))
		e.Busy = 1000 * e.In / n / capacity * factor
		out[v.Name] = e
	}
	return out
}
