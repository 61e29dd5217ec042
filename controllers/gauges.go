package controllers

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gauge families, per vertex and per policy. Their series are made at
// scrape time from each policy's record (gaugeStore).
type gaugeFamily int

const (
	// Per vertex (vertexLabels).
	gParallelism gaugeFamily = iota
	gRecommendedParallelism
	gUtilization
	gExpectedUtilization
	gTrueProcessingRate
	gTargetRate
	gBackpressure

	// Per policy (jobLabels, plus the labels named in gaugeSpecs).
	gInfo            // mode
	gTargetInfo      // kind, path
	gUtilizationBand // bound
	gLagRecords
	gLagSeconds
	gArrivalRate
	gSlots // state
	gCores // state
	gPredictedDowntime
	gMemory         // part, state
	gNetworkBuffers // kind
	gRescaleInProgress
	gLastDecision
	gLastDowntime
	numGauges
)

// numVertexGauges counts the per-vertex families, which come first.
const numVertexGauges = gInfo

// gaugeSpecs are the families' names, help and extra labels.
var gaugeSpecs = [numGauges]struct {
	name, help string
	extra      []string
}{
	gParallelism:            {"vertex_parallelism", "Subtasks a vertex runs now.", nil},
	gRecommendedParallelism: {"vertex_recommended_parallelism", "Subtasks the last decision recommends for a vertex.", nil},
	gUtilization:            {"vertex_utilization", "Busy fraction of a vertex's busiest subtask at its target rate and current parallelism (0-1, may exceed 1 when overloaded).", nil},
	gExpectedUtilization:    {"vertex_expected_utilization", "Busy fraction of a vertex's busiest subtask at its target rate and the recommended parallelism.", nil},
	gTrueProcessingRate:     {"vertex_true_processing_rate", "Records per second a vertex could process at 100% busy at its current parallelism (DS2 true processing rate).", nil},
	gTargetRate:             {"vertex_target_rate", "Records per second a vertex must sustain (for a source, the arrival rate).", nil},
	gBackpressure:           {"vertex_backpressure_ratio", "Fraction of time a vertex's most backpressured subtask is backpressured (0-1).", nil},

	gInfo:              {"policy_info", "Always 1: a policy and the mode it acts in (mode=Apply, DryRun or Paused, the paused annotation applied).", []string{"mode"}},
	gTargetInfo:        {"policy_target_info", "Always 1: the kind of a policy's target (FlinkDeployment, FlinkSessionJob, Deployment) and how a rescale of it happens (path=OperatorUpgrade, InPlace, InPlaceAndTaskManagers, TaskManagers or RecommendOnly; empty until the target was read).", []string{"kind", "path"}},
	gUtilizationBand:   {"utilization_band", "The policy's utilization band: bound=min (scale-down threshold), target, max (scale-up threshold).", []string{"bound"}},
	gLagRecords:        {"lag_records", "Kafka consumer lag in records, summed over the job's sources.", nil},
	gLagSeconds:        {"lag_seconds", "Kafka consumer lag in seconds of arrivals (the worst source).", nil},
	gArrivalRate:       {"arrival_rate", "Records per second arriving on the job's sources (broker end-offset growth), summed.", nil},
	gSlots:             {"slots", "Task slots the job uses: state=current or recommended.", []string{"state"}},
	gCores:             {"cores", "TaskManager cores the job uses: state=current or recommended.", []string{"state"}},
	gPredictedDowntime: {"predicted_downtime_seconds", "Downtime the last decision predicts a rescale would cost (savepoint and restart).", nil},
	gMemory:            {"taskmanager_memory_bytes", "One TaskManager's memory by part (process, heap, managed, network, metaspace, overhead): state=current or recommended (the memory recommendation of the last decision; applied only in memory mode Apply).", []string{"part", "state"}},
	gNetworkBuffers:    {"network_buffers", "Network buffers of the recommended plan's worst TaskManager: kind=required (what Flink must reserve to deploy it), max_use (the most its pools can take) or available (the segments a TaskManager has now).", []string{"kind"}},
	gRescaleInProgress: {"rescale_in_progress", "1 while a rescale of the job is in progress, else 0.", nil},
	gLastDecision:      {"last_decision_timestamp_seconds", "Unix time of the last decision.", nil},
	gLastDowntime:      {"last_rescale_downtime_seconds", "Downtime of the last successful rescale, as measured.", nil},
}

// Values of the label that tells a policy-level family's series apart, in
// the order a record holds them.
var (
	bandBounds   = [3]string{"min", "target", "max"}
	planStates   = [2]string{"current", "recommended"}
	memoryParts  = [6]string{"process", "heap", "managed", "network", "metaspace", "overhead"}
	networkKinds = [3]string{"required", "max_use", "available"}
)

// vertexGauges are one vertex's gauges; set marks those with a series.
type vertexGauges struct {
	name, id string
	v        [numVertexGauges]float64
	set      [numVertexGauges]bool
	// labels are the series' labels, made once (setVertices).
	labels []*dto.LabelPair
}

// policyGauges are one policy's gauges. A family's series exist from the
// first time it is set; the zero value has none.
type policyGauges struct {
	deployment string
	// labels are the job's labels (jobLabels), made once; order lists
	// the vertices sorted by their labels (setVertices).
	labels []*dto.LabelPair
	order  []int

	mode             string // policy_info; "" before the first status
	kind, path       string // policy_target_info; kind "" before the first status
	band             [3]float64
	hasBand          bool
	sized            bool // lag, arrival, slots, cores and downtime are set
	lagRecords       float64
	lagSeconds       float64
	arrival          float64
	slots, cores     [2]float64
	predicted        float64
	memory           *[2][6]float64 // by state, part; nil: no series
	network          *[3]float64
	rescaleInProg    float64
	hasRescaleInProg bool
	lastDecision     float64
	hasLastDecision  bool
	lastDowntime     float64
	hasLastDowntime  bool

	vertices []vertexGauges
}

type policyRef struct{ namespace, name string }

// gaugeStore holds every policy's gauges and is the prometheus.Collector
// that exports them.
type gaugeStore struct {
	descs [numGauges]*prometheus.Desc
	// names are the families' full names; byName the families in the
	// order of their names (Gather).
	names  [numGauges]string
	byName []gaugeFamily

	mu   sync.RWMutex
	pols map[policyRef]*policyGauges
}

func newGaugeStore() *gaugeStore {
	s := &gaugeStore{pols: map[policyRef]*policyGauges{}}
	for f, spec := range gaugeSpecs {
		s.names[f] = prometheus.BuildFQName(MetricsNamespace, "", spec.name)
		s.descs[f] = prometheus.NewDesc(s.names[f], spec.help, gaugeFamily(f).labelNames(), nil)
		s.byName = append(s.byName, gaugeFamily(f))
	}
	slices.SortFunc(s.byName, func(a, b gaugeFamily) int { return strings.Compare(s.names[a], s.names[b]) })
	return s
}

// labelNames are the family's label names, in its Desc's order.
func (f gaugeFamily) labelNames() []string {
	labels := jobLabels
	if f < numVertexGauges {
		labels = vertexLabels
	}
	return append(append([]string{}, labels...), gaugeSpecs[f].extra...)
}

// update runs f on the policy's record under the store's lock, creating
// the record (labeled with deployment) if there is none.
func (s *gaugeStore) update(ref policyRef, deployment string, f func(*policyGauges)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.pols[ref]
	if g == nil {
		g = &policyGauges{deployment: deployment,
			labels: labelPairs(LabelNamespace, ref.namespace, LabelPolicy, ref.name, LabelDeployment, deployment)}
		s.pols[ref] = g
	}
	f(g)
}

func (s *gaugeStore) forget(ref policyRef) {
	s.mu.Lock()
	delete(s.pols, ref)
	s.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (s *gaugeStore) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the series of every policy's
// record. The store is read-locked while they are sent (a scrape of 1,000
// jobs takes tens of milliseconds); reconciles wait for it only to write
// their gauges.
//
// A scrape of a fleet is some 100,000 series, so each costs as little as
// it can: a vertex's and a job's labels were made when its record's were
// (no validation and sorting per scrape, as prometheus.MustNewConstMetric
// does; only the few policy-level series with a label of their own, such
// as state or bound, pair it per scrape), and the records are sent in the
// order of their labels, so that the registry's sort of each family finds
// them sorted (BenchmarkMetricsFleet/scrape).
func (s *gaugeStore) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.sorted() {
		g.series(func(f gaugeFamily, v float64, labels []*dto.LabelPair) {
			ch <- &gaugeMetric{desc: s.descs[f], labels: labels, value: v}
		})
	}
}

// sorted is the records in the order of their labels (names sort
// deployment < namespace < policy). The caller holds the read lock.
func (s *gaugeStore) sorted() []*policyGauges {
	type rec struct {
		ref policyRef
		g   *policyGauges
	}
	recs := make([]rec, 0, len(s.pols))
	for ref, g := range s.pols {
		recs = append(recs, rec{ref, g})
	}
	slices.SortFunc(recs, func(a, b rec) int {
		return cmp.Or(strings.Compare(a.g.deployment, b.g.deployment), strings.Compare(a.ref.namespace, b.ref.namespace),
			strings.Compare(a.ref.name, b.ref.name))
	})
	out := make([]*policyGauges, len(recs))
	for i, r := range recs {
		out[i] = r.g
	}
	return out
}

// Gather implements prometheus.Gatherer: the families of every policy's
// record, made directly, not through a registry. A registry checks each
// series a Collector sends (its labels valid, not a duplicate: hashing
// every label), and sorts each family; at 1,000 jobs that was most of a
// scrape's CPU (BenchmarkMetricsFleet/scrape). The store needs neither:
// label names are its own, label values were made valid once (labelPairs),
// a record's vertices are unique by id, and its series come in label order
// (a family whose do not, such as one with a label of its own like bound,
// is sorted here). Each family's series are made in three allocations.
// The output is what a registry's Gather of the store gives
// (TestGaugeStoreExposition).
func (s *gaugeStore) Gather() ([]*dto.MetricFamily, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	recs := s.sorted()
	var count [numGauges]int
	for _, g := range recs {
		g.series(func(f gaugeFamily, _ float64, _ []*dto.LabelPair) { count[f]++ })
	}
	type family struct {
		mf      *dto.MetricFamily
		metrics []dto.Metric
		gauges  []dto.Gauge
		values  []float64
	}
	var fams [numGauges]family
	for f, n := range count {
		if n == 0 {
			continue
		}
		fams[f] = family{
			mf:      &dto.MetricFamily{Name: &s.names[f], Help: &gaugeSpecs[f].help, Type: dto.MetricType_GAUGE.Enum(), Metric: make([]*dto.Metric, 0, n)},
			metrics: make([]dto.Metric, n), gauges: make([]dto.Gauge, n), values: make([]float64, n),
		}
	}
	for _, g := range recs {
		g.series(func(f gaugeFamily, v float64, labels []*dto.LabelPair) {
			fm := &fams[f]
			i := len(fm.mf.Metric)
			fm.values[i] = v
			fm.gauges[i].Value = &fm.values[i]
			m := &fm.metrics[i]
			m.Label, m.Gauge = labels, &fm.gauges[i]
			fm.mf.Metric = append(fm.mf.Metric, m)
		})
	}
	out := make([]*dto.MetricFamily, 0, numGauges)
	for _, f := range s.byName {
		if mf := fams[f].mf; mf != nil {
			if !slices.IsSortedFunc(mf.Metric, compareLabelValues) {
				slices.SortStableFunc(mf.Metric, compareLabelValues)
			}
			out = append(out, mf)
		}
	}
	return out, nil
}

// compareLabelValues orders two series of one family, whose label names
// are the same and sorted, by their label values in that order, as a
// registry orders a family's series.
func compareLabelValues(a, b *dto.Metric) int {
	for i := range min(len(a.Label), len(b.Label)) {
		if c := strings.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Label), len(b.Label))
}

// gaugeMetric is one series: labels made beforehand, sorted by name.
type gaugeMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
}

func (m *gaugeMetric) Desc() *prometheus.Desc { return m.desc }

func (m *gaugeMetric) Write(out *dto.Metric) error {
	v := m.value
	out.Label = m.labels
	out.Gauge = &dto.Gauge{Value: &v}
	return nil
}

// labelPairs makes the label pairs of name, value, … sorted by name, as a
// slice at full capacity (whoever appends to a series' labels copies
// them); a value that is not UTF-8 has its bad bytes replaced.
func labelPairs(nameValues ...string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(nameValues)/2)
	for i := 0; i+1 < len(nameValues); i += 2 {
		v := nameValues[i+1]
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		name := nameValues[i]
		out = append(out, &dto.LabelPair{Name: &name, Value: &v})
	}
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out[:len(out):len(out)]
}

// withLabels is job's labels and name=value, sorted by name.
func withLabels(job []*dto.LabelPair, nameValues ...string) []*dto.LabelPair {
	out := slices.Concat(job, labelPairs(nameValues...))
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out[:len(out):len(out)]
}

// series calls emit with each series of the record: vertices first, in
// label order.
func (g *policyGauges) series(emit func(f gaugeFamily, v float64, labels []*dto.LabelPair)) {
	for _, i := range g.order {
		vg := &g.vertices[i]
		for f := gaugeFamily(0); f < numVertexGauges; f++ {
			if vg.set[f] {
				emit(f, vg.v[f], vg.labels)
			}
		}
	}
	if g.mode != "" {
		emit(gInfo, 1, withLabels(g.labels, "mode", g.mode))
	}
	if g.kind != "" {
		emit(gTargetInfo, 1, withLabels(g.labels, "kind", g.kind, "path", g.path))
	}
	if g.hasBand {
		for i, b := range bandBounds {
			emit(gUtilizationBand, g.band[i], withLabels(g.labels, "bound", b))
		}
	}
	if g.sized {
		emit(gLagRecords, g.lagRecords, g.labels)
		emit(gLagSeconds, g.lagSeconds, g.labels)
		emit(gArrivalRate, g.arrival, g.labels)
		for i, st := range planStates {
			state := withLabels(g.labels, "state", st)
			emit(gSlots, g.slots[i], state)
			emit(gCores, g.cores[i], state)
		}
		emit(gPredictedDowntime, g.predicted, g.labels)
	}
	if g.memory != nil {
		for i, st := range planStates {
			for j, part := range memoryParts {
				emit(gMemory, g.memory[i][j], withLabels(g.labels, "part", part, "state", st))
			}
		}
	}
	if g.network != nil {
		for i, k := range networkKinds {
			emit(gNetworkBuffers, g.network[i], withLabels(g.labels, "kind", k))
		}
	}
	if g.hasRescaleInProg {
		emit(gRescaleInProgress, g.rescaleInProg, g.labels)
	}
	if g.hasLastDecision {
		emit(gLastDecision, g.lastDecision, g.labels)
	}
	if g.hasLastDowntime {
		emit(gLastDowntime, g.lastDowntime, g.labels)
	}
}

// setVertices replaces the vertices' gauges with next: a vertex gone from
// the job loses its series; of a vertex that stays, the families in keep
// keep their value (a decision that could not size the job sets the
// parallelism alone), the others are as next has them (set, or no series).
func (g *policyGauges) setVertices(next []vertexGauges, keep [numVertexGauges]bool) {
	for i := range next {
		n := &next[i]
		for j := range g.vertices {
			old := &g.vertices[j]
			if old.id != n.id || old.name != n.name {
				continue
			}
			for f, k := range keep {
				if k {
					n.v[f], n.set[f] = old.v[f], old.set[f]
				}
			}
			n.labels = old.labels
			break
		}
		if n.labels == nil {
			n.labels = withLabels(g.labels, LabelVertex, n.name, LabelVertexID, n.id)
		}
	}
	g.vertices = next
	// Label names sort vertex < vertex_id.
	g.order = g.order[:0]
	for i := range next {
		g.order = append(g.order, i)
	}
	slices.SortFunc(g.order, func(a, b int) int {
		return cmp.Or(strings.Compare(next[a].name, next[b].name), strings.Compare(next[a].id, next[b].id))
	})
}
