package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/scaling/examples"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
)

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func example(t *testing.T, name string) string {
	t.Helper()
	b, err := examples.FS.ReadFile(name)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestDecideExitCodes(t *testing.T) {
	// orders-surge.json needs a rescale: exit 3, and the JSON is a Decision.
	code, out, _ := runCLI("decide", "--snapshot", example(t, "orders-surge.json"), "-o", "json")
	require.Equal(t, exitScale, code)
	var d scaling.Decision
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	assert.Equal(t, scaling.ActionScale, d.Action)
	// The window vertex: 15265 rec/s at p=4 is 3816 a subtask; it needs
	// max(25000/0.7, 25000 + 7908 catch-up) = 35714 rec/s; with 128 key
	// groups p=9 puts 15 on the busiest subtask (3816·128/15 = 32566, short)
	// and p=10 puts 13 (37576 ≥ 35714): 10.
	assert.Equal(t, 10, d.Recommended.Parallelism["90bea66de1c231edf33913ecd54406c1"])

	// idle-night.json holds (scale-down is stabilizing): exit 0, a table.
	code, out, _ = runCLI("decide", "--snapshot", example(t, "idle-night.json"))
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, out, "clicks_enrich: Hold")
	assert.Contains(t, out, "ScaleDownStabilizing")

	// A policy file changes the decision: with a minimum utilization of 5 %
	// the idle job (6 % and 10 % utilized) is within its band.
	policy := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"utilization":{"min":0.05}}`), 0o600))
	code, out, _ = runCLI("decide", "--snapshot", example(t, "idle-night.json"), "--policy", policy)
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, out, "WithinBand")
}

func TestDecideBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"vertices": [`), 0o600))
	badPolicy := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(badPolicy, []byte(`{"utilization":{"target":2}}`), 0o600))
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"decide"}, "--snapshot is required"},
		{[]string{"decide", "--snapshot", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"decide", "--snapshot", bad}, "decoding snapshot"},
		{[]string{"decide", "--snapshot", example(t, "idle-night.json"), "--policy", badPolicy}, "utilization.target must be in (0,1]"},
		{[]string{"decide", "--snapshot", example(t, "idle-night.json"), "-o", "xml"}, "-o must be text or json"},
		{[]string{"decide", "--snapshot", example(t, "idle-night.json"), "--now", "tomorrow"}, "--now"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		code, out, errOut := runCLI(tc.args...)
		assert.Equal(t, exitError, code, tc.args)
		assert.Empty(t, out, tc.args)
		assert.Contains(t, errOut, tc.msg, tc.args)
	}
}

func TestRecommendExitCodesAndFormats(t *testing.T) {
	code, out, _ := runCLI("recommend", "--snapshot", example(t, "orders-surge.json"), "-n", "streaming")
	require.Equal(t, exitScale, code, "a rescale is recommended")
	assert.Contains(t, out, "pipeline.jobvertex-parallelism-overrides")
	assert.Contains(t, out, "namespace: streaming")

	code, out, _ = runCLI("recommend", "--snapshot", example(t, "idle-night.json"), "-o", "markdown")
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, out, "# flinkscale recommendation")

	code, out, _ = runCLI("recommend", "--snapshot", example(t, "orders-surge.json"), "-o", "html")
	require.Equal(t, exitScale, code)
	assert.True(t, strings.HasPrefix(out, "<!DOCTYPE html>"))
	assert.Equal(t, 4, strings.Count(out, `<img src="data:image/svg&#43;xml;base64,`), "utilization, parallelism, rates, lag")

	for _, args := range [][]string{
		{"recommend"}, // neither a snapshot nor a job
		{"recommend", "--snapshot", example(t, "idle-night.json"), "--flink-url", "http://127.0.0.1:1"}, // both
		{"recommend", "--snapshot", "/nonexistent.json"},
		{"recommend", "--snapshot", example(t, "idle-night.json"), "-o", "xml"},
		{"recommend", "--snapshot", example(t, "idle-night.json"), "--mode", "session"},
	} {
		code, _, errOut := runCLI(args...)
		assert.Equal(t, exitError, code, "%v", args)
		assert.Contains(t, errOut, "recommend:", "%v", args)
	}
}

// The live mode samples a running (simulated) job through its REST API and
// the brokers, decides, and saves what it saw; replaying the saved snapshot
// gives the same recommendation. The job is overloaded (3000 rec/s for
// 2 × 1000 of enrichment): a rescale is recommended. An unreachable Flink
// is a clear error.
func TestRecommendLive(t *testing.T) {
	rest, brokers, _ := overloadedJob(t)
	saved := filepath.Join(t.TempDir(), "observed.json")
	code, out, errOut := runCLI("recommend", "--flink-url", rest, "--kafka-brokers", brokers,
		"--kafka-group", "orders", "--observe", "4s", "--interval", "1s", "--save-snapshot", saved, "-o", "json", "--quiet")
	require.Equal(t, exitScale, code, "stderr: %s\n%s", errOut, out)
	var r struct {
		Change   bool
		Source   string
		Vertices []struct {
			Name                 string
			Current, Recommended int
		}
		Observed []struct {
			ArrivalRate, ProcessedRate, LagRecords *float64
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Contains(t, r.Source, rest)
	// Five Flink and five brokers' samples over 4 s at 1 s; the brokers'
	// later four carry the arrival rate (3000 rec/s), the job reads at most
	// 2 × 1000.
	require.Len(t, r.Observed, 10)
	arrivals := 0
	for _, p := range r.Observed {
		if p.ArrivalRate != nil {
			arrivals++
			assert.InDelta(t, 3000, *p.ArrivalRate, 600)
		}
		if p.ProcessedRate != nil {
			assert.Less(t, *p.ProcessedRate, 2300.0)
		}
	}
	assert.Equal(t, 4, arrivals)
	require.Len(t, r.Vertices, 2)
	// 3000 rec/s at 70 % of 1000 a subtask: at least ⌈3000/700⌉ = 5.
	assert.GreaterOrEqual(t, r.Vertices[1].Recommended, 5)

	// Replayed with a metrics window the 4-second observation covers (the
	// default 5 minutes would hold with WindowTooShort).
	pol := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"metricsWindow": "3s"}`), 0o600))
	code, out, errOut = runCLI("recommend", "--snapshot", saved, "--policy", pol, "-o", "json")
	assert.Equal(t, exitScale, code, "the saved snapshot replays: %s%s", errOut, out)

	code, _, errOut = runCLI("recommend", "--flink-url", "http://127.0.0.1:1", "--observe", "1s", "--interval", "1s", "--quiet")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "collecting from Flink at http://127.0.0.1:1")
}

// overloadedJob serves a simulated job running with the wall clock (the
// collectors stamp samples with it) after ten minutes of history: 3000
// rec/s for 2 × 1000 of enrichment. It returns its REST API's URL and the
// brokers' address.
func overloadedJob(t *testing.T) (rest, brokers, jobID string) {
	t.Helper()
	spec := sim.JobSpec{
		Name: "orders", FlinkVersion: "1.18", ConsumerGroup: "orders",
		Topics: []sim.TopicSpec{{Name: "orders", Partitions: 6}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: orders", Parallelism: 2, Capacity: 5000, Selectivity: 1, Topics: []string{"orders"}},
			{Name: "Enrich -> Sink", Parallelism: 2, Capacity: 1000, Selectivity: 0,
				Inputs: []sim.EdgeSpec{{From: "Source: orders", Ship: "REBALANCE"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 10 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 5 * time.Second},
	}
	broker, err := simkafka.Start(spec.Topics)
	require.NoError(t, err)
	t.Cleanup(broker.Close)
	start := time.Now().Add(-10 * time.Minute)
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return 3000 })
	// The history is simulated in the real-time loop's 100 ms steps: the
	// records resident in the network buffers depend on the step (the
	// source tops the queues up once per step), so a switch from 1 s steps
	// would make the sources read ~1 s of extra records in the first
	// second.
	j, err := sim.NewJob(spec, sim.Options{Start: start, Seed: 3, Load: load, Kafka: broker, Step: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))
	require.NoError(t, j.Advance(time.Since(start)))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = j.RunRealtime(ctx, 1, 100*time.Millisecond) }()
	// These tests sample every second for a few seconds, faster than a
	// JobManager refreshes its metric store (every 10 s): served as real
	// Flink serves them, every sample would read the same values. Live
	// metrics keep them about the recommendation, not the store.
	srv := httptest.NewServer(flinkrest.NewHandler(j, flinkrest.WithMetricFetcherInterval(0)))
	t.Cleanup(srv.Close)
	return srv.URL, broker.Addrs()[0], j.View().Job.ID
}

// The cluster mode finds the policy, its FlinkDeployment and their sources
// in a real API server, observes the job, and writes the patch for that
// deployment; a FlinkDeployment without a policy works too (with the REST
// URL given, as from outside a cluster), and an unknown name is an error.
func TestRecommendCluster(t *testing.T) {
	rest, brokers, jobID := overloadedJob(t)
	env, _ := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "rec")
	ctx := context.Background()

	fd := envtest.NewFlinkDeployment(ns, "orders-fd")
	require.NoError(t, unstructured.SetNestedField(fd.Object, map[string]any{
		"flinkVersion": "v1_18", "image": "flink:1.18", "serviceAccount": "flink",
		"flinkConfiguration": map[string]any{"taskmanager.numberOfTaskSlots": "2"},
		"job":                map[string]any{"jarURI": "local:///a.jar", "parallelism": int64(2), "upgradeMode": "savepoint"},
		"jobManager":         map[string]any{"resource": map[string]any{"cpu": int64(1), "memory": "2g"}},
		"taskManager":        map[string]any{"resource": map[string]any{"cpu": int64(2), "memory": "4g"}},
	}, "spec"))
	require.NoError(t, env.Client.Create(ctx, fd))
	require.NoError(t, unstructured.SetNestedField(fd.Object, map[string]any{
		"lifecycleState": "STABLE", "jobStatus": map[string]any{"jobId": jobID, "state": "RUNNING"},
	}, "status"))
	require.NoError(t, env.Client.Status().Update(ctx, fd))

	s := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(s))
	c, err := client.New(env.Config, client.Options{Scheme: s})
	require.NoError(t, err)
	pol := &v1alpha1.FlinkScalingPolicy{}
	pol.Namespace, pol.Name = ns, "orders"
	pol.Spec.TargetRef.Name = "orders-fd"
	pol.Spec.Triggers = &v1alpha1.Triggers{
		Kafka:        []v1alpha1.KafkaTrigger{{Name: "orders", BootstrapServers: []string{brokers}, ConsumerGroup: "orders"}},
		FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: rest}},
	}
	require.NoError(t, c.Create(ctx, pol))
	kc := env.WriteKubeconfig(t)

	code, out, errOut := runCLI("recommend", "--kubeconfig", kc, "-n", ns, "orders", "--observe", "3s", "--interval", "1s", "--quiet")
	require.Equal(t, exitScale, code, "%s\n%s", errOut, out)
	assert.Contains(t, out, "FlinkScalingPolicy "+ns+"/orders, job "+jobID)
	assert.Contains(t, out, "name: orders-fd")
	assert.Contains(t, out, "namespace: "+ns)

	code, out, errOut = runCLI("recommend", "--kubeconfig", kc, "-n", ns, "orders-fd", "--flink-url", rest,
		"--observe", "3s", "--interval", "1s", "--quiet", "-o", "json")
	require.Equal(t, exitScale, code, "%s\n%s", errOut, out)
	assert.Contains(t, out, "FlinkDeployment "+ns+"/orders-fd")

	code, _, errOut = runCLI("recommend", "--kubeconfig", kc, "-n", ns, "nope", "--observe", "1s", "--interval", "1s", "--quiet")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no FlinkScalingPolicy or FlinkDeployment named nope")
}

// A saved JSON report renders in every format, from a file or standard
// input, with recommend's exit codes; bad input is a clear error.
func TestRender(t *testing.T) {
	code, js, _ := runCLI("recommend", "--snapshot", example(t, "orders-surge.json"), "-o", "json")
	require.Equal(t, exitScale, code)
	path := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, os.WriteFile(path, []byte(js), 0o600))

	code, out, errOut := runCLI("render", path)
	require.Equal(t, exitScale, code, errOut)
	assert.True(t, strings.HasPrefix(out, "<!DOCTYPE html>"), "HTML by default")
	_, md, _ := runCLI("recommend", "--snapshot", example(t, "orders-surge.json"), "-o", "markdown")
	code, out, _ = runCLI("render", "-o", "markdown", path)
	assert.Equal(t, exitScale, code)
	assert.Equal(t, md, out, "the same Markdown as recommend's")

	// Flags after the file, and the report on standard input.
	var b, e bytes.Buffer
	code = runIO([]string{"render", "-", "-otable"}, strings.NewReader(js), &b, &e)
	require.Equal(t, exitScale, code, e.String())
	assert.Contains(t, b.String(), "orders_agg: Scale")

	_, hold, _ := runCLI("recommend", "--snapshot", example(t, "idle-night.json"), "-o", "json")
	code = runIO([]string{"render", "-"}, strings.NewReader(hold), io.Discard, &e)
	assert.Equal(t, exitNoChange, code, e.String())

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"render"}, "one report JSON file"},
		{[]string{"render", path, path}, "one report JSON file"},
		{[]string{"render", "/nonexistent.json"}, "no such file"},
		{[]string{"render", "-o", "pdf", path}, "-o must be one of"},
		{[]string{"render", example(t, "idle-night.json")}, "reading the report"}, // a snapshot, not a report
	} {
		code, _, errOut := runCLI(c.args...)
		assert.Equal(t, exitError, code, "%v", c.args)
		assert.Contains(t, errOut, c.want, "%v", c.args)
	}
}

// The examples docs/cli.md shows stay readable: the saved report renders in
// every format and the saved snapshot replays to the same recommendation.
func TestDocsExamples(t *testing.T) {
	for _, format := range []string{"html", "table", "json", "yaml", "markdown"} {
		code, _, errOut := runCLI("render", "-o", format, "../../docs/examples/recommend-device-metrics.json")
		assert.Equal(t, exitScale, code, "%s: %s", format, errOut)
	}
	pol := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"metricsWindow": "60s"}`), 0o600))
	code, out, errOut := runCLI("recommend", "--snapshot", "../../docs/examples/device-metrics-snapshot.json", "--policy", pol, "-o", "json")
	require.Equal(t, exitScale, code, errOut)
	_, saved, _ := runCLI("render", "-o", "json", "../../docs/examples/recommend-device-metrics.json")
	var a, b struct {
		Vertices []struct{ Current, Recommended int }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &a))
	require.NoError(t, json.Unmarshal([]byte(saved), &b))
	assert.Equal(t, b.Vertices, a.Vertices)
}
