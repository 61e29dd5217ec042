package controllers

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
type Metrics struct {
	// Per vertex.
	Parallelism            *prometheus.GaugeVec
	RecommendedParallelism *prometheus.GaugeVec
	Utilization            *prometheus.GaugeVec
	ExpectedUtilization    *prometheus.GaugeVec
	TrueProcessingRate     *prometheus.GaugeVec
	TargetRate             *prometheus.GaugeVec
	Backpressure           *prometheus.GaugeVec

	// Per policy.
	Info              *prometheus.GaugeVec
	TargetInfo        *prometheus.GaugeVec
	UtilizationBand   *prometheus.GaugeVec
	LagRecords        *prometheus.GaugeVec
	LagSeconds        *prometheus.GaugeVec
	ArrivalRate       *prometheus.GaugeVec
	Slots             *prometheus.GaugeVec
	Cores             *prometheus.GaugeVec
	PredictedDowntime *prometheus.GaugeVec
	Memory            *prometheus.GaugeVec
	NetworkBuffers    *prometheus.GaugeVec
	RescaleInProgress *prometheus.GaugeVec
	LastDecision      *prometheus.GaugeVec
	LastDowntime      *prometheus.GaugeVec

	Decisions       *prometheus.CounterVec
	DecisionReasons *prometheus.CounterVec
	Holds           *prometheus.CounterVec
	RescalesStarted *prometheus.CounterVec
	Rescales        *prometheus.CounterVec
	Downtime        *prometheus.HistogramVec

	CollectionErrors   *prometheus.CounterVec
	CollectionDuration *prometheus.HistogramVec

	// targetOf holds each policy's TargetInfo labels (kind, path), so that
	// a change deletes the old series alone: a DeletePartialMatch on every
	// reconcile scans every policy's series (5 % of the controller's CPU
	// at 1,000 policies, make bench-scale's CPU profile).
	targetMu sync.Mutex
	targetOf map[string][2]string
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	gauge := func(name, help string, labels ...[]string) *prometheus.GaugeVec {
		l := jobLabels
		if len(labels) > 0 {
			l = labels[0]
		}
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: MetricsNamespace, Name: name, Help: help}, l)
	}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: name, Help: help},
			append(append([]string{}, jobLabels...), extra...))
	}
	with := func(extra ...string) []string { return append(append([]string{}, jobLabels...), extra...) }
	m := &Metrics{
		Parallelism:            gauge("vertex_parallelism", "Subtasks a vertex runs now.", vertexLabels),
		RecommendedParallelism: gauge("vertex_recommended_parallelism", "Subtasks the last decision recommends for a vertex.", vertexLabels),
		Utilization:            gauge("vertex_utilization", "Busy fraction of a vertex's busiest subtask at its target rate and current parallelism (0-1, may exceed 1 when overloaded).", vertexLabels),
		ExpectedUtilization:    gauge("vertex_expected_utilization", "Busy fraction of a vertex's busiest subtask at its target rate and the recommended parallelism.", vertexLabels),
		TrueProcessingRate:     gauge("vertex_true_processing_rate", "Records per second a vertex could process at 100% busy at its current parallelism (DS2 true processing rate).", vertexLabels),
		TargetRate:             gauge("vertex_target_rate", "Records per second a vertex must sustain (for a source, the arrival rate).", vertexLabels),
		Backpressure:           gauge("vertex_backpressure_ratio", "Fraction of time a vertex's most backpressured subtask is backpressured (0-1).", vertexLabels),

		Info:              gauge("policy_info", "Always 1: a policy and the mode it acts in (mode=Apply, DryRun or Paused, the paused annotation applied).", with("mode")),
		TargetInfo:        gauge("policy_target_info", "Always 1: the kind of a policy's target (FlinkDeployment, FlinkSessionJob, Deployment) and how a rescale of it happens (path=OperatorUpgrade, InPlace, InPlaceAndTaskManagers, TaskManagers or RecommendOnly; empty until the target was read).", with("kind", "path")),
		UtilizationBand:   gauge("utilization_band", "The policy's utilization band: bound=min (scale-down threshold), target, max (scale-up threshold).", with("bound")),
		LagRecords:        gauge("lag_records", "Kafka consumer lag in records, summed over the job's sources."),
		LagSeconds:        gauge("lag_seconds", "Kafka consumer lag in seconds of arrivals (the worst source)."),
		ArrivalRate:       gauge("arrival_rate", "Records per second arriving on the job's sources (broker end-offset growth), summed."),
		Slots:             gauge("slots", "Task slots the job uses: state=current or recommended.", with("state")),
		Cores:             gauge("cores", "TaskManager cores the job uses: state=current or recommended.", with("state")),
		PredictedDowntime: gauge("predicted_downtime_seconds", "Downtime the last decision predicts a rescale would cost (savepoint and restart)."),
		Memory:            gauge("taskmanager_memory_bytes", "One TaskManager's memory by part (process, heap, managed, network, metaspace, overhead): state=current or recommended (the memory recommendation of the last decision; applied only in memory mode Apply).", with("part", "state")),
		NetworkBuffers:    gauge("network_buffers", "Network buffers of the recommended plan's worst TaskManager: kind=required (what Flink must reserve to deploy it), max_use (the most its pools can take) or available (the segments a TaskManager has now).", with("kind")),
		RescaleInProgress: gauge("rescale_in_progress", "1 while a rescale of the job is in progress, else 0."),
		LastDecision:      gauge("last_decision_timestamp_seconds", "Unix time of the last decision."),
		LastDowntime:      gauge("last_rescale_downtime_seconds", "Downtime of the last successful rescale, as measured."),

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
		m.Parallelism, m.RecommendedParallelism, m.Utilization, m.ExpectedUtilization, m.TrueProcessingRate, m.TargetRate, m.Backpressure,
		m.Info, m.TargetInfo, m.UtilizationBand, m.LagRecords, m.LagSeconds, m.ArrivalRate, m.Slots, m.Cores, m.PredictedDowntime, m.Memory, m.NetworkBuffers, m.RescaleInProgress,
		m.LastDecision, m.LastDowntime, m.Decisions, m.DecisionReasons, m.Holds, m.RescalesStarted, m.Rescales, m.Downtime,
		m.CollectionErrors, m.CollectionDuration,
	}
}

var (
	defaultMetricsOnce sync.Once
	defaultMetrics     *Metrics
)

// DefaultMetrics are the metrics registered once with controller-runtime's
// registry, which the manager's metrics endpoint serves.
func DefaultMetrics() *Metrics {
	defaultMetricsOnce.Do(func() { defaultMetrics = NewMetrics(ctrlmetrics.Registry) })
	return defaultMetrics
}

// policyMetrics records one policy's series.
type policyMetrics struct {
	m      *Metrics
	labels prometheus.Labels // namespace, policy, deployment
}

func (m *Metrics) policy(pol *v1alpha1.FlinkScalingPolicy) policyMetrics {
	return policyMetrics{m: m, labels: prometheus.Labels{
		LabelNamespace: pol.Namespace, LabelPolicy: pol.Name, LabelDeployment: pol.Spec.TargetRef.Name,
	}}
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
	p.m.RescaleInProgress.With(p.labels).Set(0)
}

// forget deletes every series of the policy (namespace and name), whatever
// its deployment label.
// setTarget records a policy's TargetInfo labels, calling drop with the
// previous ones (nil: none recorded) when they change.
func (m *Metrics) setTarget(namespace, name string, cur [2]string, drop func(prev *[2]string)) {
	key := namespace + "/" + name
	m.targetMu.Lock()
	defer m.targetMu.Unlock()
	prev, ok := m.targetOf[key]
	switch {
	case !ok:
		drop(nil)
	case prev != cur:
		drop(&prev)
	default:
		return
	}
	if m.targetOf == nil {
		m.targetOf = map[string][2]string{}
	}
	m.targetOf[key] = cur
}

func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	m.targetMu.Lock()
	delete(m.targetOf, namespace+"/"+name)
	m.targetMu.Unlock()
	match := prometheus.Labels{LabelNamespace: namespace, LabelPolicy: name}
	for _, c := range m.collectors() {
		switch v := c.(type) {
		case *prometheus.GaugeVec:
			v.DeletePartialMatch(match)
		case *prometheus.CounterVec:
			v.DeletePartialMatch(match)
		case *prometheus.HistogramVec:
			v.DeletePartialMatch(match)
		}
	}
}

// vertexKey identifies a vertex's series.
type vertexKey struct{ name, id string }

// decision records a decision: the per-vertex gauges (series of vertices
// gone from the job are deleted), the job's gauges and the counters. shown
// holds the vertices last recorded and is updated.
func (p policyMetrics) decision(d scaling.Decision, band scaling.Utilization, arrival float64, shown map[vertexKey]bool) {
	if p.m == nil {
		return
	}
	m := p.m
	now := map[vertexKey]bool{}
	for _, v := range d.Vertices {
		k := vertexKey{vertexName(v.Name, v.ID), v.ID}
		now[k] = true
		l := p.with(LabelVertex, k.name, LabelVertexID, k.id)
		m.Parallelism.With(l).Set(float64(v.Current))
		m.RecommendedParallelism.With(l).Set(float64(v.Recommended))
		if !d.Sized {
			continue
		}
		m.TargetRate.With(l).Set(v.TargetRate)
		m.Backpressure.With(l).Set(v.BackPressuredMsPerSecond / 1000)
		if v.TrueProcessingRate > 0 {
			m.Utilization.With(l).Set(v.UtilizationNow)
			m.ExpectedUtilization.With(l).Set(v.UtilizationAfter)
			m.TrueProcessingRate.With(l).Set(v.TrueProcessingRate)
		} else {
			// Not measurable (idle, or no busy time): no figure rather than
			// a zero that would drag capacity and thresholds to zero.
			m.Utilization.Delete(l)
			m.ExpectedUtilization.Delete(l)
			m.TrueProcessingRate.Delete(l)
		}
	}
	p.dropVertices(shown, now)
	for _, b := range []struct {
		name string
		v    float64
	}{{"min", band.Min}, {"target", band.Target}, {"max", band.Max}} {
		m.UtilizationBand.With(p.with("bound", b.name)).Set(b.v)
	}
	if d.Sized {
		m.LagRecords.With(p.labels).Set(d.LagRecords)
		m.LagSeconds.With(p.labels).Set(d.LagSeconds)
		m.ArrivalRate.With(p.labels).Set(arrival)
		m.Slots.With(p.with("state", "current")).Set(float64(d.Current.Slots))
		m.Slots.With(p.with("state", "recommended")).Set(float64(d.Recommended.Slots))
		m.Cores.With(p.with("state", "current")).Set(d.Current.Cores)
		m.Cores.With(p.with("state", "recommended")).Set(d.Recommended.Cores)
		m.PredictedDowntime.With(p.labels).Set(d.PredictedDowntime.Seconds())
		p.memory(d.Memory)
	}
	m.LastDecision.With(p.labels).Set(float64(d.At.UnixNano()) / 1e9)
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

// memory records the memory recommendation, or deletes its series when
// the decision has none (not reported, or memory mode Off).
func (p policyMetrics) memory(rec *scaling.MemoryRecommendation) {
	m := p.m
	if rec == nil {
		match := prometheus.Labels{LabelNamespace: p.labels[LabelNamespace], LabelPolicy: p.labels[LabelPolicy]}
		m.Memory.DeletePartialMatch(match)
		m.NetworkBuffers.DeletePartialMatch(match)
		return
	}
	for state, t := range map[string]scaling.TaskManagerMemory{"current": rec.Current, "recommended": rec.Recommended} {
		for part, b := range map[string]int64{
			"process": t.ProcessBytes, "heap": t.HeapBytes(), "managed": t.ManagedBytes, "network": t.NetworkBytes,
			"metaspace": t.MetaspaceBytes, "overhead": t.OverheadBytes,
		} {
			m.Memory.With(p.with("part", part, "state", state)).Set(float64(b))
		}
	}
	if n := rec.Network; n != nil {
		m.NetworkBuffers.With(p.with("kind", "required")).Set(float64(n.Required))
		m.NetworkBuffers.With(p.with("kind", "max_use")).Set(float64(n.MaxUse))
		m.NetworkBuffers.With(p.with("kind", "available")).Set(float64(n.Available))
	}
}

// dropVertices deletes the series of vertices in shown but not in now, and
// makes shown now.
func (p policyMetrics) dropVertices(shown, now map[vertexKey]bool) {
	for k := range shown {
		if now[k] {
			continue
		}
		l := p.with(LabelVertex, k.name, LabelVertexID, k.id)
		for _, g := range []*prometheus.GaugeVec{p.m.Parallelism, p.m.RecommendedParallelism, p.m.Utilization,
			p.m.ExpectedUtilization, p.m.TrueProcessingRate, p.m.TargetRate, p.m.Backpressure} {
			g.Delete(l)
		}
		delete(shown, k)
	}
	for k := range now {
		shown[k] = true
	}
}

// observed records the current parallelism alone (Paused: no decision).
func (p policyMetrics) observed(vertices []v1alpha1.VertexStatus, shown map[vertexKey]bool) {
	if p.m == nil {
		return
	}
	now := map[vertexKey]bool{}
	for _, v := range vertices {
		k := vertexKey{vertexName(v.Name, v.ID), v.ID}
		now[k] = true
		p.m.Parallelism.With(p.with(LabelVertex, k.name, LabelVertexID, k.id)).Set(float64(v.Current))
	}
	p.dropVertices(shown, now)
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
		p.m.LastDowntime.With(p.labels).Set(downtime.Seconds())
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
	mode := string(pol.EffectiveMode())
	for _, other := range []v1alpha1.Mode{v1alpha1.ModeApply, v1alpha1.ModeDryRun, v1alpha1.ModePaused} {
		if string(other) != mode {
			p.m.Info.Delete(p.with("mode", string(other)))
		}
	}
	p.m.Info.With(p.with("mode", mode)).Set(1)
	kind, path := pol.Spec.TargetRef.EffectiveKind(), pol.Status.RescalePath
	target := p.with("kind", kind, "path", path)
	p.m.setTarget(p.labels[LabelNamespace], p.labels[LabelPolicy], [2]string{kind, path}, func(prev *[2]string) {
		if prev == nil {
			// First seen by this process: whatever is there goes.
			p.m.TargetInfo.DeletePartialMatch(prometheus.Labels{LabelNamespace: p.labels[LabelNamespace], LabelPolicy: p.labels[LabelPolicy]})
			return
		}
		p.m.TargetInfo.Delete(p.with("kind", prev[0], "path", prev[1]))
	})
	p.m.TargetInfo.With(target).Set(1)
	v := 0.0
	if pol.Status.Rescale != nil {
		v = 1
	}
	p.m.RescaleInProgress.With(p.labels).Set(v)
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
