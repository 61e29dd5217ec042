package controllers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metric families: the gauges, per vertex and per policy, then the
// per-policy counters and histograms. Their series are made at scrape time
// from each policy's record (gaugeStore).
type family int

const (
	// Per vertex (vertexLabels).
	gParallelism family = iota
	gRecommendedParallelism
	gUtilization
	gExpectedUtilization
	gTrueProcessingRate
	gTargetRate
	gBackpressure

	// Per policy (jobLabels, plus the labels named in familySpecs).
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

	// Counters, per policy (policyCounters).
	cDecisions        // action
	cDecisionReasons  // action, reason
	cHolds            // reason
	cRescalesStarted  //
	cRescales         // outcome
	cCollectionErrors // source

	// Histograms, per policy (policyCounters).
	hDowntime
	hCollectionDuration // source

	numFamilies
)

const (
	// numVertexGauges counts the per-vertex families, which come first.
	numVertexGauges = gInfo
	// numGauges counts the gauges, which come before the counters.
	numGauges = cDecisions
	// firstHistogram is the first histogram; the counters come before.
	firstHistogram = hDowntime
	// maxBuckets is the most buckets a histogram family has (the record's
	// bucket counts are an array of them).
	maxBuckets = 12
)

// typ is the family's type.
func (f family) typ() dto.MetricType {
	switch {
	case f < numGauges:
		return dto.MetricType_GAUGE
	case f < firstHistogram:
		return dto.MetricType_COUNTER
	default:
		return dto.MetricType_HISTOGRAM
	}
}

// familySpecs are the families' names, help, extra labels and, of a
// histogram, bucket bounds. The counters and histograms were client_golang
// vectors of these names, help, labels and bounds before the store kept
// them (TestCounterStoreMatchesVectors holds the store to the vectors).
var familySpecs = [numFamilies]struct {
	name, help string
	extra      []string
	buckets    []float64
}{
	gParallelism:            {name: "vertex_parallelism", help: "Subtasks a vertex runs now."},
	gRecommendedParallelism: {name: "vertex_recommended_parallelism", help: "Subtasks the last decision recommends for a vertex."},
	gUtilization:            {name: "vertex_utilization", help: "Busy fraction of a vertex's busiest subtask at its target rate and current parallelism (0-1, may exceed 1 when overloaded)."},
	gExpectedUtilization:    {name: "vertex_expected_utilization", help: "Busy fraction of a vertex's busiest subtask at its target rate and the recommended parallelism."},
	gTrueProcessingRate:     {name: "vertex_true_processing_rate", help: "Records per second a vertex could process at 100% busy at its current parallelism (DS2 true processing rate)."},
	gTargetRate:             {name: "vertex_target_rate", help: "Records per second a vertex must sustain (for a source, the arrival rate)."},
	gBackpressure:           {name: "vertex_backpressure_ratio", help: "Fraction of time a vertex's most backpressured subtask is backpressured (0-1)."},

	gInfo:              {name: "policy_info", help: "Always 1: a policy and the mode it acts in (mode=Apply, DryRun or Paused, the paused annotation applied).", extra: []string{"mode"}},
	gTargetInfo:        {name: "policy_target_info", help: "Always 1: the kind of a policy's target (FlinkDeployment, FlinkSessionJob, Deployment) and how a rescale of it happens (path=OperatorUpgrade, InPlace, InPlaceAndTaskManagers, TaskManagers or RecommendOnly; empty until the target was read).", extra: []string{"kind", "path"}},
	gUtilizationBand:   {name: "utilization_band", help: "The policy's utilization band: bound=min (scale-down threshold), target, max (scale-up threshold).", extra: []string{"bound"}},
	gLagRecords:        {name: "lag_records", help: "Kafka consumer lag in records, summed over the job's sources."},
	gLagSeconds:        {name: "lag_seconds", help: "Kafka consumer lag in seconds of arrivals (the worst source)."},
	gArrivalRate:       {name: "arrival_rate", help: "Records per second arriving on the job's sources (broker end-offset growth), summed."},
	gSlots:             {name: "slots", help: "Task slots the job uses: state=current or recommended.", extra: []string{"state"}},
	gCores:             {name: "cores", help: "TaskManager cores the job uses: state=current or recommended.", extra: []string{"state"}},
	gPredictedDowntime: {name: "predicted_downtime_seconds", help: "Downtime the last decision predicts a rescale would cost (savepoint and restart)."},
	gMemory:            {name: "taskmanager_memory_bytes", help: "One TaskManager's memory by part (process, heap, managed, network, metaspace, overhead): state=current or recommended (the memory recommendation of the last decision; applied only in memory mode Apply).", extra: []string{"part", "state"}},
	gNetworkBuffers:    {name: "network_buffers", help: "Network buffers of the recommended plan's worst TaskManager: kind=required (what Flink must reserve to deploy it), max_use (the most its pools can take) or available (the segments a TaskManager has now).", extra: []string{"kind"}},
	gRescaleInProgress: {name: "rescale_in_progress", help: "1 while a rescale of the job is in progress, else 0."},
	gLastDecision:      {name: "last_decision_timestamp_seconds", help: "Unix time of the last decision."},
	gLastDowntime:      {name: "last_rescale_downtime_seconds", help: "Downtime of the last successful rescale, as measured."},

	cDecisions:        {name: "decisions_total", help: "Decisions made, by action (Scale or Hold).", extra: []string{"action"}},
	cDecisionReasons:  {name: "decision_reasons_total", help: "Reason codes of the decisions made, by action and reason (each code counted once per decision).", extra: []string{"action", "reason"}},
	cHolds:            {name: "holds_total", help: "Decisions not acted on, by the reason: the model's hold reason, or the gate that blocked a recommended rescale.", extra: []string{"reason"}},
	cRescalesStarted:  {name: "rescales_started_total", help: "Rescales started (the FlinkDeployment patched)."},
	cRescales:         {name: "rescales_total", help: "Rescales finished, by outcome (Succeeded, Failed, RolledBack).", extra: []string{"outcome"}},
	cCollectionErrors: {name: "collection_errors_total", help: "Failed metric collections, by source (flink: the REST API or Prometheus; kafka: the brokers).", extra: []string{"source"}},

	hDowntime: {name: "rescale_downtime_seconds", help: "Measured downtime of successful rescales: from the apply until Flink reports the job RUNNING again.",
		buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200}},
	hCollectionDuration: {name: "collection_duration_seconds", help: "Time one metric collection took, by source.", extra: []string{"source"},
		buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}},
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

// policyGauges are one policy's gauges, and its counters and histograms
// (counters). A family's series exist from the first time it is set; the
// zero value has none.
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

	counters policyCounters
}

type policyRef struct{ namespace, name string }

// gaugeStore holds every policy's record (its gauges, counters and
// histograms) and is the prometheus.Collector and Gatherer that exports
// them.
type gaugeStore struct {
	descs [numFamilies]*prometheus.Desc
	// names are the families' full names; byName the families in the
	// order of their names (Gather).
	names  [numFamilies]string
	byName []family

	mu   sync.RWMutex
	pols map[policyRef]*policyGauges
	// pairs are the label pairs of the counters' label values beyond the
	// fixed sets (reasons, mostly), made once a store: every record that
	// counts a reason shares its pair.
	pairs map[[2]string]*dto.LabelPair
}

func newGaugeStore() *gaugeStore {
	s := &gaugeStore{pols: map[policyRef]*policyGauges{}, pairs: map[[2]string]*dto.LabelPair{}}
	for f, spec := range familySpecs {
		if b := spec.buckets; len(b) > maxBuckets || !slices.IsSorted(b) {
			panic(fmt.Sprintf("%s: %d bucket bounds, unsorted or more than %d", spec.name, len(b), maxBuckets))
		}
		s.names[f] = prometheus.BuildFQName(MetricsNamespace, "", spec.name)
		s.descs[f] = prometheus.NewDesc(s.names[f], spec.help, family(f).labelNames(), nil)
		s.byName = append(s.byName, family(f))
	}
	slices.SortFunc(s.byName, func(a, b family) int { return strings.Compare(s.names[a], s.names[b]) })
	return s
}

// labelNames are the family's label names, in its Desc's order.
func (f family) labelNames() []string {
	labels := jobLabels
	if f < numVertexGauges {
		labels = vertexLabels
	}
	return append(append([]string{}, labels...), familySpecs[f].extra...)
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

// pair is the label pair name=value, made once a store (pairs). The
// caller holds the write lock (update).
func (s *gaugeStore) pair(name, value string) *dto.LabelPair {
	k := [2]string{name, value}
	lp := s.pairs[k]
	if lp == nil {
		lp = labelPairs(name, value)[0]
		s.pairs[k] = lp
	}
	return lp
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
// their records.
//
// A scrape of a fleet is some 100,000 series, so each costs as little as
// it can: a vertex's and a job's labels were made when its record's were
// (no validation and sorting per scrape, as prometheus.MustNewConstMetric
// does; only the few policy-level series with a label of their own, such
// as state or bound, pair it per scrape), and the records are sent in the
// order of their labels, so that the registry's sort of each family finds
// them sorted (BenchmarkMetricsFleet/scrape). A counter's or histogram's
// value is copied into the series sent: the registry writes it after the
// lock is released.
func (s *gaugeStore) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.sorted() {
		g.series(func(f family, v float64, labels []*dto.LabelPair) {
			ch <- &gaugeMetric{desc: s.descs[f], labels: labels, value: v}
		})
		g.counters.series(func(f family, v float64, h *histogram, own [2]*dto.LabelPair) {
			if h != nil {
				ch <- &histogramMetric{desc: s.descs[f], labels: withPairs(g.labels, own), h: *h, bounds: familySpecs[f].buckets}
				return
			}
			ch <- &counterMetric{desc: s.descs[f], labels: withPairs(g.labels, own), value: v}
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
// (a family whose do not, such as one with a label of its own like bound
// or action, is sorted here). Each family's series are made in a few
// allocations (familyBuilder). The output is what a registry's Gather of
// the store gives (TestGaugeStoreExposition) and, for the counters and
// histograms, what client_golang's vectors gave
// (TestCounterStoreMatchesVectors), with one difference: a vector's
// counters and histograms carry a CreatedTimestamp, the store's none
// (here and in Collect). The text format has no place for it, and the
// store would have to keep one for each series.
func (s *gaugeStore) Gather() ([]*dto.MetricFamily, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	recs := s.sorted()
	var count [numFamilies]int
	for _, g := range recs {
		g.series(func(f family, _ float64, _ []*dto.LabelPair) { count[f]++ })
		g.counters.series(func(f family, _ float64, _ *histogram, _ [2]*dto.LabelPair) { count[f]++ })
	}
	var fams [numFamilies]familyBuilder
	for f, n := range count {
		if n > 0 {
			fams[f].init(s, family(f), n)
		}
	}
	for _, g := range recs {
		g.series(func(f family, v float64, labels []*dto.LabelPair) { fams[f].add(labels, v, nil) })
		g.counters.series(func(f family, v float64, h *histogram, own [2]*dto.LabelPair) {
			fams[f].add(withPairs(g.labels, own), v, h)
		})
	}
	out := make([]*dto.MetricFamily, 0, numFamilies)
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

// familyBuilder makes one family's series for Gather: its metrics, values
// and buckets in slices allocated once, sized by the count of its series.
type familyBuilder struct {
	mf         *dto.MetricFamily
	metrics    []dto.Metric
	values     []float64 // gauges' and counters' values, histograms' sums
	gauges     []dto.Gauge
	counters   []dto.Counter
	histograms []dto.Histogram
	// counts are each histogram's sample count and cumulative bucket
	// counts; buckets and bucketRefs its buckets.
	counts     []uint64
	buckets    []dto.Bucket
	bucketRefs []*dto.Bucket
	bounds     []float64
}

func (b *familyBuilder) init(s *gaugeStore, f family, n int) {
	b.mf = &dto.MetricFamily{Name: &s.names[f], Help: &familySpecs[f].help, Type: f.typ().Enum(), Metric: make([]*dto.Metric, 0, n)}
	b.metrics, b.values = make([]dto.Metric, n), make([]float64, n)
	switch f.typ() {
	case dto.MetricType_GAUGE:
		b.gauges = make([]dto.Gauge, n)
	case dto.MetricType_COUNTER:
		b.counters = make([]dto.Counter, n)
	default:
		b.bounds = familySpecs[f].buckets
		nb := len(b.bounds)
		b.histograms, b.counts = make([]dto.Histogram, n), make([]uint64, n*(nb+1))
		b.buckets, b.bucketRefs = make([]dto.Bucket, n*nb), make([]*dto.Bucket, n*nb)
	}
}

// add appends a series: of a gauge or counter, the value v; of a
// histogram, h (v its sum).
func (b *familyBuilder) add(labels []*dto.LabelPair, v float64, h *histogram) {
	i := len(b.mf.Metric)
	m := &b.metrics[i]
	m.Label = labels
	b.values[i] = v
	switch {
	case b.gauges != nil:
		b.gauges[i].Value = &b.values[i]
		m.Gauge = &b.gauges[i]
	case b.counters != nil:
		b.counters[i].Value = &b.values[i]
		m.Counter = &b.counters[i]
	default:
		nb := len(b.bounds)
		counts := b.counts[i*(nb+1) : (i+1)*(nb+1)]
		hist := &b.histograms[i]
		counts[0] = h.count
		hist.SampleCount, hist.SampleSum = &counts[0], &b.values[i]
		hist.Bucket = b.bucketRefs[i*nb : (i+1)*nb : (i+1)*nb]
		h.cumulative(counts[1:])
		for j := range nb {
			bk := &b.buckets[i*nb+j]
			bk.CumulativeCount, bk.UpperBound = &counts[1+j], &b.bounds[j]
			hist.Bucket[j] = bk
		}
		m.Histogram = hist
	}
	b.mf.Metric = append(b.mf.Metric, m)
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

// counterMetric is a counter's series, as gaugeMetric; its
// CreatedTimestamp is not set (see Gather).
type counterMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
}

func (m *counterMetric) Desc() *prometheus.Desc { return m.desc }

func (m *counterMetric) Write(out *dto.Metric) error {
	v := m.value
	out.Label = m.labels
	out.Counter = &dto.Counter{Value: &v}
	return nil
}

// histogramMetric is a histogram's series: a copy of its counts, and its
// family's bucket bounds.
type histogramMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	h      histogram
	bounds []float64
}

func (m *histogramMetric) Desc() *prometheus.Desc { return m.desc }

func (m *histogramMetric) Write(out *dto.Metric) error {
	n := len(m.bounds)
	counts := make([]uint64, n)
	m.h.cumulative(counts)
	count, sum := m.h.count, m.h.sum
	hist := &dto.Histogram{SampleCount: &count, SampleSum: &sum, Bucket: make([]*dto.Bucket, n)}
	for i := range n {
		hist.Bucket[i] = &dto.Bucket{CumulativeCount: &counts[i], UpperBound: &m.bounds[i]}
	}
	out.Label, out.Histogram = m.labels, hist
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
func (g *policyGauges) series(emit func(f family, v float64, labels []*dto.LabelPair)) {
	for _, i := range g.order {
		vg := &g.vertices[i]
		for f := family(0); f < numVertexGauges; f++ {
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

// policyCounters are one policy's counters and histograms, kept as
// numbers rather than client_golang vectors' series. A vector keeps, for
// each series, its label values, label pairs, a hash-map entry and a
// counter (a histogram: two sets of bucket counts, hot and cold, and
// exemplar slots): about 11 kB for a policy's dozen series, 13 MB at
// 1,000 jobs (make bench-scale's heap profile). Here a series of a label
// value of a fixed set (the actions, outcomes, sources) is an element of
// an array in that set's order, and a series of another value (reasons)
// an element of a short slice: about 0.5 kB a policy
// (BenchmarkMetricsFleet/retained-poll: 15.4 kB a policy with the
// vectors, 5.1 kB with these). Their label pairs are made when they are
// scraped (withPairs): the job's are the record's, and a label value's
// pair is made once (the fixed sets' at start, the others' once a store,
// gaugeStore.pair). Keeping each series' whole labels in the record
// instead would save a scrape of 1,000 policies 11,000 small allocations
// (of 61,000) and cost 0.6 kB a policy.
type policyCounters struct {
	decisions [len(decisionActions)]uint64   // decisions_total, by action
	rescales  [len(rescaleOutcomes)]uint64   // rescales_total, by outcome
	started   uint64                         // rescales_started_total
	errors    [len(collectionSources)]uint64 // collection_errors_total, by source
	downtime  histogram                      // rescale_downtime_seconds
	durations [len(collectionSources)]histogram
	// labeled are the series with label values of their own: the decision
	// reasons (action, reason), the holds (reason), and a value of an
	// action, outcome or source beyond the fixed sets; sorted by family
	// and label values. A policy has a few.
	labeled []labeledSeries
	// atZero: the counters above have a series each, at zero until
	// counted (policyMetrics.start makes them all); else only those
	// counted have one.
	atZero bool
}

// histogram is a histogram's observations: their count and sum, and the
// count of those in each bucket (not cumulative: in the first bucket whose
// bound is at least the value; above the last bound, in count alone), as
// client_golang's histogram counts them. Its series exists from its first
// observation.
type histogram struct {
	count   uint64
	sum     float64
	buckets [maxBuckets]uint64
}

// observe records v in the histogram of bounds (as client_golang's
// histogram.findBucket: a NaN is in no bucket).
func (h *histogram) observe(bounds []float64, v float64) {
	for i, b := range bounds {
		if v <= b {
			h.buckets[i]++
			break
		}
	}
	h.count++
	h.sum += v
}

// cumulative sets out[i] to the count of observations up to the i-th
// bound, for each of out.
func (h *histogram) cumulative(out []uint64) {
	var n uint64
	for i := range out {
		n += h.buckets[i]
		out[i] = n
	}
}

// labeledSeries is a counter's series (a histogram's, h set) with label
// pairs of its own beyond the job's: own, sorted by name (own[1] nil if
// one).
type labeledSeries struct {
	f   family
	own [2]*dto.LabelPair
	n   uint64
	h   *histogram
}

// at is the labeled series of family f with label pairs a and b (nil if
// one), added at zero if it has none.
func (c *policyCounters) at(f family, a, b *dto.LabelPair) *labeledSeries {
	key := labeledSeries{f: f, own: [2]*dto.LabelPair{a, b}}
	i, found := slices.BinarySearchFunc(c.labeled, key, func(x, y labeledSeries) int {
		return cmp.Or(cmp.Compare(x.f, y.f), strings.Compare(x.own[0].GetValue(), y.own[0].GetValue()),
			strings.Compare(x.own[1].GetValue(), y.own[1].GetValue()))
	})
	if !found {
		c.labeled = slices.Insert(c.labeled, i, key)
	}
	return &c.labeled[i]
}

// inc counts one in the series of counter f whose label (f's one extra
// label) is value: of fixed, the counters of values, if value is one of
// them, else a labeled series. s is the record's store, its write lock
// held.
func (c *policyCounters) inc(s *gaugeStore, f family, fixed []uint64, values []string, value string) {
	if i := slices.Index(values, value); i >= 0 {
		fixed[i]++
		return
	}
	c.at(f, s.pair(familySpecs[f].extra[0], value), nil).n++
}

// observe records v in the series of histogram f whose label (f's one
// extra label) is value, as inc.
func (c *policyCounters) observe(s *gaugeStore, f family, fixed []histogram, values []string, value string, v float64) {
	if i := slices.Index(values, value); i >= 0 {
		fixed[i].observe(familySpecs[f].buckets, v)
		return
	}
	l := c.at(f, s.pair(familySpecs[f].extra[0], value), nil)
	if l.h == nil {
		l.h = new(histogram)
	}
	l.h.observe(familySpecs[f].buckets, v)
}

// The label pairs of the fixed sets' values, in their order.
var (
	actionPairs  = pairsOf("action", decisionActions[:])
	outcomePairs = pairsOf("outcome", rescaleOutcomes[:])
	sourcePairs  = pairsOf("source", collectionSources[:])
)

func pairsOf(name string, values []string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(values))
	for i, v := range values {
		out[i] = labelPairs(name, v)[0]
	}
	return out
}

// series calls emit with each of the record's counters' and histograms'
// series: its family, value (a histogram's sum, and the histogram), and
// its own label pairs beyond the job's (none for a series of the job's
// alone), which the caller pairs with the job's (withPairs) only when it
// needs them. A family's series come in the order of their label values.
func (c *policyCounters) series(emit func(f family, v float64, h *histogram, own [2]*dto.LabelPair)) {
	fixed := func(f family, ns []uint64, pairs []*dto.LabelPair) {
		for i, n := range ns {
			if c.atZero || n > 0 {
				emit(f, float64(n), nil, [2]*dto.LabelPair{pairs[i]})
			}
		}
	}
	fixed(cDecisions, c.decisions[:], actionPairs)
	fixed(cRescales, c.rescales[:], outcomePairs)
	if c.atZero || c.started > 0 {
		emit(cRescalesStarted, float64(c.started), nil, [2]*dto.LabelPair{})
	}
	fixed(cCollectionErrors, c.errors[:], sourcePairs)
	if c.downtime.count > 0 {
		emit(hDowntime, c.downtime.sum, &c.downtime, [2]*dto.LabelPair{})
	}
	for i := range c.durations {
		if h := &c.durations[i]; h.count > 0 {
			emit(hCollectionDuration, h.sum, h, [2]*dto.LabelPair{sourcePairs[i]})
		}
	}
	for i := range c.labeled {
		l := &c.labeled[i]
		if l.h != nil {
			emit(l.f, l.h.sum, l.h, l.own)
		} else {
			emit(l.f, float64(l.n), nil, l.own)
		}
	}
}

// withPairs is job's labels (sorted by name) with the series' own (own,
// sorted by name; own[1] nil if one, both if none), sorted by name, in
// one allocation at full capacity; job itself if own has none.
func withPairs(job []*dto.LabelPair, own [2]*dto.LabelPair) []*dto.LabelPair {
	k := 0
	for k < len(own) && own[k] != nil {
		k++
	}
	if k == 0 {
		return job
	}
	out := make([]*dto.LabelPair, 0, len(job)+k)
	i, j := 0, 0
	for i < len(job) || j < k {
		if j == k || i < len(job) && job[i].GetName() < own[j].GetName() {
			out, i = append(out, job[i]), i+1
		} else {
			out, j = append(out, own[j]), j+1
		}
	}
	return out
}
