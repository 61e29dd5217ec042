package report

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/controllers/target"
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

// orders-surge.json: the window vertex goes 4 → 10; the source stays at 4
// (at 6, with the free slots of the last TaskManager, it would run below
// halfway from the minimum utilization to the target)
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
			"pipeline.jobvertex-parallelism-overrides": window + ":10," + src + ":4"}},
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

	assert.Error(t, r.Write(&b, "pdf"))
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

// A report written as JSON reads back equal, and renders the same; bad
// input is an error.
func TestReadRoundTrip(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	pol := scaling.DefaultPolicy()
	r := New(d, s, Options{Source: "snapshot", Policy: &pol, Observed: []Point{{At: d.At, LagRecords: ptr(5)}}})
	var b bytes.Buffer
	require.NoError(t, r.WriteJSON(&b))
	back, err := Read(bytes.NewReader(b.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, r.Vertices, back.Vertices)
	assert.Equal(t, r.Observed, back.Observed)
	assert.True(t, r.At.Equal(back.At))
	var m1, m2 bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&m1))
	require.NoError(t, back.WriteMarkdown(&m2))
	assert.Equal(t, m1.String(), m2.String())

	for name, in := range map[string]string{
		"empty":         "",
		"not JSON":      "# flinkscale recommendation",
		"unknown field": `{"version":"flinkscale.io/report/v1","action":"Hold","bogus":1}`,
		"other version": `{"version":"flinkscale.io/report/v9","action":"Hold"}`,
		"bad action":    `{"version":"flinkscale.io/report/v1","action":"Jump"}`,
		"contradiction": `{"version":"flinkscale.io/report/v1","action":"Hold","change":true}`,
		"two values":    `{"version":"flinkscale.io/report/v1","action":"Hold"} {}`,
	} {
		_, err := Read(strings.NewReader(in))
		assert.Error(t, err, name)
	}
}

// FuzzRead: any input is read or refused, never a panic; what is read
// renders in every format.
func FuzzRead(f *testing.F) {
	s, d := scalingExample(f, "orders-surge.json")
	var b bytes.Buffer
	_ = New(d, s, Options{}).WriteJSON(&b)
	f.Add(b.Bytes())
	f.Add([]byte(`{"version":"flinkscale.io/report/v1","action":"Hold","vertices":[{"id":"a","current":-3,"utilizationNow":1e308}]}`))
	f.Add([]byte(`{"version":"flinkscale.io/report/v1","action":"Scale","change":true,"predictedDowntime":"-5s","lagRecords":-1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, format := range Formats {
			if err := r.Write(io.Discard, format); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
		}
	})
}

func scalingExample(f *testing.F, name string) (scaling.Snapshot, scaling.Decision) {
	b, err := os.ReadFile("../../scaling/examples/" + name)
	if err != nil {
		f.Fatal(err)
	}
	s, err := scaling.ReadSnapshot(bytes.NewReader(b))
	if err != nil {
		f.Fatal(err)
	}
	return s, scaling.Decide(s, scaling.DefaultPolicy(), scaling.History{}, s.WindowEnd)
}

// Vertex names are user input: characters YAML forbids still render, and
// read back as they were.
func TestYAMLWithControlCharacters(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	r := New(d, s, Options{})
	r.Vertices[0].Name = "odd\x7f\u0080\u0085\u2028\ufffe name"
	var b bytes.Buffer
	require.NoError(t, r.WriteYAML(&b))
	var back Report
	require.NoError(t, yaml.Unmarshal(b.Bytes(), &back))
	assert.Equal(t, r.Vertices[0].Name, back.Vertices[0].Name)
}

// A hold on data the model cannot trust shows the vertices and the
// reasons, never a column of made-up zeros.
func TestUnsizedHold(t *testing.T) {
	s, _ := example(t, "orders-surge.json")
	s.JobState = "CREATED"
	d := scaling.Decide(s, scaling.DefaultPolicy(), scaling.History{}, s.WindowEnd)
	require.False(t, d.Sized)
	r := New(d, s, Options{})
	var b bytes.Buffer
	require.NoError(t, r.WriteTable(&b))
	assert.Contains(t, b.String(), "not sized")
	assert.Contains(t, b.String(), "JobNotRunning")
	assert.NotContains(t, b.String(), "0% → 0%")
	assert.NotContains(t, b.String(), "resources:")

	b.Reset()
	require.NoError(t, r.WriteMarkdown(&b))
	assert.Contains(t, b.String(), "Not sized")
	assert.Contains(t, b.String(), "| Source: Kafka Source -&gt; Map | 4 |")
	assert.NotContains(t, b.String(), "## Plan")

	b.Reset()
	require.NoError(t, r.WriteHTML(&b))
	assert.Contains(t, b.String(), "<strong>Not sized:</strong>")
	assert.NotContains(t, b.String(), "Predicted downtime")
	assert.Len(t, svgs(t, b.String()), 1, "only the parallelism chart")
}

// A policy's report says what it scales and how; without the operator it
// lists the REST call and the TaskManager scale instead of a patch, and a
// job nothing can rescale gets neither.
func TestReportOfEachTargetKind(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	require.True(t, d.Action == scaling.ActionScale)

	sj := &target.Deployment{Namespace: "streaming", Name: "orders-job", Kind: target.SessionJobGVK.Kind, Cluster: "shared", Mode: "native",
		FlinkVersion: "v1_20", Adaptive: true, Slots: 2, Configuration: map[string]string{}}
	r := New(d, s, Options{Target: sj})
	assert.Equal(t, "FlinkSessionJob", r.TargetKind)
	assert.Equal(t, target.PathInPlace, r.RescalePath)
	require.NotNil(t, r.Patch)
	var p map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(r.Patch.YAML), &p))
	assert.Equal(t, "FlinkSessionJob", p["kind"])
	assert.Equal(t, map[string]any{"flinkConfiguration": map[string]any{
		"pipeline.jobvertex-parallelism-overrides": window + ":10," + src + ":4"}}, p["spec"], "only the overrides: the slots are the cluster's")

	// Standalone, adaptive, TaskManager Deployment at 2: 10 slots of 2 →
	// 5 TaskManagers, scaled first; then the requirements.
	cl := &target.Deployment{Namespace: "streaming", Name: "orders-jm", Kind: target.KindDeployment, Mode: "standalone", JobID: s.JobID,
		FlinkVersion: "v1_20", Adaptive: true, Slots: 2, TaskManagerDeployment: "orders-tm", TaskManagerReplicas: 2, Configuration: map[string]string{}}
	r = New(d, s, Options{Target: cl})
	assert.Equal(t, target.PathInPlaceAndTaskManagers, r.RescalePath)
	assert.Nil(t, r.Patch)
	assert.Equal(t, []string{
		"PUT /jobs/" + s.JobID + "/resource-requirements with upper bounds " + window + ":10," + src + ":4 (lower bound 1)",
		"scale Deployment orders-tm from 2 to 5 replicas (first)",
	}, r.Actions)
	var md bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "## Actions")
	assert.Contains(t, md.String(), "rescale path **InPlaceAndTaskManagers**")

	cl.Adaptive = false
	r = New(d, s, Options{Target: cl})
	assert.Equal(t, target.PathRecommendOnly, r.RescalePath)
	assert.Nil(t, r.Patch)
	assert.Empty(t, r.Actions)
	assert.Contains(t, r.RescalePathReason, "default scheduler")
}

// The memory recommendation is in every rendering: the parts now and
// recommended, the network buffers, and whether the restart applies it.
func TestReportOfMemory(t *testing.T) {
	s, _ := example(t, "orders-surge.json")
	s.FlinkVersion = "1.20"
	s.TaskManagers.Memory = &scaling.Memory{
		ProcessBytes: 2 << 30, HeapBytes: 600 << 20, ManagedBytes: 500 << 20, NetworkBytes: 2 << 20,
		MetaspaceBytes: 256 << 20, NetworkSegmentsTotal: scaling.F(64),
		HeapUsedBytes: &scaling.Stat{Avg: scaling.F(300 << 20), Max: scaling.F(450 << 20)}, HeapMaxBytes: scaling.F(600 << 20),
	}
	for _, mode := range []scaling.MemoryMode{scaling.MemoryRecommend, scaling.MemoryApply} {
		p := scaling.DefaultPolicy()
		p.Memory.Mode = mode
		d := scaling.Decide(s, p, scaling.History{}, s.WindowEnd)
		require.NotNil(t, d.Memory, "%s", d.Summary)
		r := New(d, s, Options{Source: "snapshot"})
		require.NotNil(t, r.Memory)
		assert.Equal(t, mode == scaling.MemoryApply, r.Memory.Applied)
		assert.Equal(t, d.Memory.Network.Required, r.Memory.BuffersRequired)
		assert.Equal(t, int64(64), r.Memory.BuffersAvailable)
		heap := r.Memory.Parts[1]
		require.Equal(t, "heap", heap.Name)
		assert.Equal(t, 600.0, heap.CurrentMiB)
		assert.InDelta(t, float64(d.Memory.Recommended.HeapBytes())/(1<<20), heap.RecommendedMiB, 1e-9)

		want := "recommended, not applied"
		if mode == scaling.MemoryApply {
			want = "set in the same restart"
		}
		for _, format := range []string{"table", "markdown", "html"} {
			var b bytes.Buffer
			require.NoError(t, r.Write(&b, format))
			out := b.String()
			assert.Contains(t, out, want, format)
			assert.Contains(t, out, "metaspace", format)
			assert.Regexp(t, `needs \d+ (of \d+ )?per TaskManager`, out, format)
		}
		var b bytes.Buffer
		require.NoError(t, r.Write(&b, "json"))
		back, err := Read(&b)
		require.NoError(t, err)
		assert.Equal(t, r.Memory, back.Memory)
	}
}
