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
// exactly as the series prometheus.MustNewConstMetric makes (constGauges):
// a fleet of sized decisions, a policy with memory and network buffers, a
// vertex whose name is not UTF-8 and one renamed, and policies in several
// namespaces with deployments named unlike them.
func TestGaugeStoreExposition(t *testing.T) {
	m := NewMetrics(nil)
	at := time.Unix(1700000000, 0)
	recordFleet(m, 30, at)
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	d := fleetDecision(at)
	d.Vertices[3].Name = "Enrich \xff -> Sink"
	d.Memory = &scaling.MemoryRecommendation{}
	odd := m.policy(testPolicy("a-ns", "zz", "aa-deployment"))
	odd.decision(d, band, 3000)
	d.Vertices[5].Name = "Renamed"
	odd.decision(d, band, 3000)

	reg, ref := prometheus.NewRegistry(), prometheus.NewRegistry()
	reg.MustRegister(m.gauges)
	ref.MustRegister(constGauges{m.gauges})
	got, want := exposition(t, reg), exposition(t, ref)
	if got != want {
		t.Fatalf("the store's exposition differs from the reference's:\n%s", firstDifference(got, want))
	}
	assert.Contains(t, got, "vertex=\"Enrich \uFFFD -> Sink\"")
	if !assert.NotContains(t, got, `policy="zz",vertex="Operator 5"`, "the renamed vertex's old series is gone") {
		return
	}
	assert.Contains(t, got, `policy="zz",vertex="Renamed",vertex_id="`+d.Vertices[5].ID+`"`)

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
