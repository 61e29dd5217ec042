package controllers

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flinkscale/flinkscale/scaling"
)

// fleetDecision is a sized decision of a 10-vertex job, as make
// bench-scale's jobs get every poll.
func fleetDecision(at time.Time) scaling.Decision {
	d := scaling.Decision{At: at, Action: scaling.ActionHold, Sized: true, LagRecords: 100, LagSeconds: 1,
		Current: scaling.Plan{Slots: 4, Cores: 4}, Recommended: scaling.Plan{Slots: 4, Cores: 4},
		Reasons: []scaling.Reason{{Code: scaling.ReasonWithinBand}}}
	for v := 0; v < 10; v++ {
		d.Vertices = append(d.Vertices, scaling.VertexDecision{ID: fmt.Sprintf("%032x", v+1), Name: fmt.Sprintf("Operator %d", v),
			Current: 4, Recommended: 4, UtilizationNow: 0.6, UtilizationAfter: 0.6, TrueProcessingRate: 5000, TargetRate: 3000, BackPressuredMsPerSecond: 10})
	}
	return d
}

// recordFleet records one decision for each of n policies, as a poll of
// every job does.
func recordFleet(m *Metrics, n int, at time.Time) {
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	d := fleetDecision(at)
	for i := 0; i < n; i++ {
		pm := m.policy(testPolicy(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("job-%d", i), fmt.Sprintf("job-%d", i)))
		pm.decision(d, band, 3000)
	}
}

// recordPoll records, for each of n policies, what its first poll does:
// the series started at zero, a collection from Flink and from Kafka, and
// a decision (a hold: the decision counters, a reason and a hold reason).
func recordPoll(m *Metrics, n int, at time.Time) {
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	d := fleetDecision(at)
	for i := 0; i < n; i++ {
		pm := m.policy(testPolicy(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("job-%d", i), fmt.Sprintf("job-%d", i)))
		pm.start()
		pm.collection(SourceFlink, 40*time.Millisecond, nil)
		pm.collection(SourceKafka, 15*time.Millisecond, nil)
		pm.decision(d, band, 3000)
	}
}

// The metrics of a fleet of 1,000 jobs of 10 vertices: what they keep on
// the heap (B/job after a decision each, B/policy after a typical poll:
// after a GC), what recording every job's decision once costs (one poll of
// the fleet), and what a scrape of them all costs.
//
//	go test ./controllers -run '^$' -bench MetricsFleet -benchmem
func BenchmarkMetricsFleet(b *testing.B) {
	const jobs = 1000
	at := time.Unix(1700000000, 0)
	// retained reports the heap the metrics keep once record has recorded
	// the fleet, in bytes per job (unit).
	retained := func(b *testing.B, record func(*Metrics, int, time.Time), unit string) {
		var ms runtime.MemStats
		for i := 0; i < b.N; i++ {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			m := NewMetrics(prometheus.NewRegistry())
			record(m, jobs, at)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc-before)/jobs, unit)
			runtime.KeepAlive(m)
		}
	}
	b.Run("retained", func(b *testing.B) { retained(b, recordFleet, "B/job") })
	// What a policy's metrics keep after a typical first poll: its series
	// started (start), a decision, and a collection from each source.
	b.Run("retained-poll", func(b *testing.B) { retained(b, recordPoll, "B/policy") })
	b.Run("poll", func(b *testing.B) {
		m := NewMetrics(prometheus.NewRegistry())
		recordFleet(m, jobs, at)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			recordFleet(m, jobs, at.Add(time.Duration(i)*time.Second))
		}
	})
	// A scrape of the fleet's series as the controller serves them
	// (NewGatheredMetrics: the series gathered by their store), and
	// through a registry: the store as a Collector, and the same series
	// made as const metrics, as the gauges were before 2026-12-06
	// (constMetrics), side by side.
	scrape := func(b *testing.B, metrics func() (*Metrics, prometheus.Gatherer), record func(*Metrics, int, time.Time)) {
		m, g := metrics()
		record(m, jobs, at)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := g.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	}
	registered := func(collector func(*gaugeStore) prometheus.Collector) func() (*Metrics, prometheus.Gatherer) {
		return func() (*Metrics, prometheus.Gatherer) {
			m := NewMetrics(nil)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collector(m.gauges))
			return m, reg
		}
	}
	gathered := func() (*Metrics, prometheus.Gatherer) {
		reg := prometheus.NewRegistry()
		return NewGatheredMetrics(reg, reg)
	}
	b.Run("scrape", func(b *testing.B) { scrape(b, gathered, recordFleet) })
	// The same after a typical poll of each job, which adds its counters
	// and histograms (a dozen series) to its gauges.
	b.Run("scrape-poll", func(b *testing.B) { scrape(b, gathered, recordPoll) })
	b.Run("scrape-registry", func(b *testing.B) {
		scrape(b, registered(func(s *gaugeStore) prometheus.Collector { return s }), recordFleet)
	})
	b.Run("scrape-const-metrics", func(b *testing.B) {
		scrape(b, registered(func(s *gaugeStore) prometheus.Collector { return constMetrics{s} }), recordFleet)
	})
}

// constMetrics exports a store's series as the store exported its gauges
// before 2026-12-06, the reference for TestGaugeStoreExposition and the
// scrape benchmark: each series made per scrape by
// prometheus.MustNewConstMetric (its label values validated and paired,
// sorted by name; a histogram's by MustNewConstHistogram), in the records'
// map order, which the registry then sorts.
type constMetrics struct{ s *gaugeStore }

func (c constMetrics) Describe(ch chan<- *prometheus.Desc) { c.s.Describe(ch) }

func (c constMetrics) Collect(ch chan<- prometheus.Metric) {
	// perm[f][i]: the position in family f's label values of the i-th
	// label in name order.
	var perm [numFamilies][]int
	for f := range perm {
		names := family(f).labelNames()
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		for _, n := range sorted {
			perm[f] = append(perm[f], slices.Index(names, n))
		}
	}
	values := func(f family, labels []*dto.LabelPair) []string {
		values := make([]string, len(labels))
		for i, lp := range labels {
			values[perm[f][i]] = lp.GetValue()
		}
		return values
	}
	c.s.mu.RLock()
	defer c.s.mu.RUnlock()
	for _, g := range c.s.pols { // map order, as before
		g.series(func(f family, v float64, labels []*dto.LabelPair) {
			ch <- prometheus.MustNewConstMetric(c.s.descs[f], prometheus.GaugeValue, v, values(f, labels)...)
		})
		g.counters.series(func(f family, v float64, h *histogram, own [2]*dto.LabelPair) {
			lv := values(f, withPairs(g.labels, own))
			if h == nil {
				ch <- prometheus.MustNewConstMetric(c.s.descs[f], prometheus.CounterValue, v, lv...)
				return
			}
			bounds := familySpecs[f].buckets
			cum := make([]uint64, len(bounds))
			h.cumulative(cum)
			buckets := map[float64]uint64{}
			for i, b := range bounds {
				buckets[b] = cum[i]
			}
			ch <- prometheus.MustNewConstHistogram(c.s.descs[f], h.count, h.sum, buckets, lv...)
		})
	}
}
