package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

func testPolicy(ns, name, target string) *v1alpha1.FlinkScalingPolicy {
	return &v1alpha1.FlinkScalingPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.FlinkScalingPolicySpec{TargetRef: v1alpha1.TargetRef{Name: target}},
	}
}

// A policy's series exist from its first cycle, at zero where nothing has
// happened yet: rates and alerts work before the first rescale.
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.policy(testPolicy("ns", "orders", "orders-fd")).start()
	want := `
# HELP flinkscale_rescales_total Rescales finished, by outcome (Succeeded, Failed, RolledBack).
# TYPE flinkscale_rescales_total counter
flinkscale_rescales_total{deployment="orders-fd",namespace="ns",outcome="Failed",policy="orders"} 0
flinkscale_rescales_total{deployment="orders-fd",namespace="ns",outcome="RolledBack",policy="orders"} 0
flinkscale_rescales_total{deployment="orders-fd",namespace="ns",outcome="Succeeded",policy="orders"} 0
# HELP flinkscale_rescale_in_progress 1 while a rescale of the job is in progress, else 0.
# TYPE flinkscale_rescale_in_progress gauge
flinkscale_rescale_in_progress{deployment="orders-fd",namespace="ns",policy="orders"} 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "flinkscale_rescales_total", "flinkscale_rescale_in_progress"))
	n, err := testutil.GatherAndCount(reg, "flinkscale_decisions_total", "flinkscale_collection_errors_total", "flinkscale_rescales_started_total")
	require.NoError(t, err)
	assert.Equal(t, 2+2+1, n, "decisions by action, errors by source, rescales started")
}

// A decision sets the vertex and job gauges and counts the action, each
// reason code once, and a hold under its job-level reason; a vertex that
// leaves the job loses its series; forget deletes everything of the policy
// and nothing of another.
func TestMetricsOfDecisions(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	pm := m.policy(testPolicy("ns", "orders", "orders-fd"))
	other := m.policy(testPolicy("ns", "clicks", "clicks-fd"))
	pm.start()
	other.start()
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	d := scaling.Decision{
		At: time.Unix(1700000000, 0), Action: scaling.ActionScale, Sized: true, LagRecords: 1200, LagSeconds: 4,
		Current: scaling.Plan{Slots: 4, Cores: 4}, Recommended: scaling.Plan{Slots: 10, Cores: 10},
		PredictedDowntime: scaling.D(36 * time.Second),
		Vertices: []scaling.VertexDecision{
			{ID: "a", Name: "Source", Current: 2, Recommended: 4, UtilizationNow: 1.2, UtilizationAfter: 0.6, TrueProcessingRate: 2500, TargetRate: 3000, BackPressuredMsPerSecond: 250},
			{ID: "b", Name: "Sink", Current: 2, Recommended: 6, UtilizationNow: 1.6, UtilizationAfter: 0.55},
		},
		Reasons: []scaling.Reason{
			{Code: scaling.ReasonOverloaded, Vertex: "a"}, {Code: scaling.ReasonOverloaded, Vertex: "b"},
		},
	}
	pm.decision(d, band, 3000)
	g := func(name string, labels ...string) float64 {
		return gaugeValue(t, reg, name, append([]string{"policy", "orders"}, labels...)...)
	}
	assert.Equal(t, 4.0, g("flinkscale_vertex_recommended_parallelism", "vertex", "Source", "vertex_id", "a"))
	assert.Equal(t, 1.2, g("flinkscale_vertex_utilization", "vertex", "Source"))
	assert.Equal(t, 0.25, g("flinkscale_vertex_backpressure_ratio", "vertex", "Source"), "250 ms/s")
	assert.Equal(t, 3000.0, g("flinkscale_arrival_rate"))
	assert.Equal(t, 10.0, g("flinkscale_slots", "state", "recommended"))
	assert.Equal(t, 36.0, g("flinkscale_predicted_downtime_seconds"))
	assert.Equal(t, 1700000000.0, g("flinkscale_last_decision_timestamp_seconds"))
	assert.Equal(t, 1.0, g("flinkscale_decisions_total", "action", "Scale"))
	assert.Equal(t, 0.0, g("flinkscale_decisions_total", "action", "Hold"), "started at zero")
	assert.Equal(t, 1.0, g("flinkscale_decision_reasons_total", "action", "Scale", "reason", "Overloaded"), "once per decision")
	assert.Equal(t, 0.85, g("flinkscale_utilization_band", "bound", "max"))

	// The memory recommendation: one series per part and state, the
	// plan's network buffers; gone with a decision that has none.
	d.Memory = &scaling.MemoryRecommendation{
		Current:     scaling.TaskManagerMemory{ProcessBytes: 1 << 30, FrameworkHeapBytes: 128 << 20, TaskHeapBytes: 200 << 20, NetworkBytes: 1 << 20},
		Recommended: scaling.TaskManagerMemory{ProcessBytes: 1100 << 20, FrameworkHeapBytes: 128 << 20, TaskHeapBytes: 200 << 20, NetworkBytes: 8 << 20},
		Network:     &scaling.NetworkUse{Required: 47, MaxUse: 166, Available: 32},
	}
	pm.decision(d, band, 3000)
	assert.Equal(t, float64(328<<20), g("flinkscale_taskmanager_memory_bytes", "part", "heap", "state", "current"), "framework + task heap")
	assert.Equal(t, float64(8<<20), g("flinkscale_taskmanager_memory_bytes", "part", "network", "state", "recommended"))
	assert.Equal(t, 47.0, g("flinkscale_network_buffers", "kind", "required"))
	assert.Equal(t, 32.0, g("flinkscale_network_buffers", "kind", "available"))

	// The job loses vertex b; a hold is counted under its job-level reason.
	hold := scaling.Decision{At: d.At.Add(time.Minute), Action: scaling.ActionHold, Sized: true,
		Vertices: d.Vertices[:1],
		Reasons:  []scaling.Reason{{Code: scaling.ReasonWithinBand, Vertex: "a"}, {Code: scaling.ReasonCooldown}}}
	pm.decision(hold, band, 3000)
	assert.Equal(t, 1.0, g("flinkscale_holds_total", "reason", string(scaling.ReasonCooldown)))
	for _, name := range []string{"flinkscale_taskmanager_memory_bytes", "flinkscale_network_buffers"} {
		n, err := testutil.GatherAndCount(reg, name)
		require.NoError(t, err)
		assert.Zero(t, n, "%s: no memory in the hold, no series", name)
	}
	n, err := testutil.GatherAndCount(reg, "flinkscale_vertex_parallelism")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "vertex b's series are gone")

	pm.blocked(v1alpha1.ReasonExcludedPeriod)
	pm.rescaleStarted()
	pm.rescaleFinished(scaling.OutcomeSucceeded, 40*time.Second)
	pm.collection(SourceFlink, 20*time.Millisecond, assert.AnError)
	assert.Equal(t, 1.0, g("flinkscale_holds_total", "reason", v1alpha1.ReasonExcludedPeriod))
	assert.Equal(t, 1.0, g("flinkscale_rescales_total", "outcome", "Succeeded"))
	assert.Equal(t, 1.0, g("flinkscale_rescales_started_total"))
	assert.Equal(t, 40.0, g("flinkscale_last_rescale_downtime_seconds"))
	assert.Equal(t, 1.0, g("flinkscale_rescale_downtime_seconds"), "one observation")
	assert.Equal(t, 1.0, g("flinkscale_collection_errors_total", "source", "flink"))
	assert.Equal(t, 0.0, g("flinkscale_collection_errors_total", "source", "kafka"))

	m.forget("ns", "orders")
	for _, name := range []string{"flinkscale_vertex_parallelism", "flinkscale_rescales_total", "flinkscale_holds_total", "flinkscale_rescale_downtime_seconds"} {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == LabelPolicy {
						assert.Equal(t, "clicks", l.GetValue(), "%s: only the other policy's series remain", name)
					}
				}
			}
		}
	}
	assert.Equal(t, 0.0, gaugeValue(t, reg, "flinkscale_rescale_in_progress", "policy", "clicks"), "the other policy keeps its series")

	// A nil *Metrics records nothing and does not panic.
	var none *Metrics
	none.policy(testPolicy("ns", "x", "y")).decision(d, band, 0)
	none.forget("ns", "x")
}

// The controller's metrics go to controller-runtime's registry, the one
// the manager's /metrics endpoint serves, once however many managers a
// process starts.
func TestDefaultMetricsUseTheManagersRegistry(t *testing.T) {
	m := DefaultMetrics()
	require.Same(t, m, DefaultMetrics())
	pol := testPolicy("default-registry", "p", "d")
	m.policy(pol).start()
	defer m.forget(pol.Namespace, pol.Name)
	n, err := testutil.GatherAndCount(ctrlmetrics.Registry, "flinkscale_rescales_total")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 3)
	// The gauges, which their store gathers itself (NewGatheredMetrics),
	// are served by the same registry.
	m.policy(pol).decision(fleetDecision(time.Unix(1700000000, 0)), scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}, 3000)
	n, err = testutil.GatherAndCount(ctrlmetrics.Registry, "flinkscale_vertex_parallelism")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 10)
}

// collectBackoff: 30 s, 60 s, 120 s, 240 s, then 300 s (the cap: ten
// intervals, and 5m); a 1 s interval stops at 10 s; an interval above the
// cap stays the interval; n = 0 (nothing polled) is the interval.
func TestCollectBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 30 * time.Second, 1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 4: 4 * time.Minute, 5: 5 * time.Minute, 50: 5 * time.Minute} {
		assert.Equal(t, want, collectBackoff(30*time.Second, n), n)
	}
	assert.Equal(t, 8*time.Second, collectBackoff(time.Second, 4))
	assert.Equal(t, 10*time.Second, collectBackoff(time.Second, 9))
	assert.Equal(t, 10*time.Minute, collectBackoff(10*time.Minute, 3))
}

// FuzzTaskManagerHost: the host read from any TaskManager RPC address is
// part of it and holds no scheme, user, port or path separator.
func FuzzTaskManagerHost(f *testing.F) {
	for _, s := range []string{"pekko.tcp://flink@10.244.1.17:6122/user/rpc/taskmanager_0", "akka.tcp://flink@[fd00::1]:6122/user", "flink@host", "", "@:/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		h := taskManagerHost(path)
		if h == "" {
			return
		}
		if !strings.Contains(path, h) || strings.ContainsAny(h, "@/") {
			t.Fatalf("host %q of %q", h, path)
		}
	})
}

func TestTaskManagerHost(t *testing.T) {
	for path, want := range map[string]string{
		"pekko.tcp://flink@10.244.1.17:6122/user/rpc/taskmanager_0": "10.244.1.17",
		"akka.tcp://flink@[fd00::1]:6122/user/rpc/taskmanager_0":    "fd00::1",
		"no-address": "",
	} {
		if got := taskManagerHost(path); got != want {
			t.Errorf("taskManagerHost(%q) = %q, want %q", path, got, want)
		}
	}
}

// The target info series follows the policy's rescale path: one series a
// policy, the old one deleted when the path changes, other policies'
// untouched; forgetting the policy removes it.
func TestTargetInfoFollowsThePath(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	orders, clicks := testPolicy("ns", "orders", "orders-fd"), testPolicy("ns", "clicks", "clicks-fd")
	series := func() []string {
		var out []string
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "flinkscale_policy_target_info" {
				continue
			}
			for _, s := range mf.GetMetric() {
				l := map[string]string{}
				for _, p := range s.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				out = append(out, l["policy"]+":"+l["kind"]+":"+l["path"])
			}
		}
		return out
	}
	orders.Status.RescalePath = v1alpha1.PathOperatorUpgrade
	m.policy(orders).status(orders)
	m.policy(clicks).status(clicks)
	m.policy(orders).status(orders) // unchanged: nothing deleted, nothing added
	assert.ElementsMatch(t, []string{"orders:FlinkDeployment:OperatorUpgrade", "clicks:FlinkDeployment:"}, series())

	orders.Status.RescalePath = v1alpha1.PathInPlace
	m.policy(orders).status(orders)
	assert.ElementsMatch(t, []string{"orders:FlinkDeployment:InPlace", "clicks:FlinkDeployment:"}, series())

	m.forget("ns", "orders")
	assert.ElementsMatch(t, []string{"clicks:FlinkDeployment:"}, series())
	m.policy(orders).status(orders)
	assert.ElementsMatch(t, []string{"orders:FlinkDeployment:InPlace", "clicks:FlinkDeployment:"}, series())
}

// gaugeValue is the value of the metric name's series whose labels include
// the given pairs (summed; the tests name one series; a histogram's value
// is its count); it fails the test when there is none.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string, pairs ...string) float64 {
	t.Helper()
	v, err := fixtures.Metric(reg, name, pairs...)
	require.NoError(t, err)
	require.NotEqual(t, -1.0, v, "%s%v: no series", name, pairs)
	return v
}

// A decision that could not size the job updates the parallelism alone and
// keeps the last sized figures; a sized decision of a vertex it cannot
// measure (no true processing rate) removes its utilization and rate
// series instead of writing zeros; Paused (observed) sets the parallelism.
func TestVertexGaugesAcrossDecisions(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	pm := m.policy(testPolicy("ns", "orders", "orders-fd"))
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	at := time.Unix(1700000000, 0)
	sized := scaling.Decision{At: at, Action: scaling.ActionHold, Sized: true, Vertices: []scaling.VertexDecision{
		{ID: "a", Name: "Source", Current: 2, Recommended: 2, UtilizationNow: 0.6, UtilizationAfter: 0.6, TrueProcessingRate: 5000, TargetRate: 3000},
	}}
	pm.decision(sized, band, 3000)
	g := func(name string) float64 { return gaugeValue(t, reg, name, "vertex_id", "a") }
	count := func(name string) int {
		n, err := testutil.GatherAndCount(reg, name)
		require.NoError(t, err)
		return n
	}

	unsized := scaling.Decision{At: at.Add(30 * time.Second), Action: scaling.ActionHold, Vertices: []scaling.VertexDecision{
		{ID: "a", Name: "Source", Current: 3, Recommended: 3},
	}}
	pm.decision(unsized, band, 0)
	assert.Equal(t, 3.0, g("flinkscale_vertex_parallelism"))
	assert.Equal(t, 0.6, g("flinkscale_vertex_utilization"), "the last sized figure stays")
	assert.Equal(t, 5000.0, g("flinkscale_vertex_true_processing_rate"))

	idle := sized
	idle.Vertices = []scaling.VertexDecision{{ID: "a", Name: "Source", Current: 3, Recommended: 3, TargetRate: 0}}
	pm.decision(idle, band, 0)
	assert.Zero(t, count("flinkscale_vertex_utilization"), "not measurable: no series, not a zero")
	assert.Zero(t, count("flinkscale_vertex_true_processing_rate"))
	assert.Equal(t, 0.0, g("flinkscale_vertex_target_rate"))

	pm.observed([]v1alpha1.VertexStatus{{ID: "a", Name: "Source", Current: 5}, {ID: "b", Name: "Sink", Current: 1}})
	assert.Equal(t, 5.0, g("flinkscale_vertex_parallelism"))
	assert.Equal(t, 3.0, g("flinkscale_vertex_recommended_parallelism"), "kept: Paused decides nothing")
	assert.Equal(t, 2, count("flinkscale_vertex_parallelism"), "the new vertex has its parallelism")
	assert.Equal(t, 1, count("flinkscale_vertex_recommended_parallelism"), "and nothing else")

	problems, err := testutil.CollectAndLint(m.gauges)
	require.NoError(t, err)
	assert.Empty(t, problems, "the collector's series follow Prometheus' conventions")
}

// Per-vertex detail is on for every policy by default; with it off, only
// a policy annotated flinkscale.io/vertex-metrics: "true" has the five
// detail series per vertex, and "false" turns them off for one policy when
// it is on. Parallelism and recommendation are always there.
func TestVertexDetailOptIn(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	band := scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}
	d := fleetDecision(time.Unix(1700000000, 0)) // 10 vertices, every figure measured
	record := func(name, annotation string) {
		pol := testPolicy("ns", name, name)
		if annotation != "" {
			pol.Annotations = map[string]string{v1alpha1.AnnotationVertexMetrics: annotation}
		}
		m.policy(pol).decision(d, band, 3000)
	}
	series := func(metric, policy string) int {
		n := 0
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != metric {
				continue
			}
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "policy" && l.GetValue() == policy {
						n++
					}
				}
			}
		}
		return n
	}
	record("default", "")
	record("off", "false")
	assert.Equal(t, 10, series("flinkscale_vertex_utilization", "default"))
	assert.Equal(t, 0, series("flinkscale_vertex_utilization", "off"))
	assert.Equal(t, 10, series("flinkscale_vertex_parallelism", "off"))

	m.SetVertexDetail(false)
	record("default", "")
	record("on", "true")
	for _, name := range []string{"flinkscale_vertex_utilization", "flinkscale_vertex_expected_utilization",
		"flinkscale_vertex_true_processing_rate", "flinkscale_vertex_target_rate", "flinkscale_vertex_backpressure_ratio"} {
		assert.Equal(t, 0, series(name, "default"), name)
		assert.Equal(t, 10, series(name, "on"), name)
	}
	assert.Equal(t, 10, series("flinkscale_vertex_recommended_parallelism", "default"))
}
