package controllers

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

// counterFamilies are the counter and histogram families, as the vectors
// named them.
var counterFamilies = []string{
	"flinkscale_collection_duration_seconds", "flinkscale_collection_errors_total", "flinkscale_decision_reasons_total",
	"flinkscale_decisions_total", "flinkscale_holds_total", "flinkscale_rescale_downtime_seconds",
	"flinkscale_rescales_started_total", "flinkscale_rescales_total",
}

// counterRecorder is what records a policy's counters and histograms: the
// store (storeRecorder) and the vectors it replaced (vectorMetrics).
type counterRecorder interface {
	start(pol *v1alpha1.FlinkScalingPolicy)
	decision(pol *v1alpha1.FlinkScalingPolicy, d scaling.Decision)
	blocked(pol *v1alpha1.FlinkScalingPolicy, reason string)
	rescaleStarted(pol *v1alpha1.FlinkScalingPolicy)
	rescaleFinished(pol *v1alpha1.FlinkScalingPolicy, outcome string, downtime time.Duration)
	collection(pol *v1alpha1.FlinkScalingPolicy, source string, took time.Duration, err error)
	forget(namespace, name string)
}

// storeRecorder records through the store, as the reconciler does.
type storeRecorder struct{ m *Metrics }

var testBand = scaling.Utilization{Min: 0.4, Target: 0.7, Max: 0.85}

func (r storeRecorder) start(pol *v1alpha1.FlinkScalingPolicy) { r.m.policy(pol).start() }

func (r storeRecorder) decision(pol *v1alpha1.FlinkScalingPolicy, d scaling.Decision) {
	r.m.policy(pol).decision(d, testBand, 3000)
}

func (r storeRecorder) blocked(pol *v1alpha1.FlinkScalingPolicy, reason string) {
	r.m.policy(pol).blocked(reason)
}

func (r storeRecorder) rescaleStarted(pol *v1alpha1.FlinkScalingPolicy) {
	r.m.policy(pol).rescaleStarted()
}

func (r storeRecorder) rescaleFinished(pol *v1alpha1.FlinkScalingPolicy, outcome string, downtime time.Duration) {
	r.m.policy(pol).rescaleFinished(outcome, downtime)
}

func (r storeRecorder) collection(pol *v1alpha1.FlinkScalingPolicy, source string, took time.Duration, err error) {
	r.m.policy(pol).collection(source, took, err)
}

func (r storeRecorder) forget(namespace, name string) { r.m.forget(namespace, name) }

// vectorMetrics record the counters and histograms as the controller did
// with client_golang's vectors until the store kept them (NewMetrics and
// policyMetrics as they were, names, help, labels and buckets copied): the
// reference of TestCounterStoreMatchesVectors.
type vectorMetrics struct {
	decisions, reasons, holds, started, rescales, errors *prometheus.CounterVec
	downtime, duration                                   *prometheus.HistogramVec
}

func newVectorMetrics(reg prometheus.Registerer) *vectorMetrics {
	job := []string{"namespace", "policy", "deployment"}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "flinkscale", Name: name, Help: help}, append(slices.Clone(job), extra...))
	}
	v := &vectorMetrics{
		decisions: counter("decisions_total", "Decisions made, by action (Scale or Hold).", "action"),
		reasons:   counter("decision_reasons_total", "Reason codes of the decisions made, by action and reason (each code counted once per decision).", "action", "reason"),
		holds:     counter("holds_total", "Decisions not acted on, by the reason: the model's hold reason, or the gate that blocked a recommended rescale.", "reason"),
		started:   counter("rescales_started_total", "Rescales started (the FlinkDeployment patched)."),
		rescales:  counter("rescales_total", "Rescales finished, by outcome (Succeeded, Failed, RolledBack).", "outcome"),
		downtime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "flinkscale", Name: "rescale_downtime_seconds",
			Help:    "Measured downtime of successful rescales: from the apply until Flink reports the job RUNNING again.",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200},
		}, job),
		errors: counter("collection_errors_total", "Failed metric collections, by source (flink: the REST API or Prometheus; kafka: the brokers).", "source"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "flinkscale", Name: "collection_duration_seconds",
			Help:    "Time one metric collection took, by source.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, append(slices.Clone(job), "source")),
	}
	reg.MustRegister(v.decisions, v.reasons, v.holds, v.started, v.rescales, v.downtime, v.errors, v.duration)
	return v
}

func (v *vectorMetrics) labels(pol *v1alpha1.FlinkScalingPolicy, extra ...string) prometheus.Labels {
	l := prometheus.Labels{"namespace": pol.Namespace, "policy": pol.Name, "deployment": pol.Spec.TargetRef.Name}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func (v *vectorMetrics) start(pol *v1alpha1.FlinkScalingPolicy) {
	for _, a := range []scaling.Action{scaling.ActionScale, scaling.ActionHold} {
		v.decisions.With(v.labels(pol, "action", string(a))).Add(0)
	}
	for _, o := range []string{scaling.OutcomeSucceeded, scaling.OutcomeFailed, scaling.OutcomeRolledBack} {
		v.rescales.With(v.labels(pol, "outcome", o)).Add(0)
	}
	v.started.With(v.labels(pol)).Add(0)
	for _, s := range []string{SourceFlink, SourceKafka} {
		v.errors.With(v.labels(pol, "source", s)).Add(0)
	}
}

func (v *vectorMetrics) decision(pol *v1alpha1.FlinkScalingPolicy, d scaling.Decision) {
	action := string(d.Action)
	v.decisions.With(v.labels(pol, "action", action)).Inc()
	seen := map[scaling.ReasonCode]bool{}
	for _, r := range d.Reasons {
		if !seen[r.Code] {
			seen[r.Code] = true
			v.reasons.With(v.labels(pol, "action", action, "reason", string(r.Code))).Inc()
		}
	}
	if d.Action == scaling.ActionHold {
		v.holds.With(v.labels(pol, "reason", primaryReason(d))).Inc()
	}
}

func (v *vectorMetrics) blocked(pol *v1alpha1.FlinkScalingPolicy, reason string) {
	v.holds.With(v.labels(pol, "reason", reason)).Inc()
}

func (v *vectorMetrics) rescaleStarted(pol *v1alpha1.FlinkScalingPolicy) {
	v.started.With(v.labels(pol)).Inc()
}

func (v *vectorMetrics) rescaleFinished(pol *v1alpha1.FlinkScalingPolicy, outcome string, downtime time.Duration) {
	v.rescales.With(v.labels(pol, "outcome", outcome)).Inc()
	if outcome == scaling.OutcomeSucceeded {
		v.downtime.With(v.labels(pol)).Observe(downtime.Seconds())
	}
}

func (v *vectorMetrics) collection(pol *v1alpha1.FlinkScalingPolicy, source string, took time.Duration, err error) {
	v.duration.With(v.labels(pol, "source", source)).Observe(took.Seconds())
	if err != nil {
		v.errors.With(v.labels(pol, "source", source)).Inc()
	}
}

func (v *vectorMetrics) forget(namespace, name string) {
	match := prometheus.Labels{"namespace": namespace, "policy": name}
	for _, c := range []*prometheus.CounterVec{v.decisions, v.reasons, v.holds, v.started, v.rescales, v.errors} {
		c.DeletePartialMatch(match)
	}
	v.downtime.DeletePartialMatch(match)
	v.duration.DeletePartialMatch(match)
}

// counterExposition is the text exposition of g's counter and histogram
// families.
func counterExposition(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if slices.Contains(counterFamilies, mf.GetName()) {
			require.NoError(t, enc.Encode(mf))
		}
	}
	return buf.String()
}

// The store's counters and histograms scrape byte for byte as the
// client_golang vectors they replaced, through a registry (Collect) and
// through the store's own Gather, after each event of a sequence: series
// started at zero and others appearing on first use (a policy never
// started), decisions with repeated and vertex-level reasons, holds of
// each kind, blocked rescales, rescales of every outcome with downtimes in
// and beyond the buckets, collections with and without errors from both
// sources (on a bucket bound, beyond the last, sums of inexact decimals),
// values beyond the fixed sets, a policy retargeted as the reconciler
// does it (forget, then start under the new deployment), and policies
// forgotten, one of them recorded again; four policies whose deployment,
// namespace and name sort differently.
func TestCounterStoreMatchesVectors(t *testing.T) {
	reg, ref := prometheus.NewRegistry(), prometheus.NewRegistry()
	m := NewMetrics(reg)
	store, vectors := storeRecorder{m}, newVectorMetrics(ref)

	orders, retargeted := testPolicy("prod", "orders", "orders-fd"), testPolicy("prod", "orders", "orders-v2")
	clicks, payments, late := testPolicy("prod", "clicks", "z-clicks"), testPolicy("billing", "payments", "a-payments"), testPolicy("prod", "late", "late-fd")
	reasons := func(rs ...string) []scaling.Reason { // code, vertex, …
		var out []scaling.Reason
		for i := 0; i+1 < len(rs); i += 2 {
			out = append(out, scaling.Reason{Code: scaling.ReasonCode(rs[i]), Vertex: rs[i+1]})
		}
		return out
	}
	scale := scaling.Decision{Action: scaling.ActionScale,
		Reasons: reasons("Overloaded", "a", "Overloaded", "b", "Backpressured", "b", "Bottleneck", "")}
	holdCooldown := scaling.Decision{Action: scaling.ActionHold, Reasons: reasons("WithinBand", "a", "Cooldown", "")}
	holdVertex := scaling.Decision{Action: scaling.ActionHold, Reasons: reasons("ScaleDownStabilizing", "a", "WithinBand", "b")}
	holdNone := scaling.Decision{Action: scaling.ActionHold}
	other := scaling.Decision{Action: "Observe", Reasons: reasons("WithinBand", "")}
	const (
		ordersFD = `deployment="orders-fd",namespace="prod",policy="orders"`
		ordersV2 = `deployment="orders-v2",namespace="prod",policy="orders"`
		pay      = `deployment="a-payments",namespace="billing",policy="payments"`
		lateFD   = `deployment="late-fd",namespace="prod",policy="late"`
	)

	events := []struct {
		what string
		do   func(r counterRecorder)
		// want are series the exposition has after the event, gone
		// text it does not have.
		want, gone []string
	}{
		{what: "start", do: func(r counterRecorder) { r.start(orders); r.start(clicks); r.start(payments) },
			want: []string{`flinkscale_decisions_total{action="Hold",` + ordersFD + `} 0`, `flinkscale_rescales_started_total{` + pay + `} 0`,
				`flinkscale_collection_errors_total{` + ordersFD + `,source="kafka"} 0`, `flinkscale_rescales_total{deployment="orders-fd",namespace="prod",outcome="RolledBack",policy="orders"} 0`},
			gone: []string{"flinkscale_decision_reasons_total", "flinkscale_holds_total", "_bucket"}},
		{what: "decisions", do: func(r counterRecorder) {
			r.decision(orders, scale)
			r.decision(clicks, holdCooldown)
			r.decision(payments, holdVertex)
			r.decision(late, holdNone)
		}, want: []string{
			`flinkscale_decision_reasons_total{action="Scale",` + ordersFD + `,reason="Overloaded"} 1`,
			`flinkscale_holds_total{deployment="z-clicks",namespace="prod",policy="clicks",reason="Cooldown"} 1`,
			`flinkscale_holds_total{` + pay + `,reason="ScaleDownStabilizing"} 1`,
			`flinkscale_holds_total{` + lateFD + `,reason="NoChange"} 1`,
			`flinkscale_decisions_total{action="Hold",` + lateFD + `} 1`,
		}, gone: []string{`flinkscale_decisions_total{action="Scale",` + lateFD, `flinkscale_collection_errors_total{` + lateFD}},
		{what: "collections", do: func(r counterRecorder) {
			r.collection(orders, SourceFlink, 23*time.Millisecond, nil)
			r.collection(orders, SourceKafka, 5*time.Millisecond, nil) // on the first bound
			r.collection(clicks, SourceFlink, 0, assert.AnError)
			r.collection(clicks, SourceKafka, 12*time.Second, assert.AnError) // beyond the last
			for _, took := range []time.Duration{100, 200, 300} {
				r.collection(payments, SourceFlink, took*time.Millisecond, nil)
			}
			r.collection(late, SourceKafka, 7*time.Millisecond, nil)
		}, want: []string{
			`flinkscale_collection_duration_seconds_bucket{` + ordersFD + `,source="kafka",le="0.005"} 1`,
			`flinkscale_collection_duration_seconds_bucket{deployment="z-clicks",namespace="prod",policy="clicks",source="kafka",le="10"} 0`,
			`flinkscale_collection_duration_seconds_bucket{deployment="z-clicks",namespace="prod",policy="clicks",source="kafka",le="+Inf"} 1`,
			`flinkscale_collection_duration_seconds_sum{` + pay + `,source="flink"} 0.6000000000000001`,
			`flinkscale_collection_errors_total{deployment="z-clicks",namespace="prod",policy="clicks",source="flink"} 1`,
		}},
		{what: "blocked", do: func(r counterRecorder) {
			r.blocked(orders, v1alpha1.ReasonExcludedPeriod)
			r.blocked(orders, v1alpha1.ReasonDryRun)
			r.blocked(clicks, v1alpha1.ReasonExcludedPeriod)
		}, want: []string{`flinkscale_holds_total{` + ordersFD + `,reason="DryRun"} 1`}},
		{what: "rescales", do: func(r counterRecorder) {
			r.rescaleStarted(orders)
			r.rescaleFinished(orders, scaling.OutcomeSucceeded, 40*time.Second)
			r.rescaleStarted(payments)
			r.rescaleFinished(payments, scaling.OutcomeFailed, 0)
			r.rescaleFinished(payments, scaling.OutcomeRolledBack, 0)
			r.rescaleFinished(clicks, scaling.OutcomeSucceeded, 2000*time.Second)
			r.rescaleFinished(clicks, scaling.OutcomeSucceeded, 7500*time.Millisecond)
			r.rescaleFinished(late, scaling.OutcomeSucceeded, 5*time.Second)
		}, want: []string{
			`flinkscale_rescale_downtime_seconds_bucket{` + ordersFD + `,le="30"} 0`,
			`flinkscale_rescale_downtime_seconds_bucket{` + ordersFD + `,le="45"} 1`,
			`flinkscale_rescale_downtime_seconds_sum{deployment="z-clicks",namespace="prod",policy="clicks"} 2007.5`,
			`flinkscale_rescale_downtime_seconds_bucket{` + lateFD + `,le="5"} 1`,
			`flinkscale_rescales_total{deployment="late-fd",namespace="prod",outcome="Succeeded",policy="late"} 1`,
		}, gone: []string{`flinkscale_rescale_downtime_seconds_count{` + pay}},
		{what: "more decisions", do: func(r counterRecorder) {
			r.decision(orders, scale)
			r.decision(orders, holdCooldown)
		}, want: []string{
			`flinkscale_decision_reasons_total{action="Scale",` + ordersFD + `,reason="Overloaded"} 2`,
			`flinkscale_decision_reasons_total{action="Hold",` + ordersFD + `,reason="WithinBand"} 1`,
		}},
		{what: "orders retargeted", do: func(r counterRecorder) {
			r.forget(orders.Namespace, orders.Name)
			r.start(retargeted)
			r.decision(retargeted, holdCooldown)
			r.collection(retargeted, SourceFlink, 31*time.Millisecond, nil)
		}, want: []string{`flinkscale_rescales_started_total{` + ordersV2 + `} 0`, `flinkscale_holds_total{` + ordersV2 + `,reason="Cooldown"} 1`},
			gone: []string{"orders-fd"}},
		{what: "clicks forgotten", do: func(r counterRecorder) { r.forget(clicks.Namespace, clicks.Name) }, gone: []string{`policy="clicks"`}},
		{what: "values beyond the fixed sets", do: func(r counterRecorder) {
			r.decision(payments, other)
			r.rescaleFinished(payments, scaling.OutcomeInProgress, 0)
			r.collection(payments, "prometheus", 50*time.Millisecond, assert.AnError)
		}, want: []string{
			`flinkscale_decisions_total{action="Observe",` + pay + `} 1`,
			`flinkscale_decision_reasons_total{action="Observe",` + pay + `,reason="WithinBand"} 1`,
			`flinkscale_rescales_total{deployment="a-payments",namespace="billing",outcome="InProgress",policy="payments"} 1`,
			`flinkscale_collection_duration_seconds_bucket{` + pay + `,source="prometheus",le="0.05"} 1`,
			`flinkscale_collection_errors_total{` + pay + `,source="prometheus"} 1`,
		}},
		{what: "late forgotten and recorded again", do: func(r counterRecorder) {
			r.forget(late.Namespace, late.Name)
			r.collection(late, SourceFlink, time.Millisecond, nil)
		}, want: []string{`flinkscale_collection_duration_seconds_count{` + lateFD + `,source="flink"} 1`},
			gone: []string{`flinkscale_holds_total{` + lateFD, `flinkscale_collection_duration_seconds_count{` + lateFD + `,source="kafka"}`}},
	}
	for _, e := range events {
		e.do(store)
		e.do(vectors)
		want := counterExposition(t, ref)
		for name, got := range map[string]string{"registry": counterExposition(t, reg), "Gather": counterExposition(t, m.gauges)} {
			if got != want {
				t.Fatalf("after %s: the store's exposition (%s) differs from the vectors':\n%s", e.what, name, firstDifference(got, want))
			}
		}
		for _, s := range e.want {
			assert.Contains(t, want, s+"\n", "after %s", e.what)
		}
		for _, s := range e.gone {
			assert.NotContains(t, want, s, "after %s", e.what)
		}
	}
	problems, err := testutil.CollectAndLint(m.gauges)
	require.NoError(t, err)
	assert.Empty(t, problems, "the store's series follow Prometheus' conventions")
}

// withPairs merges a series' own label pairs into the job's by name: an
// own label may sort before, between or after the job's; none is the
// job's labels themselves.
func TestWithPairs(t *testing.T) {
	job := labelPairs(LabelNamespace, "ns", LabelPolicy, "p", LabelDeployment, "d")
	names := func(ls []*dto.LabelPair) string {
		var out []string
		for _, l := range ls {
			out = append(out, l.GetName()+"="+l.GetValue())
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		own  []string
		want string
	}{
		{nil, "deployment=d,namespace=ns,policy=p"},
		{[]string{"action", "Hold"}, "action=Hold,deployment=d,namespace=ns,policy=p"},
		{[]string{"outcome", "Failed"}, "deployment=d,namespace=ns,outcome=Failed,policy=p"},
		{[]string{"source", "kafka"}, "deployment=d,namespace=ns,policy=p,source=kafka"},
		{[]string{"action", "Scale", "reason", "Overloaded"}, "action=Scale,deployment=d,namespace=ns,policy=p,reason=Overloaded"},
	} {
		var own [2]*dto.LabelPair
		copy(own[:], labelPairs(c.own...))
		got := withPairs(job, own)
		assert.Equal(t, c.want, names(got), c.own)
		assert.Equal(t, len(got), cap(got), "at full capacity: %v", c.own)
		if c.own == nil {
			assert.Same(t, &job[0], &got[0], "the job's own labels")
		}
	}
}
