package controllers

import (
	"errors"
	"fmt"
	"slices"
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

// Collection sources counted by the collection metrics, all started at zero.
const (
	SourceFlink = "flink"
	SourceKafka = "kafka"
)

// The label values of the counters' fixed sets, each started at zero
// (policyMetrics.start), in the order of the values (a policy's record
// holds their series in arrays of this order: policyCounters).
var (
	// Actions counted by flinkscale_decisions_total.
	decisionActions = [...]string{string(scaling.ActionHold), string(scaling.ActionScale)}
	// Outcomes counted by flinkscale_rescales_total.
	rescaleOutcomes = [...]string{scaling.OutcomeFailed, scaling.OutcomeRolledBack, scaling.OutcomeSucceeded}
	// Sources of the collection metrics.
	collectionSources = [...]string{SourceFlink, SourceKafka}
)

// Metrics are the controller's Prometheus metrics (docs/observability.md
// lists them with their meaning). A nil *Metrics records nothing.
//
// None is a client_golang vector: each policy's values, its gauges (per
// vertex and per policy, about 100 series a job) and its counters and
// histograms (a dozen series), live in one compact record (gauges), and
// the store of the records turns them into series when Prometheus
// scrapes. A vector keeps every series' label pairs and hashes for good:
// 81 MB for the gauges at 1,000 jobs of 10 vertices (make bench-scale's
// heap profile), and 13 MB for the counters and histograms; the records
// take a few.
type Metrics struct {
	// gauges holds every policy's record (gauges, counters, histograms).
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

// NewMetrics creates the metrics and registers them (their store, a
// prometheus.Collector) with reg, unless reg is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{gauges: newGaugeStore()}
	if reg != nil {
		reg.MustRegister(m.gauges)
	}
	return m
}

// NewGatheredMetrics creates the metrics and returns with them the
// Gatherer of base's families (base is reg's Gatherer) and theirs, which
// their store makes itself (gaugeStore.Gather) rather than a registry
// checking and sorting each of their series: most of a scrape of a
// fleet. Nothing is registered with reg: every series of the metrics is
// the store's.
func NewGatheredMetrics(reg prometheus.Registerer, base prometheus.Gatherer) (*Metrics, prometheus.Gatherer) {
	m := NewMetrics(nil)
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

// DefaultMetrics are the metrics, made once, that controller-runtime's
// registry serves (the manager's metrics endpoint). The first call
// replaces ctrlmetrics.Registry with one whose Gather adds the metrics'
// families (NewGatheredMetrics): make it before any manager starts, as
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
	m *Metrics
	// key is the policy's record's; deployment labels the record made
	// for it (a record keeps the deployment it was made with: the
	// reconciler forgets a retargeted policy's series first).
	key        policyRef
	deployment string
	// detail: the per-vertex detail gauges are exported (SetVertexDetail,
	// or the policy's annotation).
	detail bool
}

func (m *Metrics) policy(pol *v1alpha1.FlinkScalingPolicy) policyMetrics {
	p := policyMetrics{m: m, key: policyRef{pol.Namespace, pol.Name}, deployment: pol.Spec.TargetRef.Name}
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

// gauges runs f on the policy's record (its gauges, counters and
// histograms) under the store's write lock.
func (p policyMetrics) gauges(f func(*policyGauges)) {
	p.m.gauges.update(p.key, p.deployment, f)
}

// start makes the policy's series exist at zero, so that rates and alerts
// work before anything happened: decisions by action, rescales by outcome,
// collection errors by source, the rescale gauge.
func (p policyMetrics) start() {
	if p.m == nil {
		return
	}
	p.gauges(func(g *policyGauges) { g.counters.atZero, g.hasRescaleInProg = true, true })
}

// forget deletes every series of the policy (namespace and name), whatever
// its deployment label.
func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	m.gauges.forget(policyRef{namespace, name})
}

// decision records a decision: the per-vertex gauges (series of vertices
// gone from the job are deleted), the job's gauges and the counters: the
// action, each reason code once, and a hold under its primary reason.
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

		s, c, action := p.m.gauges, &g.counters, string(d.Action)
		c.inc(s, cDecisions, c.decisions[:], decisionActions[:], action)
		for i, r := range d.Reasons {
			if !slices.ContainsFunc(d.Reasons[:i], func(o scaling.Reason) bool { return o.Code == r.Code }) {
				c.at(cDecisionReasons, s.pair("action", action), s.pair("reason", string(r.Code))).n++
			}
		}
		if d.Action == scaling.ActionHold {
			c.at(cHolds, s.pair("reason", primaryReason(d)), nil).n++
		}
	})
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
		keep[f] = family(f) == gRecommendedParallelism || (p.detail && family(f) != gParallelism)
	}
	p.gauges(func(g *policyGauges) { g.setVertices(vs, keep) })
}

// blocked counts a recommended rescale that a gate held back.
func (p policyMetrics) blocked(reason string) {
	if p.m != nil {
		p.gauges(func(g *policyGauges) { g.counters.at(cHolds, p.m.gauges.pair("reason", reason), nil).n++ })
	}
}

func (p policyMetrics) rescaleStarted() {
	if p.m != nil {
		p.gauges(func(g *policyGauges) { g.counters.started++ })
	}
}

// rescaleFinished counts a finished rescale; downtime is observed for a
// success.
func (p policyMetrics) rescaleFinished(outcome string, downtime time.Duration) {
	if p.m == nil {
		return
	}
	p.gauges(func(g *policyGauges) {
		c := &g.counters
		c.inc(p.m.gauges, cRescales, c.rescales[:], rescaleOutcomes[:], outcome)
		if outcome == scaling.OutcomeSucceeded {
			c.downtime.observe(familySpecs[hDowntime].buckets, downtime.Seconds())
			g.lastDowntime, g.hasLastDowntime = downtime.Seconds(), true
		}
	})
}

// collection records one collection from source.
func (p policyMetrics) collection(source string, took time.Duration, err error) {
	if p.m == nil {
		return
	}
	// Every attempt is observed (the _count is the attempts the error-ratio
	// alert divides by); a source that could not be opened counts as 0 s.
	p.gauges(func(g *policyGauges) {
		c := &g.counters
		c.observe(p.m.gauges, hCollectionDuration, c.durations[:], collectionSources[:], source, took.Seconds())
		if err != nil {
			c.inc(p.m.gauges, cCollectionErrors, c.errors[:], collectionSources[:], source)
		}
	})
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
