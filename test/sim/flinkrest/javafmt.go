package flinkrest

import (
	"math"
	"slices"
	"strconv"

	"github.com/flinkscale/flinkscale/scaling/assign"
	"github.com/flinkscale/flinkscale/test/sim/java"
)

// javaDouble is Java's Double.toString, the form Flink writes metric values
// and JSON doubles in.
func javaDouble(f float64) string { return java.DoubleToString(f) }

// javaLong is a value Flink stores as a long (counters, long gauges).
func javaLong(f float64) string {
	return strconv.FormatInt(toLong(f), 10)
}

// toLong is Java's (long) cast: NaN is 0, out-of-range values saturate.
func toLong(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// jdouble is a Java double as Jackson writes it: a JSON number in
// Double.toString form, and, with QUOTE_NON_NUMERIC_NUMBERS (Jackson's
// default), NaN and the infinities as the strings "NaN", "Infinity",
// "-Infinity".
type jdouble float64

func (d jdouble) MarshalJSON() ([]byte, error) {
	f := float64(d)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte(`"` + javaDouble(f) + `"`), nil
	}
	return []byte(javaDouble(f)), nil
}

// javaHashOrder returns keys (first occurrence kept) in the order a
// java.util.HashMap created with the given initial capacity (0: the default
// 16) iterates them after inserting them in this order: by bucket of the
// final table, then by insertion. Flink builds many JSON objects and metric
// lists from HashMaps and HashSets of strings, so this is the order a real
// JobManager emits; it is deterministic for String keys.
func javaHashOrder(keys []string, initialCapacity int) []string {
	seen := make(map[string]bool, len(keys))
	uniq := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	capacity := 16
	if initialCapacity > 0 {
		capacity = 1
		for capacity < initialCapacity {
			capacity <<= 1
		}
	}
	for float64(len(uniq)) > 0.75*float64(capacity) {
		capacity <<= 1
	}
	// Each key's bucket, computed once (not at every comparison).
	type keyed struct {
		key    string
		bucket int
	}
	ks := make([]keyed, len(uniq))
	for i, k := range uniq {
		h := uint32(assign.JavaStringHashCode(k))
		ks[i] = keyed{k, int((h ^ (h >> 16)) & uint32(capacity-1))}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return a.bucket - b.bucket })
	for i, k := range ks {
		uniq[i] = k.key
	}
	return uniq
}

// javaHashSetCapacity is the initial capacity of new HashSet<>(collection).
func javaHashSetCapacity(n int) int {
	return max(int(float32(n)/0.75)+1, 16)
}

// percentile is Apache Commons Math's Percentile.evaluate(values, p) with
// the default (LEGACY) estimation, which Flink uses for checkpoint summary
// quantiles and task detail aggregates: NaN for no values.
func percentile(values []float64, p float64) float64 {
	n := len(values)
	if n == 0 {
		return math.NaN()
	}
	if n == 1 {
		return values[0]
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	pos := p * float64(n+1) / 100
	fpos := math.Floor(pos)
	intPos := int(fpos)
	dif := pos - fpos
	if pos < 1 {
		return sorted[0]
	}
	if pos >= float64(n) {
		return sorted[n-1]
	}
	lower := sorted[intPos-1]
	upper := sorted[intPos]
	return lower + dif*(upper-lower)
}
