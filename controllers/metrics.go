package controllers

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

// MetricsNamespace prefixes every metric the controller exports.
const MetricsNamespace = "flinkscale"

// Label names. Every series carries namespace, policy and deployment (the
// FlinkDeployment); per-vertex series add vertex (the vertex name, as Flink
// shows it) and vertex_id (the JobVertexID).
const (
	LabelNamespace  = "namespace"
	LabelPolicy     = "policy"
	LabelDeployment = "deployment"
	LabelVertex     = "vertex"
	LabelVertexID   = "vertex_id"
)

var (
	jobLabels    = []string{LabelNamespace, LabelPolicy, LabelDeployment}
	vertexLabels = []string{LabelNamespace, LabelPolicy, LabelDeployment, LabelVertex, LabelVertexID}
)

// Outcomes counted by flinkscale_rescales_total, all started at zero.
var rescaleOutcomes = []string{scaling.OutcomeSucceeded, scaling.OutcomeFailed, scaling.OutcomeRolledBack}

// Collection sources counted by the collection metrics, all started at zero.
const (
	SourceFlink = "flink"
	SourceKafka = "kafka"
)

// Metrics are the controller's Prometheus metrics (docs/observability.md
// lists them with their meaning). A nil *Metrics records nothing.
//
// The gauges (per vertex and per policy, about 100 series a job) are not
// client_golang vectors: each policy's values live in one compact record
// (gauges), and a collector turns them into series when Prometheus
// scrapes. A vector keeps every series' label pairs and hashes for good,
// 81 MB at 1,000 jobs of 10 vertices (make bench-scale's heap profile);
// the records take a few. Counters and histograms, a dozen series a
// policy, stay vectors.
type Metrics struct {
	Decisions       *prometheus.CounterVec
	DecisionReasons *prometheus.CounterVec
	Holds           *prometheus.CounterVec
	RescalesStarted *prometheus.CounterVec
	Rescales        *prometheus.CounterVec
	Downtime        *prometheus.HistogramVec

	CollectionErrors   *prometheus.CounterVec
	CollectionDuration *prometheus.HistogramVec

	gauges *gaugeStore

	// noVertexDetail: see SetVertexDetail.
	noVertexDetail atomic.Bool
}

// SetVertexDetail says whether every policy exports its per-vertex detail
// gauges (utilization, expected utilization, true processing rate, target
// rate, backpressure): five series per vertex, half of a fleet's series.
// Off, only policies annotated flinkscale.io/vertex-metrics: "true" have
// them (and "false" turns them off for a policy when on); the per-vertex
// parallelism and recommendation are always exported. On by default.
func (m *Metrics) SetVertexDetail(on bool) { m.noVertexDetail.Store(!on) }

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: name, Help: help},
			append(append([]string{}, jobLabels...), extra...))
	}
	with := func(extra ...string) []string { return append(append([]string{}, jobLabels...), extra...) }
	m := &Metrics{
		gauges: newGaugeStore(),

		Decisions:       counter("decisions_total", "Decisions made, by action (Scale or Hold).", "action"),
		DecisionReasons: counter("decision_reasons_total", "Reason codes of the decisions made, by action and reason (each code counted once per decision).", "action", "reason"),
		Holds:           counter("holds_total", "Decisions not acted on, by the reason: the model's hold reason, or the gate that blocked a recommended rescale.", "reason"),
		RescalesStarted: counter("rescales_started_total", "Rescales started (the FlinkDeployment patched)."),
		Rescales:        counter("rescales_total", "Rescales finished, by outcome (Succeeded, Failed, RolledBack).", "outcome"),
		Downtime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: MetricsNamespace, Name: "rescale_downtime_seconds",
			Help:    "Measured downtime of successful rescales: from the apply until Flink reports the job RUNNING again.",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200},
		}, jobLabels),

		CollectionErrors: counter("collection_errors_total", "Failed metric collections, by source (flink: the REST API or Prometheus; kafka: the brokers).", "source"),
		CollectionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: MetricsNamespace, Name: "collection_duration_seconds",
			Help:    "Time one metric collection took, by source.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, with("source")),
	}
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.gauges, m.Decisions, m.DecisionReasons, m.Holds, m.RescalesStarted, m.Rescales, m.Downtime,
		m.CollectionErrors, m.CollectionDuration,
	}
}

// NewGatheredMetrics creates the metrics, registers all but the gauges
// with reg, and returns with them the Gatherer of them all: base's
// families (base is reg's Gatherer) and the gauges', which their store
// makes itself (gaugeStore.Gather) rather than a registry checking and
// sorting each of their series: most of a scrape of a fleet.
func NewGatheredMetrics(reg prometheus.Registerer, base prometheus.Gatherer) (*Metrics, prometheus.Gatherer) {
	m := NewMetrics(nil)
	for _, c := range m.collectors() {
		if c != m.gauges {
			reg.MustRegister(c)
		}
	}
	return m, mergedGatherer{base: base, own: m.gauges}
}

// mergedGatherer is base's families and own's, in name order.
type mergedGatherer struct {
	base, own prometheus.Gatherer
}

// Gather implements prometheus.Gatherer. As a registry's, it returns what
// it gathered along with an error of base's; a family both have is an
// error, and base's copy is served.
func (g mergedGatherer) Gather() ([]*dto.MetricFamily, error) {
	base, err := g.base.Gather()
	own, oerr := g.own.Gather()
	out := make([]*dto.MetricFamily, 0, len(base)+len(own))
	for len(base) > 0 || len(own) > 0 {
		switch {
		case len(own) == 0 || len(base) > 0 && base[0].GetName() < own[0].GetName():
			out, base = append(out, base[0]), base[1:]
		case len(base) == 0 || own[0].GetName() < base[0].GetName():
			out, own = append(out, own[0]), own[1:]
		default:
			err = errors.Join(err, fmt.Errorf("metric family %s gathered twice", own[0].GetName()))
			own = own[1:]
		}
	}
	return out, errors.Join(err, oerr)
}

// registry is a Registerer whose Gather is another's.
type registry struct {
	prometheus.Registerer
	prometheus.Gatherer
}

var (
	defaultMetricsOnce sync.Once
	defaultMetrics     *Metrics
)

// DefaultMetrics are the metrics registered once with controller-runtime's
// registry, which the manager's metrics endpoint serves. The first call
// replaces ctrlmetrics.Registry with one whose Gather adds the gauges
// (NewGatheredMetrics): make it before any manager starts, as
// SetupWithManager does.
func DefaultMetrics() *Metrics {
	defaultMetricsOnce.Do(func() {
		reg := ctrlmetrics.Registry
		m, g := NewGatheredMetrics(reg, reg)
		ctrlmetrics.Registry = registry{Registerer: reg, Gatherer: g}
		defaultMetrics = m
	})
	return defaultMetrics
}

// policyMetrics records one policy's series.
type policyMetrics struct {
	m      *Metrics
	labels prometheus.Labels // namespace, policy, deployment
	// detail: the per-vertex detail gauges are exported (SetVertexDetail,
	// or the policy's annotation).
	detail bool
}

func (m *Metrics) policy(pol *v1alpha1.FlinkScalingPolicy) policyMetrics {
	p := policyMetrics{m: m, labels: prometheus.Labels{
		LabelNamespace: pol.Namespace, LabelPolicy: pol.Name, LabelDeployment: pol.Spec.TargetRef.Name,
	}}
	if m != nil {
		switch pol.Annotations[v1alpha1.AnnotationVertexMetrics] {
		case "true":
			p.detail = true
		case "false":
			p.detail = false
		default:
			p.detail = !m.noVertexDetail.Load()
		}
	}
	return p
}

func (p policyMetrics) with(extra ...string) prometheus.Labels {
	l := make(prometheus.Labels, len(p.labels)+len(extra)/2)
	for k, v := range p.labels {
		l[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// ref is the policy's key in the gauge store.
func (p policyMetrics) ref() policyRef {
	return policyRef{p.labels[LabelNamespace], p.labels[LabelPolicy]}
}

// gauges runs f on the policy's gauge record.
func (p policyMetrics) gauges(f func(*policyGauges)) {
	p.m.gauges.update(p.ref(), p.labels[LabelDeployment], f)
}

// start makes the policy's series exist at zero, so that rates and alerts
// work before anything happened: decisions by action, rescales by outcome,
// collection errors by source, the rescale gauge.
func (p policyMetrics) start() {
	if p.m == nil {
		return
	}
	for _, a := range []scaling.Action{scaling.ActionScale, scaling.ActionHold} {
		p.m.Decisions.With(p.with("action", string(a))).Add(0)
	}
	for _, o := range rescaleOutcomes {
		p.m.Rescales.With(p.with("outcome", o)).Add(0)
	}
	p.m.RescalesStarted.With(p.labels).Add(0)
	for _, s := range []string{SourceFlink, SourceKafka} {
		p.m.CollectionErrors.With(p.with("source", s)).Add(0)
	}
	p.gauges(func(g *policyGauges) { g.hasRescaleInProg = true })
}

// forget deletes every series of the policy (namespace and name), whatever
// its deployment label.
func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	m.gauges.forget(policyRef{namespace, name})
	match := prometheus.Labels{LabelNamespace: namespace, LabelPolicy: name}
	for _, c := range m.collectors() {
		switch v := c.(type) {
		case *prometheus.CounterVec:
			v.DeletePartialMatch(match)
		case *prometheus.HistogramVec:
			v.DeletePartialMatch(match)
		}
	}
}

// decision records a decision: the per-vertex gauges (series of vertices
// gone from the job are deleted), the job's gauges and the counters.
func (p policyMetrics) decision(d scaling.Decision, band scaling.Utilization, arrival float64) {
	if p.m == nil {
		return
	}
	vs := make([]vertexGauges, len(d.Vertices))
	for i, v := range d.Vertices {
		g := &vs[i]
		g.name, g.id = vertexName(v.Name, v.ID), v.ID
		g.v[gParallelism], g.v[gRecommendedParallelism] = float64(v.Current), float64(v.Recommended)
		g.set[gParallelism], g.set[gRecommendedParallelism] = true, true
		if !d.Sized || !p.detail {
			continue
		}
		g.v[gTargetRate], g.v[gBackpressure] = v.TargetRate, v.BackPressuredMsPerSecond/1000
		g.set[gTargetRate], g.set[gBackpressure] = true, true
		// An unmeasurable vertex (idle, or no busy time) gets no figure
		// rather than a zero that would drag capacity and thresholds to zero.
		if v.TrueProcessingRate > 0 {
			g.v[gUtilization], g.v[gExpectedUtilization], g.v[gTrueProcessingRate] = v.UtilizationNow, v.UtilizationAfter, v.TrueProcessingRate
			g.set[gUtilization], g.set[gExpectedUtilization], g.set[gTrueProcessingRate] = true, true, true
		}
	}
	// Unsized, the detail figures of the last sized decision stay.
	var keep [numVertexGauges]bool
	if !d.Sized && p.detail {
		keep = [numVertexGauges]bool{gUtilization: true, gExpectedUtilization: true, gTrueProcessingRate: true, gTargetRate: true, gBackpressure: true}
	}
	p.gauges(func(g *policyGauges) {
		g.setVertices(vs, keep)
		g.band, g.hasBand = [3]float64{band.Min, band.Target, band.Max}, true
		if d.Sized {
			g.sized = true
			g.lagRecords, g.lagSeconds, g.arrival = d.LagRecords, d.LagSeconds, arrival
			g.slots = [2]float64{float64(d.Current.Slots), float64(d.Recommended.Slots)}
			g.cores = [2]float64{d.Current.Cores, d.Recommended.Cores}
			g.predicted = d.PredictedDowntime.Seconds()
			g.memory, g.network = memoryGauges(d.Memory)
		}
		g.lastDecision, g.hasLastDecision = float64(d.At.UnixNano())/1e9, true
	})
	m := p.m
	action := string(d.Action)
	m.Decisions.With(p.with("action", action)).Inc()
	seen := map[scaling.ReasonCode]bool{}
	for _, r := range d.Reasons {
		if !seen[r.Code] {
			seen[r.Code] = true
			m.DecisionReasons.With(p.with("action", action, "reason", string(r.Code))).Inc()
		}
	}
	if d.Action == scaling.ActionHold {
		m.Holds.With(p.with("reason", primaryReason(d))).Inc()
	}
}

// memoryGauges are the memory recommendation's gauges (by state and part)
// and its network buffers (by kind); nil when the decision has none (not
// reported, or memory mode Off).
func memoryGauges(rec *scaling.MemoryRecommendation) (*[2][6]float64, *[3]float64) {
	if rec == nil {
		return nil, nil
	}
	var mem [2][6]float64
	for i, t := range [2]scaling.TaskManagerMemory{rec.Current, rec.Recommended} {
		mem[i] = [6]float64{float64(t.ProcessBytes), float64(t.HeapBytes()), float64(t.ManagedBytes), float64(t.NetworkBytes),
			float64(t.MetaspaceBytes), float64(t.OverheadBytes)}
	}
	var net *[3]float64
	if n := rec.Network; n != nil {
		net = &[3]float64{float64(n.Required), float64(n.MaxUse), float64(n.Available)}
	}
	return &mem, net
}

// observed records the current parallelism alone (Paused: no decision).
func (p policyMetrics) observed(vertices []v1alpha1.VertexStatus) {
	if p.m == nil {
		return
	}
	vs := make([]vertexGauges, len(vertices))
	for i, v := range vertices {
		vs[i].name, vs[i].id = vertexName(v.Name, v.ID), v.ID
		vs[i].v[gParallelism], vs[i].set[gParallelism] = float64(v.Current), true
	}
	keep := [numVertexGauges]bool{}
	for f := range keep {
		keep[f] = gaugeFamily(f) == gRecommendedParallelism || (p.detail && gaugeFamily(f) != gParallelism)
	}
	p.gauges(func(g *policyGauges) { g.setVertices(vs, keep) })
}

// blocked counts a recommended rescale that a gate held back.
func (p policyMetrics) blocked(reason string) {
	if p.m != nil {
		p.m.Holds.With(p.with("reason", reason)).Inc()
	}
}

func (p policyMetrics) rescaleStarted() {
	if p.m != nil {
		p.m.RescalesStarted.With(p.labels).Inc()
	}
}

// rescaleFinished counts a finished rescale; downtime is observed for a
// success.
func (p policyMetrics) rescaleFinished(outcome string, downtime time.Duration) {
	if p.m == nil {
		return
	}
	p.m.Rescales.With(p.with("outcome", outcome)).Inc()
	if outcome == scaling.OutcomeSucceeded {
		p.m.Downtime.With(p.labels).Observe(downtime.Seconds())
		p.gauges(func(g *policyGauges) { g.lastDowntime, g.hasLastDowntime = downtime.Seconds(), true })
	}
}

// collection records one collection from source.
func (p policyMetrics) collection(source string, took time.Duration, err error) {
	if p.m == nil {
		return
	}
	// Every attempt is observed (the _count is the attempts the error-ratio
	// alert divides by); a source that could not be opened counts as 0 s.
	p.m.CollectionDuration.With(p.with("source", source)).Observe(took.Seconds())
	if err != nil {
		p.m.CollectionErrors.With(p.with("source", source)).Inc()
	}
}

// status records the policy as written: its mode and whether a rescale
// is in progress.
func (p policyMetrics) status(pol *v1alpha1.FlinkScalingPolicy) {
	if p.m == nil {
		return
	}
	v := 0.0
	if pol.Status.Rescale != nil {
		v = 1
	}
	p.gauges(func(g *policyGauges) {
		g.mode = string(pol.EffectiveMode())
		g.kind, g.path = pol.Spec.TargetRef.EffectiveKind(), pol.Status.RescalePath
		g.rescaleInProg, g.hasRescaleInProg = v, true
	})
}

func vertexName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// primaryReason is the reason a hold is counted under: its first job-level
// reason, else its first reason, else NoChange.
func primaryReason(d scaling.Decision) string {
	for _, r := range d.Reasons {
		if r.Vertex == "" {
			return string(r.Code)
		}
	}
	if len(d.Reasons) > 0 {
		return string(d.Reasons[0].Code)
	}
	return string(scaling.ReasonNoChange)
}
