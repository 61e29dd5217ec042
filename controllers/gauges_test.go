package controllers

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

// exposition is what a scrape of reg returns, as Prometheus' text format.
func exposition(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		require.NoError(t, enc.Encode(mf))
	}
	return buf.String()
}

// The store's series, labels made once and sent in label order, scrape
// exactly as the series prometheus.MustNewConstMetric makes (constMetrics):
// a fleet of sized decisions and polls (counters, histograms), a policy
// with memory and network buffers, rescales and failed collections, a
// vertex whose name is not UTF-8 and one renamed, and policies in several
// namespaces with deployments named unlike them.
func TestGaugeStoreExposition(t *testing.T) {
	m := NewMetrics(nil)
	at := time.Unix(1700000000, 0)
	recordFleet(m, 30, at)
	recordPoll(m, 30, at)
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	d := fleetDecision(at)
	d.Vertices[3].Name = "Enrich \xff -> Sink"
	d.Memory = &scaling.MemoryRecommendation{}
	odd := m.policy(testPolicy("a-ns", "zz", "aa-deployment"))
	odd.decision(d, band, 3000)
	d.Vertices[5].Name = "Renamed"
	odd.decision(d, band, 3000)
	odd.start()
	odd.blocked(v1alpha1.ReasonDryRun)
	odd.rescaleStarted()
	odd.rescaleFinished(scaling.OutcomeSucceeded, 95*time.Second)
	odd.rescaleFinished(scaling.OutcomeFailed, 0)
	odd.collection(SourceKafka, 3*time.Second, assert.AnError)

	reg, ref := prometheus.NewRegistry(), prometheus.NewRegistry()
	reg.MustRegister(m.gauges)
	ref.MustRegister(constMetrics{m.gauges})
	got, want := exposition(t, reg), exposition(t, ref)
	if got != want {
		t.Fatalf("the store's exposition differs from the reference's:\n%s", firstDifference(got, want))
	}
	// The store's own Gather (families sorted by name, series by label
	// values, as a registry's) gives the same.
	if own := exposition(t, m.gauges); own != want {
		t.Fatalf("the store's Gather differs from the reference's:\n%s", firstDifference(own, want))
	}
	assert.Contains(t, got, "vertex=\"Enrich \uFFFD -> Sink\"")
	if !assert.NotContains(t, got, `policy="zz",vertex="Operator 5"`, "the renamed vertex's old series is gone") {
		return
	}
	assert.Contains(t, got, `policy="zz",vertex="Renamed",vertex_id="`+d.Vertices[5].ID+`"`)
	for _, series := range []string{
		`flinkscale_holds_total{deployment="aa-deployment",namespace="a-ns",policy="zz",reason="DryRun"} 1`,
		`flinkscale_rescale_downtime_seconds_bucket{deployment="aa-deployment",namespace="a-ns",policy="zz",le="120"} 1`,
		`flinkscale_collection_duration_seconds_count{deployment="job-9",namespace="ns-9",policy="job-9",source="kafka"} 1`,
	} {
		assert.Contains(t, got, series+"\n")
	}

	// Each series' labels are sorted by name and at full capacity (a
	// registry wrapper that appends labels copies them).
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, s := range mf.Metric {
			assert.True(t, sortedLabels(s.Label), "%s %v", mf.GetName(), s.Label)
			assert.Equal(t, len(s.Label), cap(s.Label))
		}
	}
}

func sortedLabels(ls []*dto.LabelPair) bool {
	for i := 1; i < len(ls); i++ {
		if ls[i-1].GetName() >= ls[i].GetName() {
			return false
		}
	}
	return true
}

// firstDifference is the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < min(len(g), len(w)); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}

// What NewGatheredMetrics serves (the registry's families and the gauges'
// merged by name) is what a registry with every collector registered
// serves; a family both would serve is an error, and served once.
func TestGatheredMetrics(t *testing.T) {
	at := time.Unix(1700000000, 0)
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	record := func(m *Metrics) {
		recordFleet(m, 20, at)
		d := fleetDecision(at)
		d.Memory = &scaling.MemoryRecommendation{}
		pm := m.policy(testPolicy("b-ns", "other", "a-deployment"))
		pm.decision(d, band, 3000)
		pm.start()
		pm.collection(SourceFlink, 20*time.Millisecond, nil)
		pm.rescaleFinished(scaling.OutcomeSucceeded, 30*time.Second)
	}
	reg := prometheus.NewRegistry()
	m, g := NewGatheredMetrics(reg, reg)
	record(m)
	whole := prometheus.NewRegistry()
	record(NewMetrics(whole))
	got, want := exposition(t, g), exposition(t, whole)
	if got != want {
		t.Fatalf("the gathered metrics differ from a registry's:\n%s", firstDifference(got, want))
	}
	assert.Contains(t, got, "flinkscale_vertex_parallelism{")
	assert.Contains(t, got, "flinkscale_rescales_started_total{")

	twice := prometheus.NewRegistry()
	twice.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "flinkscale_vertex_parallelism", Help: "a clash"}))
	mfs, err := mergedGatherer{base: twice, own: m.gauges}.Gather()
	require.ErrorContains(t, err, "metric family flinkscale_vertex_parallelism gathered twice")
	names := map[string]int{}
	for _, mf := range mfs {
		names[mf.GetName()]++
	}
	assert.Equal(t, 1, names["flinkscale_vertex_parallelism"])
	assert.Equal(t, 1, names["flinkscale_lag_records"])
}
