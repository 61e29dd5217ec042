package report

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"html"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
)

var imgSrc = regexp.MustCompile(`<img src="([^"]*)"`)

// svgs returns the charts embedded in a page, decoded, and checks each is
// well-formed XML with an <svg> root.
func svgs(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, m := range imgSrc.FindAllStringSubmatch(page, -1) {
		data, ok := strings.CutPrefix(html.UnescapeString(m[1]), "data:image/svg+xml;base64,")
		require.True(t, ok, "an image is an embedded SVG: %.60s", m[1])
		b, err := base64.StdEncoding.DecodeString(data)
		require.NoError(t, err)
		dec := xml.NewDecoder(bytes.NewReader(b))
		root := ""
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "chart %d is well-formed XML", len(out))
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		assert.Equal(t, "svg", root)
		out = append(out, string(b))
	}
	return out
}

// selfContained fails on anything the page would load from elsewhere.
func selfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<script", "<link", "@import", "url(", `src="http`, `href="http`, `src="//`} {
		assert.NotContains(t, page, bad)
	}
}

func TestHTMLReportOfARescale(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	pol := scaling.DefaultPolicy()
	obs := []Point{
		{At: d.At.Add(-2 * time.Minute), LagRecords: ptr(4.5e6), ArrivalRate: ptr(25000)},
		{At: d.At.Add(-time.Minute), LagRecords: ptr(4.7e6), ArrivalRate: ptr(25500), ProcessedRate: ptr(15200)},
		{At: d.At, LagRecords: ptr(4.82e6), ArrivalRate: ptr(24800), ProcessedRate: ptr(15235)},
	}
	r := New(d, s, Options{Source: "snapshot orders-surge.json", Namespace: "streaming", Policy: &pol, Observed: obs})
	var b bytes.Buffer
	require.NoError(t, r.Write(&b, "html"))
	page := b.String()

	assert.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	selfContained(t, page)
	charts := svgs(t, page)
	// Utilization, parallelism, rates, lag, observed rates.
	require.Len(t, charts, 5)
	for i, title := range []string{"Utilization at the target rate", "Parallelism", "Rates", "Consumer lag", "Observed rates"} {
		assert.Contains(t, charts[i], title)
	}
	assert.Contains(t, charts[0], "band 40–85 %", "the policy's band is drawn")
	assert.Contains(t, charts[3], "observed")
	for _, want := range []string{
		"<title>flinkscale recommendation: orders_agg</title>",
		`<span class="badge Scale">Scale</span>`,
		"4 → <strong>10</strong>", "164 % → 67 %", "bottleneck",
		"Window(TumblingEventTimeWindows(60000)) -&gt; Sink: Print", // escaped
		"pipeline.jobvertex-parallelism-overrides: " + window + ":10," + src + ":4",
		"<code>Overloaded</code>", "4.82M", "2m34s",
	} {
		assert.Contains(t, page, want)
	}
}

func TestHTMLReportOfAHoldAndOfNothing(t *testing.T) {
	s, d := example(t, "idle-night.json")
	var b bytes.Buffer
	require.NoError(t, New(d, s, Options{}).WriteHTML(&b))
	page := b.String()
	selfContained(t, page)
	assert.Contains(t, page, `<span class="badge Hold">Hold</span>`)
	assert.Contains(t, page, "None: nothing would change.")
	assert.NotEmpty(t, svgs(t, page))

	// A hold on unreadable data: no vertex, no chart, still a page.
	d = scaling.Decide(scaling.Snapshot{JobState: "RUNNING"}, scaling.DefaultPolicy(), scaling.History{}, time.Now())
	b.Reset()
	require.NoError(t, New(d, scaling.Snapshot{}, Options{}).WriteHTML(&b))
	assert.Empty(t, svgs(t, b.String()))
	assert.Contains(t, b.String(), "<h1>job")

	// Names are text, never markup.
	s, d = example(t, "orders-surge.json")
	s.JobName = `<script>alert(1)</script>`
	b.Reset()
	require.NoError(t, New(d, s, Options{}).WriteHTML(&b))
	assert.NotContains(t, b.String(), "<script>")
	assert.Contains(t, b.String(), "&lt;script&gt;")
}

func ptr(x float64) *float64 { return &x }

// The lag projection, one source and one vertex: lag L = 1000, arrival
// A = 100/s, capacity now 80/s, after 200/s, downtime D = 10 s, catch-up
// 20 s (= (L + A·D) / (200 − 100), as the model computes it).
func TestLagProjection(t *testing.T) {
	r := Report{
		Change: true, LagRecords: 1000, PredictedDowntime: "10s", PredictedCatchUp: "20s",
		Vertices: []Vertex{{Source: true, TargetRate: 100, TrueRate: 80, CapacityAfter: 200}},
	}
	grows := r
	grows.LagGrows = true
	grows.Vertices = []Vertex{{Source: true, TargetRate: 100, TrueRate: 80, CapacityAfter: 90}}
	for _, c := range []struct {
		name  string
		r     Report
		t     float64
		apply bool
		want  float64
	}{
		{"now", r, 0, true, 1000},
		{"end of the restart: L + A·D = 1000 + 100·10", r, 10, true, 2000},
		{"half the catch-up: 2000·(1 − 10/20)", r, 20, true, 1000},
		{"drained at D + catch-up", r, 30, true, 0},
		{"stays drained", r, 300, true, 0},
		{"nothing changes: L + (A − 80)·t = 1000 + 20·10", r, 10, false, 1200},
		{"a limit binds: 2000 + (100 − 90)·(20 − 10)", grows, 20, true, 2100},
	} {
		assert.InDelta(t, c.want, c.r.lagProjection(c.t, c.apply), 1e-9, c.name)
	}
	for _, x := range []float64{0, 5, 10, 15, 29, 31, 1e4} {
		assert.False(t, math.IsNaN(r.lagProjection(x, true)))
		assert.GreaterOrEqual(t, r.lagProjection(x, true), 0.0)
	}
}

func TestSITicks(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 950: "950", 2500: "2.5k", 6e6: "6M", 1.25e9: "1.25G"} {
		assert.Equal(t, want, si(x))
	}
}
