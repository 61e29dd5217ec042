package report

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/scaling"
)

func example(t *testing.T, name string) (scaling.Snapshot, scaling.Decision) {
	t.Helper()
	f, err := os.Open("../../scaling/examples/" + name)
	require.NoError(t, err)
	defer f.Close()
	s, err := scaling.ReadSnapshot(f)
	require.NoError(t, err)
	return s, scaling.Decide(s, scaling.DefaultPolicy(), scaling.History{}, s.WindowEnd)
}

const (
	src    = "cbc357ccb763df2852fee8c4fc7d55f2"
	window = "90bea66de1c231edf33913ecd54406c1"
)

// orders-surge.json: the window vertex goes 4 → 10 and the source 4 → 6
// (see cmd/flinkscale's TestDecideExitCodes for the working).
func TestReportOfARescale(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	r := New(d, s, Options{Source: "snapshot orders-surge.json", Namespace: "streaming"})
	require.True(t, r.Change)
	require.Len(t, r.Vertices, 2)
	assert.Equal(t, 10, r.Vertices[1].Recommended)
	assert.True(t, r.Vertices[1].Bottleneck)
	assert.Equal(t, 4, r.Before.Slots)
	assert.Equal(t, 10, r.After.Slots)
	require.NotNil(t, r.Patch)

	// The patch is the apply configuration of the managed fields only:
	// native mode, slots per TaskManager unchanged (2) → just the overrides.
	var p map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(r.Patch.YAML), &p))
	assert.Equal(t, map[string]any{
		"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
		"metadata": map[string]any{"name": "orders_agg", "namespace": "streaming"},
		"spec": map[string]any{"flinkConfiguration": map[string]any{
			"pipeline.jobvertex-parallelism-overrides": window + ":10," + src + ":6"}},
	}, p)

	// Standalone mode also sets spec.job.parallelism and the replicas.
	r = New(d, s, Options{Mode: "standalone"})
	require.NoError(t, yaml.Unmarshal([]byte(r.Patch.YAML), &p))
	spec := p["spec"].(map[string]any)
	assert.Equal(t, float64(10), spec["job"].(map[string]any)["parallelism"])
	assert.Equal(t, float64(5), spec["taskManager"].(map[string]any)["replicas"])
}

func TestRenderings(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	r := New(d, s, Options{Source: "snapshot orders-surge.json"})

	var b bytes.Buffer
	require.NoError(t, r.Write(&b, "table"))
	out := b.String()
	for _, want := range []string{"orders_agg: Scale", "4 → 10", "164% → 67%", "(* the bottleneck now)", "resources: 4 slots", "patch (server-side apply", "Overloaded"} {
		assert.Contains(t, out, want)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "VERTEX") || strings.Contains(line, "ms/s  ") {
			assert.LessOrEqual(t, len([]rune(line)), 120, "fits a terminal: %q", line)
		}
	}

	b.Reset()
	require.NoError(t, r.Write(&b, "json"))
	var back Report
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	assert.Equal(t, Version, back.Version)
	assert.Equal(t, r.Vertices, back.Vertices)

	b.Reset()
	require.NoError(t, r.Write(&b, "yaml"))
	var y Report
	require.NoError(t, yaml.Unmarshal(b.Bytes(), &y))
	assert.Equal(t, r.Summary, y.Summary)

	b.Reset()
	require.NoError(t, r.Write(&b, "markdown"))
	md := b.String()
	assert.Contains(t, md, "# flinkscale recommendation: orders\\_agg")
	assert.Contains(t, md, "| slots | 4 | 10 |")
	assert.Contains(t, md, "```yaml\n")
	assert.Contains(t, md, "Window(TumblingEventTimeWindows(60000)) -&gt; Sink: Print", "markup in names is escaped")

	assert.Error(t, r.Write(&b, "html"))
}

// idle-night.json holds: no change, no patch.
func TestReportOfAHold(t *testing.T) {
	s, d := example(t, "idle-night.json")
	r := New(d, s, Options{})
	assert.False(t, r.Change)
	assert.Nil(t, r.Patch)
	var b bytes.Buffer
	require.NoError(t, r.WriteTable(&b))
	assert.NotContains(t, b.String(), "patch")
}
