package demo

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// Made auditable, clicks' sessionizer passes every click on and its sink
// is five times faster: every vertex is exactly as busy as in the day's
// scenario at every load, and the testbed accepts the job with a sink,
// which it refuses for the scenario as written. orders, which drops
// nothing before its sink, is unchanged.
func TestAuditableKeepsBusyTimes(t *testing.T) {
	sink := &testbed.SinkOptions{Topic: "out"}
	for _, name := range []string{"orders", "clicks"} {
		s, err := loadScenario(name)
		require.NoError(t, err)
		a, err := auditable(s)
		require.NoError(t, err, name)
		topic := s.Job.Topics[0].Name
		for _, rate := range []float64{4000, 12000, 30000} {
			before := testbed.ExpectedRates(s.Job, map[string]float64{topic: rate})
			after := testbed.ExpectedRates(a.Job, map[string]float64{topic: rate})
			for _, v := range s.Job.Vertices {
				assert.InDelta(t, before[v.Name].Busy, after[v.Name].Busy, 1e-9, "%s: %s at %.0f records/s", name, v.Name, rate)
			}
		}
		assert.NoError(t, testbed.WorkloadSpecWithSink(io.Discard, a.Job, "127.0.0.1:9092", sink), name)
		if name == "orders" {
			assert.Equal(t, s.Job, a.Job, "nothing to change")
			continue
		}
		assert.Error(t, testbed.WorkloadSpecWithSink(io.Discard, s.Job, "127.0.0.1:9092", sink), "clicks as written drops 4 records in 5")
		assert.Equal(t, 1.0, a.Job.Vertices[1].Selectivity)
		assert.Equal(t, 20000.0, a.Job.Vertices[2].Capacity, "the sink receives 5× the records")
		assert.Equal(t, 0.2, s.Job.Vertices[1].Selectivity, "the original is left alone")
	}
}

// The real demo's jobs fit the testbed: each peaks at 1,000 records/s
// (the two share its 2,000), the day compressed 24× into 7m30s with its
// 5-minute SLO, an exactly-once sink. And both get the same policy in
// wall time, whichever way they opt in: the annotated job through the
// annotations and the Flink operator's job.autoscaler.* options, as the
// opt-in controller reads them, the other through its policy.
func TestDemoRealJobs(t *testing.T) {
	jobs, day, err := newRealJobs(0, DefaultRealSpeed, &lineWriter{to: func(string) {}})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	assert.Equal(t, 3*time.Hour, day, "the whole day")
	part, day, err := newRealJobs(80*time.Minute, DefaultRealSpeed, &lineWriter{to: func(string) {}})
	require.NoError(t, err)
	assert.Equal(t, 80*time.Minute, day, "its first part")
	for i, j := range part {
		r, err := testbed.Realise(j.rs.Scenario, j.rs.Scale)
		require.NoError(t, err, "%s cut at 1:20", j.sc.Name)
		assert.Equal(t, 200*time.Second, r.Scaled.Duration)
		for _, at := range []time.Duration{10 * time.Minute, 50 * time.Minute, 79 * time.Minute} {
			assert.Equal(t, jobs[i].sc.Rate(j.sc.Job.Topics[0].Name, at), j.sc.Rate(j.sc.Job.Topics[0].Name, at),
				"%s: the same load at %s", j.sc.Name, at)
		}
	}
	for _, j := range jobs {
		r, err := testbed.Realise(j.rs.Scenario, j.rs.Scale)
		require.NoError(t, err, j.sc.Name)
		assert.LessOrEqual(t, r.PeakRate, float64(realRateBudget), j.sc.Name)
		assert.Greater(t, r.PeakRate, 0.9*realRateBudget, j.sc.Name)
		assert.Equal(t, 7*time.Minute+30*time.Second, r.Scaled.Duration, j.sc.Name)
		assert.Equal(t, 12500*time.Millisecond, r.Scaled.SLO.Lag, j.sc.Name)
		assert.InDelta(t, realStateBytes, stateBytes(r.Scaled), 1024, "%s: state", j.sc.Name)
		assert.Equal(t, testbed.GuaranteeExactlyOnce, j.rs.Sink.Guarantee)
		assert.Equal(t, j.sc.Job.Scheduler == "adaptive", j.rs.Adaptive, j.sc.Name)
		assert.Equal(t, 1, r.TaskManagers, "%s: its first parallelism on one TaskManager of %d slots", j.sc.Name, realSlots)
		assert.Equal(t, 1.0, testbed.CostFactor(r.Scaled.Job.TaskManager), "one core per slot, as in the day")
	}
	orders, clicks := jobs[0], jobs[1]
	assert.Equal(t, testbed.Flink120, orders.rs.Flink)
	assert.False(t, orders.rs.Adaptive, "orders: savepoint restarts")
	assert.True(t, clicks.rs.Adaptive, "clicks: in place")

	ann := map[string]string{optin.AnnotationEnabled: "true", optin.AnnotationMode: "Apply"}
	for k, v := range orders.rs.Annotations {
		ann[k] = v
	}
	conf := map[string]string{"job.autoscaler.enabled": "false"}
	for k, v := range orders.rs.FlinkConfiguration {
		conf[k] = v
	}
	annotated, _, err := optin.PolicySpec("orders", ann, conf)
	require.NoError(t, err)
	var written v1alpha1.FlinkScalingPolicy
	clicks.rs.Policy(&written)
	for _, spec := range []v1alpha1.FlinkScalingPolicySpec{annotated, written.Spec} {
		assert.Equal(t, &metav1.Duration{Duration: realWindow}, spec.MetricsWindow)
		assert.Equal(t, &metav1.Duration{Duration: realWarmUp}, spec.WarmUp)
		assert.Equal(t, &metav1.Duration{Duration: realCooldown}, spec.CooldownPeriod)
		assert.Equal(t, &metav1.Duration{Duration: realCatchUp}, spec.CatchUpDuration)
		assert.Equal(t, &metav1.Duration{Duration: realRestartTime}, spec.RestartTime)
		require.NotNil(t, spec.Behavior)
		assert.Equal(t, &metav1.Duration{Duration: realScaleDownWindow}, spec.Behavior.ScaleDown.StabilizationWindow)
	}
}

// On real Flink the day is compressed 24× by default, and at most 60×
// (the 5-minute SLO is then the 5 s checkpoint floor).
func TestDemoRealConfig(t *testing.T) {
	cfg := Config{Real: true}
	require.NoError(t, cfg.defaults())
	assert.Equal(t, float64(DefaultRealSpeed), cfg.Speed)
	assert.Error(t, (&Config{Real: true, Speed: 61}).defaults())
	assert.NoError(t, (&Config{Real: true, Speed: 60}).defaults())
}

// A real job's units: the wall time since its load began, ×24, is its
// offset in the day; its rates are the played (scaled, compressed)
// scenario's at the matching wall offset; its capacity is the model's of
// the played job, the day's capacity at the same parallelism × the rate
// scale; its SLO is compressed with the day.
func TestDemoRealJobUnits(t *testing.T) {
	jobs, _, err := newRealJobs(0, DefaultRealSpeed, &lineWriter{to: func(string) {}})
	require.NoError(t, err)
	orders := jobs[0]
	r, err := testbed.Realise(orders.rs.Scenario, orders.rs.Scale)
	require.NoError(t, err)
	started := time.Now().Add(-10 * time.Second)
	orders.rs.Testbed = &testbed.Testbed{Realised: r, Started: started}
	require.NoError(t, orders.started())

	assert.InDelta(t, (4 * time.Minute).Seconds(), orders.Elapsed().Seconds(), 24, "10 s of wall time are 4 minutes of the day")
	assert.Equal(t, 48*time.Minute, orders.Offset(started.Add(2*time.Minute)))
	assert.Equal(t, 12500*time.Millisecond, orders.slo)
	rates := orders.Rates(50 * time.Minute)
	assert.Equal(t, r.Scaled.Rate("orders", 125*time.Second), rates["orders"], "0:50 of the day is 125 s of wall time")
	// orders at 2/4/2: the enrichment (4 × 2,500 records/s in the day) is
	// the tightest vertex.
	par := map[string]int{"Source: orders -> Parse": 2, "KeyBy customer -> Enrich": 4, "Sink: enriched-orders": 2}
	assert.InDelta(t, 10000*orders.rs.Scale.Rate, orders.Capacity(par, 2, rates), 1e-6)
}

// fakeBackend is a job on a clock of its own, the day at speed× from
// started, as a real job's is.
type fakeBackend struct {
	view    sim.View
	ids     map[string]string
	started time.Time
	speed   float64
	rec     Records
	rate    float64
}

func (f *fakeBackend) View() sim.View                      { return f.view }
func (f *fakeBackend) VertexID(name string) (string, bool) { id, ok := f.ids[name]; return id, ok }
func (f *fakeBackend) Capacity(par map[string]int, _ int, _ map[string]float64) float64 {
	return 100 * float64(par["b"])
}
func (f *fakeBackend) Rates(time.Duration) map[string]float64 {
	return map[string]float64{"in": f.rate}
}
func (f *fakeBackend) Records(context.Context) (Records, error) {
	return f.rec, nil
}
func (f *fakeBackend) Elapsed() time.Duration { return f.Offset(time.Now()) }
func (f *fakeBackend) Offset(t time.Time) time.Duration {
	return time.Duration(float64(t.Sub(f.started)) * f.speed)
}

// The live view and the result read any backend: a job on a clock of its
// own gets its events at its offsets in the day, its measured downtime as
// measured, its vertices by the scenario's names whatever Flink calls
// them, and its integrals over its own clock.
func TestMonitorReadsAnyBackend(t *testing.T) {
	s, err := loadScenario("clicks")
	require.NoError(t, err)
	s.Job.Vertices = s.Job.Vertices[:2]
	s.Job.Vertices[0].Name, s.Job.Vertices[1].Name = "a", "b"
	started := t0
	fb := &fakeBackend{ids: map[string]string{"a": "id-a", "b": "id-b"}, started: started, speed: 24, rate: 150,
		rec: Records{Produced: 10000, Consumed: 9000, Lag: 1000}}
	fb.view.Job = sim.JobView{ID: "job-1", State: "RUNNING", Vertices: []sim.VertexView{
		{ID: "id-a", Name: "a -> Filter -> Map", Parallelism: 2}, {ID: "id-b", Name: "b", Parallelism: 3}}}
	fb.view.TaskManagers = []sim.TaskManagerView{{SlotsNumber: 2, CPUCores: 2}, {SlotsNumber: 2, CPUCores: 2}}
	j := &job{setup: JobSetup{Scenario: "clicks", OptIn: OptInPolicy, Mode: v1alpha1.ModeApply}, sc: s, slo: 5 * time.Second, run: fb}

	require.NoError(t, j.account(context.Background(), 42*time.Minute, time.Hour, true))
	pt, ok := j.lastPoint()
	require.True(t, ok)
	assert.Equal(t, bench.Point{T: 42 * time.Minute, Load: 150, Capacity: 300, Slots: 4, Cores: 4,
		Parallelism: map[string]int{"a": 2, "b": 3}, Lag: 1000, LagSeconds: 1000.0 / 150}, pt)
	assert.InDelta(t, 4, j.slotHours, 1e-9, "4 slots for an hour of the job's clock")
	assert.Equal(t, time.Hour, j.overSLO, "6.7 s of lag is over the 5 s SLO")

	m := newMonitor(nil, []*job{j}, fb.Elapsed, 24, &terminal{w: &bytes.Buffer{}}, false)
	decided := metav1.NewTime(started.Add(105 * time.Second)) // 0:42 of the day
	done := metav1.NewTime(started.Add(110 * time.Second))    // 0:44
	p := &v1alpha1.FlinkScalingPolicy{Spec: v1alpha1.FlinkScalingPolicySpec{Mode: v1alpha1.ModeApply}}
	p.Status = v1alpha1.FlinkScalingPolicyStatus{CurrentParallelism: "2/3",
		Vertices: []v1alpha1.VertexStatus{{ID: "id-a", Name: "a", Current: 2}, {ID: "id-b", Name: "b", Current: 3}},
		Rescale:  &v1alpha1.RescaleStatus{StartTime: decided, FromJobID: "job-1", AppliedParallelism: map[string]int32{"id-b": 6}}}
	m.observe(j, p)
	p.Status.Rescale = nil
	p.Status.History = &v1alpha1.HistoryStatus{Rescales: []v1alpha1.RescaleRecordStatus{{
		DecidedAt: decided, CompletedAt: &done, Downtime: metav1.Duration{Duration: 4 * time.Second},
		Outcome: scaling.OutcomeSucceeded, Vertices: []v1alpha1.RescaleVertexStatus{{ID: "id-b", From: 3, To: 6}},
	}}}
	m.observe(j, p)
	require.Len(t, m.events, 2)
	assert.Equal(t, Event{At: 42 * time.Minute, Job: "clicks", Kind: EventRescaleStarted,
		Text: "rescale 2/3 → 2/6 started (in place, adaptive scheduler)"}, m.events[0])
	assert.Equal(t, Event{At: 44 * time.Minute, Job: "clicks", Kind: EventRescaleDone,
		Text: "rescale 3 → 6 done: 4s of downtime"}, m.events[1])
	assert.Equal(t, []bench.Event{{T: 42 * time.Minute, Completed: 44 * time.Minute, Downtime: 4 * time.Second,
		From: map[string]int{"b": 3}, To: map[string]int{"b": 6}, InPlace: true}}, m.watches["clicks"].rescales,
		"the same Flink job after the rescale: in place")
}

// A real run's summary and reports say what ran where, in which units,
// what was left out and what the audit found; the simulated demo's stay
// as they were (TestReports).
func TestDemoRealReports(t *testing.T) {
	res := &Result{Started: t0, Wall: 8 * time.Minute, SetupTime: 40 * time.Second, Speed: 24, Day: 3 * time.Hour,
		PollInterval: 10 * time.Second, Namespace: Namespace, Out: "/tmp/x", Kubeconfig: "/tmp/x/kubeconfig",
		Log: "/tmp/x/controller.log", Real: true, LeftOut: []string{realLeftOut},
		Jobs: []*JobResult{{Name: "orders", OptIn: OptInAnnotations, Mode: v1alpha1.ModeApply, SLO: 12500 * time.Millisecond,
			Flink: "1.20", RateScale: 0.054, Downtime: 12 * time.Second,
			Audit:  &testbed.AuditResult{Produced: 300000, Read: 300000, Distinct: 300000},
			Result: &bench.Result{Rescales: 2, MaxLagSeconds: 9, SlotHours: 0.8}, StartParallelism: "2/4/2", EndParallelism: "2/4/2"}},
	}
	var sum bytes.Buffer
	res.WriteSummary(&sum)
	for _, want := range []string{
		"3h00m of the day, compressed 24×, in 8m00s of wall time on real Flink (setup 40s)",
		"time over the SLO (12.5s, the day's compressed)",
		"payments (DryRun) is left out",
		"annotations · Apply · Flink 1.20",
		"orders    300000 records produced, each read once",
	} {
		assert.Contains(t, sum.String(), want)
	}
	var md bytes.Buffer
	res.WriteMarkdown(&md)
	for _, want := range []string{"# flinkscale demo on real Flink, ", "compressed 24× into 7m30s", "orders on Flink 1.20",
		"`make demo-real` runs", "at 0.054× the day's rates"} {
		assert.Contains(t, md.String(), want)
	}
	var page bytes.Buffer
	require.NoError(t, res.WriteHTML(&page, nil))
	assert.Contains(t, page.String(), "<title>flinkscale demo on real Flink, ")
}
