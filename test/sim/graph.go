package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// vertexID derives a stable 32-hex job vertex id from a vertex name, as
// Flink derives ids from the stream graph: deterministic, opaque.
func vertexID(name string) string {
	sum := sha256.Sum256([]byte("vertex:" + name))
	return hex.EncodeToString(sum[:16])
}

// groupID derives a slot-sharing group id (32 hex) from its name.
func groupID(name string) string {
	sum := sha256.Sum256([]byte("slot-sharing-group:" + name))
	return hex.EncodeToString(sum[:16])
}

// headOperator is the first operator of a chained vertex name
// ("Source: Kafka Source -> Map" → "Source: Kafka Source").
func headOperator(name string) string {
	head, _, _ := strings.Cut(name, " -> ")
	return head
}

// graph is a validated job graph: vertices in topological order with their
// edges resolved.
type graph struct {
	vertices []*gvertex
	byID     map[string]*gvertex
	topics   map[string]TopicSpec
}

type gvertex struct {
	spec   VertexSpec
	id     string
	index  int
	ins    []*gedge
	outs   []*gedge
	group  string // slot-sharing group name
	maxP   int
	topics []string
	// keyWeight is the share of keyed records each key group receives
	// (sums to 1), for vertices with a HASH input.
	keyWeight []float64
}

type gedge struct {
	from, to *gvertex
	ship     string
}

func (v *gvertex) isSource() bool { return len(v.ins) == 0 }

func (v *gvertex) keyed() bool {
	for _, e := range v.ins {
		if e.ship == "HASH" {
			return true
		}
	}
	return false
}

var shipStrategies = map[string]bool{"FORWARD": true, "REBALANCE": true, "HASH": true, "RESCALE": true, "BROADCAST": true}

// buildGraph validates a spec and orders its vertices.
func buildGraph(spec JobSpec) (*graph, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	g := &graph{byID: map[string]*gvertex{}, topics: map[string]TopicSpec{}}
	for _, t := range spec.Topics {
		if t.Name == "" || t.Partitions < 1 {
			bad("topic %q needs a name and at least one partition", t.Name)
		}
		if len(t.Weights) > 0 && len(t.Weights) != t.Partitions {
			bad("topic %q has %d weights for %d partitions", t.Name, len(t.Weights), t.Partitions)
		}
		g.topics[t.Name] = t
	}
	byName := map[string]*gvertex{}
	var all []*gvertex
	for i, vs := range spec.Vertices {
		if vs.Name == "" || byName[vs.Name] != nil {
			bad("vertex %d: names must be present and unique, got %q", i, vs.Name)
			continue
		}
		if vs.Parallelism < 1 || !(vs.Capacity > 0) || vs.Selectivity < 0 || math.IsInf(vs.Capacity, 0) {
			bad("vertex %q needs parallelism ≥ 1, capacity > 0 and selectivity ≥ 0", vs.Name)
		}
		id := vs.ID
		if id == "" {
			id = vertexID(vs.Name)
		}
		group := vs.SlotSharingGroup
		if group == "" {
			group = "default"
		}
		maxP := vs.MaxParallelism
		if maxP == 0 {
			maxP = assign.DefaultMaxParallelism(vs.Parallelism)
		}
		if maxP < vs.Parallelism {
			bad("vertex %q: maxParallelism %d below parallelism %d", vs.Name, maxP, vs.Parallelism)
		}
		v := &gvertex{spec: vs, id: id, group: group, maxP: maxP, topics: vs.Topics}
		byName[vs.Name] = v
		all = append(all, v)
	}
	for _, v := range all {
		for _, in := range v.spec.Inputs {
			up := byName[in.From]
			if up == nil || up == v {
				bad("vertex %q: input %q is not another vertex", v.spec.Name, in.From)
				continue
			}
			if !shipStrategies[in.Ship] {
				bad("vertex %q: unknown ship strategy %q", v.spec.Name, in.Ship)
				continue
			}
			e := &gedge{from: up, to: v, ship: in.Ship}
			v.ins = append(v.ins, e)
			up.outs = append(up.outs, e)
		}
		if v.isSource() {
			if len(v.topics) == 0 {
				bad("source %q reads no topic", v.spec.Name)
			}
			for _, t := range v.topics {
				if _, ok := g.topics[t]; !ok {
					bad("source %q reads unknown topic %q", v.spec.Name, t)
				}
			}
		} else if len(v.topics) > 0 {
			bad("vertex %q has inputs and topics: only sources read topics", v.spec.Name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Kahn's algorithm, stable in spec order.
	indeg := map[*gvertex]int{}
	var ready []*gvertex
	for _, v := range all {
		indeg[v] = len(v.ins)
		if indeg[v] == 0 {
			ready = append(ready, v)
		}
	}
	for len(ready) > 0 {
		v := ready[0]
		ready = ready[1:]
		v.index = len(g.vertices)
		g.vertices = append(g.vertices, v)
		g.byID[v.id] = v
		for _, e := range v.outs {
			if indeg[e.to]--; indeg[e.to] == 0 {
				ready = append(ready, e.to)
			}
		}
	}
	if len(g.vertices) != len(all) {
		return nil, errors.New("the job graph has a cycle")
	}
	for _, v := range g.vertices {
		if v.keyed() {
			v.keyWeight = zipfWeights(v.maxP, v.spec.KeySkew, v.id)
		}
	}
	return g, nil
}

// KeyGroupShares is the share of a keyed vertex's records that each of its
// key groups receives (summing to 1), as the simulator spreads them: the
// real-Flink testbed (test/testbed) gives its keyed operators the same
// shares, so both see the same skew.
func KeyGroupShares(v VertexSpec) []float64 {
	maxP := v.MaxParallelism
	if maxP == 0 {
		maxP = assign.DefaultMaxParallelism(v.Parallelism)
	}
	id := v.ID
	if id == "" {
		id = vertexID(v.Name)
	}
	return zipfWeights(maxP, v.KeySkew, id)
}

// zipfWeights spreads keyed records over n key groups: group of rank r gets
// a share ∝ 1/(r+1)^s, the ranks shuffled by a hash of the vertex id so that
// hot key groups land anywhere, not all in subtask 0.
func zipfWeights(n int, s float64, seed string) []float64 {
	w := make([]float64, n)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	h := sha256.Sum256([]byte(seed))
	state := uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16 | uint64(h[3])<<24 | uint64(h[4])<<32
	for i := n - 1; i > 0; i-- { // Fisher–Yates with a small LCG
		state = state*6364136223846793005 + 1442695040888963407
		j := int((state >> 33) % uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	total := 0.0
	for rank := range n {
		x := 1.0
		if s > 0 {
			x = 1 / math.Pow(float64(rank+1), s)
		}
		w[perm[rank]] = x
		total += x
	}
	for i := range w {
		w[i] /= total
	}
	return w
}

// PartitionShares is each partition's share of a topic's arrivals (summing
// to 1): the topic's Weights normalized, else Zipf shares ∝ 1/(k+1)^Skew for
// partition k, equal when Skew is 0.
func PartitionShares(t TopicSpec) []float64 {
	w := make([]float64, t.Partitions)
	total := 0.0
	for k := range w {
		switch {
		case len(t.Weights) == t.Partitions:
			w[k] = t.Weights[k]
		case t.Skew != 0:
			w[k] = 1 / math.Pow(float64(k+1), t.Skew)
		default:
			w[k] = 1
		}
		total += w[k]
	}
	for k := range w {
		w[k] /= total
	}
	return w
}
