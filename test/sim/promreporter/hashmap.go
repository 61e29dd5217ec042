package promreporter

import (
	"sort"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// Flink's PrometheusReporter takes a metric's label names and values from
// MetricGroup.getAllVariables(), in that map's iteration order. The map is a
// java.util.HashMap built by AbstractMetricGroup: a new HashMap (capacity
// 16, load factor 0.75), the group's own variables put first, then every
// entry of the parent group's map, in the parent map's iteration order. A
// HashMap iterates its buckets in index order and, within a bucket, in
// insertion order (resizing splits buckets without reordering them). So the
// label order is fixed by the variable names ("<job_id>", …), their
// String.hashCode, the table size, and the order of the puts; varMap
// reproduces it. It yields exactly the orders of the reference's example
// lines for task, operator and KafkaSourceReader metrics (the 13 variables
// of the last one resize the table to 32 buckets, hence its different
// order).

// varMap is a Java HashMap<String, String> of metric group variables
// ("<host>" → "10.244.1.17"), reduced to what decides iteration order.
type varMap struct {
	keys, vals []string // insertion order
	capacity   int
}

func newVarMap() *varMap { return &varMap{capacity: 16} }

// put adds or replaces a variable (a replaced key keeps its position, as in
// HashMap) and doubles the table when the size exceeds 0.75 × capacity.
func (m *varMap) put(k, v string) {
	for i, key := range m.keys {
		if key == k {
			m.vals[i] = v
			return
		}
	}
	m.keys = append(m.keys, k)
	m.vals = append(m.vals, v)
	if len(m.keys) > m.capacity*3/4 {
		m.capacity *= 2
	}
}

// each calls f for every entry in HashMap iteration order.
func (m *varMap) each(f func(k, v string)) {
	idx := make([]int, len(m.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return m.bucket(m.keys[idx[a]]) < m.bucket(m.keys[idx[b]])
	})
	for _, i := range idx {
		f(m.keys[i], m.vals[i])
	}
}

func (m *varMap) bucket(k string) uint32 {
	h := uint32(assign.JavaStringHashCode(k))
	h ^= h >> 16 // HashMap.hash spreads the high bits
	return h & uint32(m.capacity-1)
}

// childVars builds a group's variable map the way AbstractMetricGroup does:
// own variables first (pairs of name, value), then the parent's entries.
func childVars(parent *varMap, own ...string) *varMap {
	m := newVarMap()
	for i := 0; i+1 < len(own); i += 2 {
		m.put(own[i], own[i+1])
	}
	if parent != nil {
		parent.each(m.put)
	}
	return m
}
