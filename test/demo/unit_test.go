package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/sim"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// The three scenarios play the same day: each job's load sits inside the
// band in the steady phase, rises in the surge and falls at night.
func TestScenariosPlayTheDay(t *testing.T) {
	scs, err := LoadScenarios()
	require.NoError(t, err)
	require.Len(t, scs, len(Jobs))
	for i, s := range scs {
		assert.Equal(t, Jobs[i].Scenario, s.Name)
		assert.Equal(t, 3*time.Hour, s.Duration, s.Name)
		require.NoError(t, s.Validate(), s.Name)
		topic := s.Job.Topics[0].Name
		steady, surge, night := s.Rate(topic, 20*time.Minute), s.Rate(topic, 70*time.Minute), s.Rate(topic, 150*time.Minute)
		assert.Greater(t, surge, 1.9*steady, "%s: the surge at least doubles the load (%.0f → %.0f)", s.Name, steady, surge)
		assert.Less(t, night, 0.5*steady, "%s: the night at most halves it (%.0f → %.0f)", s.Name, steady, night)
	}
	assert.Equal(t, "steady load", PhaseAt(0))
	assert.Equal(t, "steady load", PhaseAt(39*time.Minute))
	assert.Equal(t, "surge", PhaseAt(40*time.Minute))
	assert.Equal(t, "quiet night", PhaseAt(3*time.Hour))
}

func newTestWorld(t *testing.T, speed float64) *world {
	t.Helper()
	scs, err := LoadScenarios()
	require.NoError(t, err)
	w, err := newWorld(scs, Jobs, t0, speed)
	require.NoError(t, err)
	t.Cleanup(w.close)
	for _, j := range w.jobs {
		require.NoError(t, j.sim.Submit(sim.Submission{JobID: strings.Repeat("ab", 16)}))
	}
	return w
}

// The world moves every job to the same virtual time, never publishes a
// time a job has not reached, records a point every 30 s and stops at the
// offset asked for.
func TestWorldAdvancesEveryJobTogether(t *testing.T) {
	w := newTestWorld(t, 600) // 10 virtual minutes per wall second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.run(ctx, 5*time.Minute, w.speed))
	assert.Equal(t, 5*time.Minute, w.Elapsed())
	for _, j := range w.jobs {
		assert.Equal(t, w.Now(), j.sim.Now(), j.sc.Name)
		j.mu.Lock()
		n := len(j.timeline)
		last := j.timeline[n-1]
		hours := j.slotHours
		j.mu.Unlock()
		// Points at 0:30, 1:00, … 5:00 (the first tick lands after 0:00).
		assert.InDelta(t, 10, n, 1, "%s: a point every 30 s", j.sc.Name)
		assert.Equal(t, 5*time.Minute, last.T, j.sc.Name)
		assert.Positive(t, last.Load, j.sc.Name)
		assert.Positive(t, hours, j.sc.Name)
	}
	orders := w.jobs[0]
	pt, _ := orders.lastPoint()
	// orders at 2/4/2: the enrichment (4 × 2,500 rec/s) is the tightest
	// vertex: 10,000 rec/s of capacity; TaskManagers of 2 slots → 2 of them
	// (4 slots, 4 cores).
	assert.InDelta(t, 10000, pt.Capacity, 1)
	assert.Equal(t, 4, pt.Slots)
	assert.InDelta(t, 4, pt.Cores, 1e-9)
	assert.Equal(t, map[string]int{"Source: orders -> Parse": 2, "KeyBy customer -> Enrich": 4, "Sink: enriched-orders": 2}, pt.Parallelism)
}

// The FlinkDeployment of a demo job carries its initial parallelism per
// vertex as overrides the operator (and flinkscale's target package) read
// back, and the adaptive scheduler where the scenario runs it.
func TestDeploymentSpec(t *testing.T) {
	w := newTestWorld(t, 60)
	for _, j := range w.jobs {
		spec, err := j.deploymentSpec()
		require.NoError(t, err, j.sc.Name)
		assert.Equal(t, "v1_18", spec["flinkVersion"])
		conf := spec["flinkConfiguration"].(map[string]any)
		over, err := target.ParseOverrides(conf["pipeline.jobvertex-parallelism-overrides"].(string))
		require.NoError(t, err)
		want := map[string]int{}
		for _, v := range j.sc.Job.Vertices {
			id, _ := j.sim.VertexID(v.Name)
			want[id] = v.Parallelism
		}
		assert.Equal(t, want, over, j.sc.Name)
		assert.Equal(t, "2", conf["taskmanager.numberOfTaskSlots"])
		assert.Equal(t, "false", conf["job.autoscaler.enabled"], "one autoscaler per job")
		_, adaptive := conf["jobmanager.scheduler"]
		assert.Equal(t, j.sc.Job.Scheduler == "adaptive", adaptive, j.sc.Name)
		assert.Equal(t, "savepoint", spec["job"].(map[string]any)["upgradeMode"])
	}
}

// The monitor turns policy statuses into events: a rescale's start (with
// the vertices' names, not their ids), its end with the measured downtime,
// and a DryRun recommendation once per distinct recommendation.
func TestMonitorEvents(t *testing.T) {
	w := newTestWorld(t, 60)
	m := newMonitor(nil, w.views(), w.Elapsed, w.speed, &terminal{w: &bytes.Buffer{}}, false)
	orders := w.jobs[0]
	ids := map[string]string{}
	for _, v := range orders.sc.Job.Vertices {
		ids[v.Name], _ = orders.sim.VertexID(v.Name)
	}
	src, enrich, sink := ids["Source: orders -> Parse"], ids["KeyBy customer -> Enrich"], ids["Sink: enriched-orders"]
	decided := metav1.NewTime(t0.Add(42 * time.Minute))
	vertices := []v1alpha1.VertexStatus{
		{ID: src, Name: "Source: orders -> Parse", Current: 2, Recommended: 3},
		{ID: enrich, Name: "KeyBy customer -> Enrich", Current: 4, Recommended: 6},
		{ID: sink, Name: "Sink: enriched-orders", Current: 2, Recommended: 2},
	}
	p := &v1alpha1.FlinkScalingPolicy{Spec: v1alpha1.FlinkScalingPolicySpec{Mode: v1alpha1.ModeApply}}
	p.Status = v1alpha1.FlinkScalingPolicyStatus{
		CurrentParallelism: "2/4/2", RecommendedParallelism: "3/6/2", Vertices: vertices,
		LastDecision: &v1alpha1.DecisionStatus{Time: decided, Action: "Scale",
			Reasons: []v1alpha1.ReasonStatus{{Code: "Overloaded", Vertex: enrich}}},
		Rescale: &v1alpha1.RescaleStatus{Phase: v1alpha1.RescaleSavepointing, StartTime: decided, FromJobID: "old",
			AppliedParallelism: map[string]int32{src: 3, enrich: 6}},
	}
	m.observe(orders.job, p)
	m.observe(orders.job, p) // seen twice, announced once
	require.Len(t, m.events, 1)
	assert.Equal(t, Event{At: 42 * time.Minute, Job: "orders", Kind: EventRescaleStarted,
		Text: "rescale 2/4/2 → 3/6/2 started (savepoint and restart): Overloaded (KeyBy customer)"}, m.events[0])

	done := metav1.NewTime(t0.Add(44 * time.Minute))
	p.Status.Rescale = nil
	p.Status.History = &v1alpha1.HistoryStatus{Rescales: []v1alpha1.RescaleRecordStatus{{
		DecidedAt: decided, CompletedAt: &done, Downtime: metav1.Duration{Duration: 87 * time.Second},
		Outcome:  scaling.OutcomeSucceeded,
		Vertices: []v1alpha1.RescaleVertexStatus{{ID: src, From: 2, To: 3}, {ID: enrich, From: 4, To: 6}},
	}}}
	m.observe(orders.job, p)
	m.observe(orders.job, p)
	require.Len(t, m.events, 2)
	assert.Equal(t, Event{At: 44 * time.Minute, Job: "orders", Kind: EventRescaleDone,
		Text: "rescale 2/4 → 3/6 done: 1m27s of downtime"}, m.events[1])
	rs := m.watches["orders"].rescales
	require.Len(t, rs, 1)
	assert.Equal(t, bench.Event{T: 42 * time.Minute, Completed: 44 * time.Minute, Downtime: 87 * time.Second,
		From: map[string]int{"Source: orders -> Parse": 2, "KeyBy customer -> Enrich": 4},
		To:   map[string]int{"Source: orders -> Parse": 3, "KeyBy customer -> Enrich": 6}}, rs[0],
		"the job id changed (old → the sim's): not in place")

	payments := w.jobs[2]
	dry := &v1alpha1.FlinkScalingPolicy{Spec: v1alpha1.FlinkScalingPolicySpec{Mode: v1alpha1.ModeDryRun}}
	dry.Status = v1alpha1.FlinkScalingPolicyStatus{CurrentParallelism: "8/8/8", RecommendedParallelism: "2/2/2",
		LastDecision: &v1alpha1.DecisionStatus{Time: metav1.NewTime(t0.Add(38 * time.Minute)), Action: "Scale",
			Reasons: []v1alpha1.ReasonStatus{{Code: "Underutilized"}, {Code: "Underutilized"}, {Code: "Underutilized"}}}}
	m.observe(payments.job, dry)
	m.observe(payments.job, dry)
	require.Len(t, m.events, 3)
	assert.Equal(t, "recommends 8/8/8 → 2/2/2 (DryRun: not applied): Underutilized, Underutilized, …", m.events[2].Text)
	dry.Status.RecommendedParallelism = "2/3/3"
	m.observe(payments.job, dry)
	assert.Len(t, m.events, 4, "a new recommendation is announced")
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct {
		load, capacity float64
		want           string
	}{
		{5000, 10000, "█████░░░░░   50%"},
		{20000, 10000, "██████████! 200%"}, // over capacity: full bar and "!"
		{0, 10000, "░░░░░░░░░░    0%"},     // idle
		{1000, 0, "(job down)"},            // no capacity while restarting
		{9960, 10000, "██████████  100%"},  // 99.6 % rounds to a full bar, no "!"
		{10040, 10000, "██████████! 100%"}, // 100.4 %: over, though it prints 100
	} {
		assert.Equal(t, c.want, bar(c.load, c.capacity), "%g/%g", c.load, c.capacity)
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {45 * time.Second, "45s"}, {87 * time.Second, "1m27s"}, {time.Hour + 5*time.Minute + 20*time.Second, "1h05m"},
	} {
		assert.Equal(t, c.want, fmtDur(c.d))
	}
	assert.Equal(t, "2:07", fmtClock(2*time.Hour+7*time.Minute+59*time.Second))
	assert.Equal(t, "18.0k", fmtRate(18000))
	assert.Equal(t, "1.2M", fmtRate(1.21e6))
	assert.Equal(t, "486", fmtRate(486.2))
	assert.Equal(t, "12.0k (1m07s)", fmtLag(12000, 67))
	assert.Equal(t, 24, total("8/8/8"))
}

// Config defaults, and the intervals derived from the speed: 60 s of job
// time per poll, at least the API's 1 s.
func TestConfigIntervals(t *testing.T) {
	for _, c := range []struct {
		speed      float64
		poll, step time.Duration
	}{
		{60, time.Second, 166666666},                  // 60 s / 60; 10 s / 60
		{30, 2 * time.Second, 333333333},              // 60 s / 30; 10 s / 30
		{120, time.Second, 83333333},                  // 0.5 s is below the API's 1 s minimum
		{1, time.Minute, time.Second},                 // step capped at 1 s
		{600, time.Second, 50 * time.Millisecond},     // step at least 50 ms
		{45, 1300 * time.Millisecond, 222222222},      // 1.333 s rounded to 100 ms
		{7, 8600 * time.Millisecond, 1 * time.Second}, // 8.57 s; 1.43 s capped
	} {
		cfg := Config{Speed: c.speed}
		require.NoError(t, cfg.defaults())
		assert.Equal(t, c.poll, cfg.pollInterval(), "speed %g", c.speed)
		assert.Equal(t, c.step, cfg.stepInterval(), "speed %g", c.speed)
	}
	cfg := Config{}
	require.NoError(t, cfg.defaults())
	assert.Equal(t, Config{Speed: 60, Out: "demo-report", MetricsAddr: "127.0.0.1:8080", Terminal: cfg.Terminal}, cfg)
	for _, bad := range []Config{{Speed: 0.5}, {Speed: 1000}, {Duration: -time.Second}} {
		assert.Error(t, bad.defaults(), "%+v", bad)
	}
}

// The reports of a result: the Markdown and the HTML page hold the same
// tables and events; the HTML embeds the charts and escapes what it shows.
func TestReports(t *testing.T) {
	res := &Result{Started: t0, Wall: 3 * time.Minute, Speed: 60, Day: 3 * time.Hour, PollInterval: time.Second,
		Namespace: Namespace, Out: "/tmp/x", Kubeconfig: "/tmp/x/kubeconfig", Log: "/tmp/x/controller.log",
		Events: []Event{{At: 0, Kind: EventPhase, Text: "steady load"},
			{At: 42 * time.Minute, Job: "orders", Kind: EventRescaleStarted, Text: "rescale 2/4/2 → 3/6/2 <started>"}},
		Jobs: []*JobResult{{Name: "orders", OptIn: OptInAnnotations, Mode: v1alpha1.ModeApply, SLO: 5 * time.Minute,
			Downtime: 350 * time.Second, Result: &bench.Result{Rescales: 4, MaxLagSeconds: 159, SlotHours: 20.3},
			StartParallelism: "2/4/2", EndParallelism: "1/2/1", LastDecision: "Hold: within the band", Reasons: []string{"WithinBand"}}},
		Baselines: []*bench.Result{{Scenario: "orders", Policy: "flink-operator", Rescales: 3, SlotHours: 35.2, MaxLagSeconds: 234}},
	}
	var md bytes.Buffer
	res.WriteMarkdown(&md)
	for _, want := range []string{
		"| orders | annotations · Apply | 4 | 5m50s | 2m39s | 0s | 20.3 | 2/4/2 → 1/2/1 | 0 |",
		"| orders | Flink operator autoscaler | 3 | 3m54s | 0s | 35.2 | 0 |",
		"- 0:42 `orders` rescale 2/4/2 → 3/6/2 &lt;started&gt;",
		"![orders: load and capacity, slots, lag and parallelism over the day](charts/orders.svg)",
		"(reasons: `WithinBand`)",
	} {
		assert.Contains(t, md.String(), want)
	}
	var page bytes.Buffer
	require.NoError(t, res.WriteHTML(&page, map[string][]byte{"orders": []byte("<svg/>")}))
	html := page.String()
	// The "+"s are written as &#43;: the same URL to a browser.
	assert.Contains(t, html, `<img class="chart" src="data:image/svg&#43;xml;base64,PHN2Zy8&#43;"`)
	assert.Contains(t, html, "rescale 2/4/2 → 3/6/2 &lt;started&gt;", "escaped")
	assert.Contains(t, html, "<td>Flink operator autoscaler</td>")
	assert.NotContains(t, html, "`", "no Markdown quotes in the page")
}

// The Prometheus configuration scrapes the controller every poll, in whole
// milliseconds (Prometheus' durations take no fractions: 1.3s is invalid).
func TestPrometheusConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, writePrometheusConfig(path, "127.0.0.1:8080", "/repo/"+RulesFile, 1300*time.Millisecond))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, want := range []string{
		"  scrape_interval: 1300ms\n", "  evaluation_interval: 1300ms\n",
		`  - "/repo/charts/flinkscale/rules/flinkscale-rules.yaml"` + "\n",
		`      - targets: ["127.0.0.1:8080"]` + "\n",
	} {
		assert.Contains(t, string(b), want)
	}
}
