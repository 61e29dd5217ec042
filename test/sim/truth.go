package sim

import (
	"math"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// VertexTruth is the simulator's ground truth about one vertex, for
// benchmarks and oracles: what no autoscaler can read, only estimate.
type VertexTruth struct {
	ID, Name string
	// Inputs are the upstream vertex ids; Selectivity is records out per
	// record in.
	Inputs      []string
	Selectivity float64
	// Broadcast tells, input by input, a BROADCAST edge: every subtask
	// receives, processes and (by Selectivity) emits each of its records,
	// so that load does not shrink with parallelism and the vertex's
	// output grows with it.
	Broadcast []bool
	// Topics a source reads.
	Topics []string
	// MaxParallelism is the number of key groups.
	MaxParallelism int
}

// Truth lists the job's vertices in topological order.
func (j *Job) Truth() []VertexTruth {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]VertexTruth, 0, len(j.g.vertices))
	for _, v := range j.g.vertices {
		t := VertexTruth{ID: v.id, Name: v.spec.Name, Selectivity: v.spec.Selectivity, Topics: v.topics, MaxParallelism: v.maxP}
		for _, e := range v.ins {
			t.Inputs = append(t.Inputs, e.from.id)
			t.Broadcast = append(t.Broadcast, e.ship == "BROADCAST")
		}
		out = append(out, t)
	}
	return out
}

// SubtaskCapacity is what one subtask of vertex id processes per second at
// 100 % busy with p subtasks on TaskManagers of slotsPerTM slots: the
// vertex's Capacity shrunk by the USL curve and by CPU contention when
// slots outnumber cores. Every subtask of a vertex with a BROADCAST input
// spends it on each broadcast record as well. ok is false for an unknown
// vertex or p < 1.
func (j *Job) SubtaskCapacity(id string, p, slotsPerTM int) (float64, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := j.g.byID[id]
	if v == nil || p < 1 {
		return 0, false
	}
	return j.subtaskCapacity(v, p, slotsPerTM), true
}

func (j *Job) subtaskCapacity(v *gvertex, p, slotsPerTM int) float64 {
	c := v.spec.Capacity / (1 + v.spec.USL.Sigma*float64(p-1) + v.spec.USL.Kappa*float64(p)*float64(p-1))
	if slotsPerTM > 0 {
		c *= math.Min(1, j.spec.TaskManager.CPU/float64(slotsPerTM))
	}
	return c
}

// Capacity is the records per second of its partitioned input (all but
// BROADCAST edges) vertex id processes at 100 % busy with p subtasks on
// TaskManagers of slotsPerTM slots, as the simulator computes it: each
// subtask's capacity (SubtaskCapacity) divided by the busiest subtask's
// share of those records. The share is the largest sum of partition shares
// a source reader owns in a fresh assignment (topicRates weighs the topics
// of a multi-topic source; nil weighs them equally), the largest sum of
// key-group weights a keyed vertex's subtask owns, and 1/p otherwise. A
// broadcast input is not partitioned: each subtask processes all of it, at
// SubtaskCapacity. ok is false for an unknown vertex or p < 1.
func (j *Job) Capacity(id string, p, slotsPerTM int, topicRates map[string]float64) (float64, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := j.g.byID[id]
	if v == nil || p < 1 {
		return 0, false
	}
	c := j.subtaskCapacity(v, p, slotsPerTM)
	share := 1 / float64(p)
	switch {
	case len(v.ins) == 0 && len(v.topics) > 0:
		share = j.busiestReaderShare(v, p, topicRates)
	case v.keyWeight != nil:
		p = min(p, v.maxP)
		share = 0
		for k := range p {
			first, last := assign.KeyGroupRange(v.maxP, p, k)
			s := 0.0
			for g := first; g <= last; g++ {
				s += v.keyWeight[g]
			}
			share = math.Max(share, s)
		}
	}
	if share <= 0 {
		return 0, true
	}
	return c / share, true
}

// busiestReaderShare is the largest share of a source's records one reader
// gets in a fresh assignment of its partitions to p readers.
func (j *Job) busiestReaderShare(v *gvertex, p int, topicRates map[string]float64) float64 {
	var tps []assign.TopicPartition
	weight := map[assign.TopicPartition]float64{}
	total := 0.0
	for _, name := range v.topics {
		var ts TopicSpec
		ok := false
		for _, t := range j.spec.Topics {
			if t.Name == name {
				ts, ok = t, true
			}
		}
		if !ok {
			continue
		}
		r := 1.0
		if topicRates != nil {
			r = topicRates[name]
		}
		for i, s := range PartitionShares(ts) {
			tp := assign.TopicPartition{Topic: name, Partition: i}
			tps = append(tps, tp)
			weight[tp] = r * s
			total += r * s
		}
	}
	if total <= 0 {
		return 1 / float64(p)
	}
	best := 0.0
	for _, reader := range assign.FreshAssignment(tps, p) {
		s := 0.0
		for _, tp := range reader {
			s += weight[tp]
		}
		best = math.Max(best, s/total)
	}
	return best
}
