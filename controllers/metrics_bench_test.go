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

// The metrics of a fleet of 1,000 jobs of 10 vertices: what they keep on
// the heap (B/job, after a GC), what recording every job's decision once
// costs (one poll of the fleet), and what a scrape of them all costs.
//
//	go test ./controllers -run '^$' -bench MetricsFleet -benchmem
func BenchmarkMetricsFleet(b *testing.B) {
	const jobs = 1000
	at := time.Unix(1700000000, 0)
	b.Run("retained", func(b *testing.B) {
		var ms runtime.MemStats
		for i := 0; i < b.N; i++ {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			m := NewMetrics(prometheus.NewRegistry())
			recordFleet(m, jobs, at)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc-before)/jobs, "B/job")
			runtime.KeepAlive(m)
		}
	})
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
	// (NewGatheredMetrics: the gauges gathered by their store), and
	// through a registry: the store as a Collector, and the same series
	// made as before 2026-12-06 (constGauges), side by side.
	scrape := func(b *testing.B, metrics func() (*Metrics, prometheus.Gatherer)) {
		m, g := metrics()
		recordFleet(m, jobs, at)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := g.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	}
	registered := func(gauges func(*gaugeStore) prometheus.Collector) func() (*Metrics, prometheus.Gatherer) {
		return func() (*Metrics, prometheus.Gatherer) {
			m := NewMetrics(nil)
			reg := prometheus.NewRegistry()
			reg.MustRegister(gauges(m.gauges))
			for _, c := range m.collectors()[1:] { // all but m.gauges, the first
				reg.MustRegister(c)
			}
			return m, reg
		}
	}
	b.Run("scrape", func(b *testing.B) {
		scrape(b, func() (*Metrics, prometheus.Gatherer) {
			reg := prometheus.NewRegistry()
			return NewGatheredMetrics(reg, reg)
		})
	})
	b.Run("scrape-registry", func(b *testing.B) {
		scrape(b, registered(func(s *gaugeStore) prometheus.Collector { return s }))
	})
	b.Run("scrape-const-metrics", func(b *testing.B) {
		scrape(b, registered(func(s *gaugeStore) prometheus.Collector { return constGauges{s} }))
	})
}

// constGauges exports a store's series as the store did before
// 2026-12-06, the reference for TestGaugeStoreExposition and the scrape
// benchmark: each series made per scrape by prometheus.MustNewConstMetric
// (its label values validated and paired, sorted by name), in the
// records' map order, which the registry then sorts.
type constGauges struct{ s *gaugeStore }

func (c constGauges) Describe(ch chan<- *prometheus.Desc) { c.s.Describe(ch) }

func (c constGauges) Collect(ch chan<- prometheus.Metric) {
	// perm[f][i]: the position in family f's label values of the i-th
	// label in name order.
	var perm [numGauges][]int
	for f := range perm {
		names := gaugeFamily(f).labelNames()
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		for _, n := range sorted {
			perm[f] = append(perm[f], slices.Index(names, n))
		}
	}
	c.s.mu.RLock()
	defer c.s.mu.RUnlock()
	for _, g := range c.s.pols { // map order, as before
		g.series(func(f gaugeFamily, v float64, labels []*dto.LabelPair) {
			values := make([]string, len(labels))
			for i, lp := range labels {
				values[perm[f][i]] = lp.GetValue()
			}
			ch <- prometheus.MustNewConstMetric(c.s.descs[f], prometheus.GaugeValue, v, values...)
		})
	}
}
