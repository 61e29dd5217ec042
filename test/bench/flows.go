package bench

import (
	"math"

	"github.com/flinkscale/flinkscale/test/sim"
)

// flow is what a vertex receives per record arriving at the sources (all
// topics together): part is spread over its subtasks (by partition, key
// group or round robin), bcast comes over BROADCAST edges, and every
// subtask receives, processes and emits all of it. Flink's numRecordsIn
// summed over the vertex's p subtasks counts part + p·bcast.
type flow struct{ part, bcast float64 }

// out is what the vertex emits per arriving record at parallelism p: its
// selectivity times everything its subtasks process.
func (f flow) out(selectivity float64, p int) float64 {
	return (f.part + float64(max(p, 1))*f.bcast) * selectivity
}

// inflow is v's flow given what its upstream vertices emit per arriving
// record (out) and the arrivals' split over topics (rates, total their
// sum): a source's share of the arrivals, else the sum of its inputs.
func inflow(v sim.VertexTruth, out map[string]float64, rates map[string]float64, total float64) flow {
	var f flow
	if len(v.Inputs) == 0 && total > 0 {
		for _, t := range v.Topics {
			f.part += rates[t] / total
		}
	}
	for i, u := range v.Inputs {
		if i < len(v.Broadcast) && v.Broadcast[i] {
			f.bcast += out[u]
		} else {
			f.part += out[u]
		}
	}
	return f
}

// flows is every vertex's flow, the job running at parallelism par (a
// vertex missing from par at 1: the fewest broadcast copies downstream).
func flows(truth []sim.VertexTruth, rates map[string]float64, par map[string]int) map[string]flow {
	total := sum(rates)
	fl := make(map[string]flow, len(truth))
	out := make(map[string]float64, len(truth))
	for _, v := range truth { // topological order
		f := inflow(v, out, rates, total)
		fl[v.ID], out[v.ID] = f, f.out(v.Selectivity, par[v.ID])
	}
	return fl
}

// sustains is the arrival rate (records/s over all topics, split as rates)
// vertex id sustains at 100 % busy with p subtasks, given its flow f: its
// busiest subtask takes its share of the partitioned input
// (sim.Job.Capacity) and all of the broadcast input (at
// sim.Job.SubtaskCapacity). +Inf for a vertex that receives nothing.
func sustains(job *sim.Job, id string, f flow, p, slotsPerTM int, rates map[string]float64) float64 {
	var perArrival float64 // seconds of one subtask's time per arriving record
	if f.part > 0 {
		c, ok := job.Capacity(id, p, slotsPerTM, rates)
		if !ok {
			return math.Inf(1)
		}
		if c <= 0 {
			return 0
		}
		perArrival += f.part / c
	}
	if f.bcast > 0 {
		c, ok := job.SubtaskCapacity(id, p, slotsPerTM)
		if !ok {
			return math.Inf(1)
		}
		if c <= 0 {
			return 0
		}
		perArrival += f.bcast / c
	}
	if perArrival <= 0 {
		return math.Inf(1)
	}
	return 1 / perArrival
}
