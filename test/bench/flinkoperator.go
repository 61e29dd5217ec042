package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
)

// FlinkOperator is the Flink Kubernetes Operator autoscaler's published
// algorithm (flink-autoscaler, release 1.15 behavior) at its default
// settings, written from its description (section numbers below are those
// of the project's technical report on apache/flink-kubernetes-operator's
// autoscaler, §2.1–§2.11) and checked against the release-1.15.0 classes
// named below, as a bench policy. It reads only Flink's own metrics (never
// the brokers). NewFlinkOperator116 is the same algorithm at the 1.16
// defaults (see DefaultFlinkOperator116Config).
//
// What it does, per reconcile (one sample every 60 s, §2.1):
//   - Samples only while the job is RUNNING; holds (and does not sample)
//     while a rescale is under way or the Flink poll failed.
//   - Keeps a metric window that is cleared when the job's RUNNING timestamp
//     moves or its job id changes; samples before RUNNING+stabilization are
//     dropped; the window is full metrics.window after its first sample, is
//     then trimmed to metrics.window, and is evaluated only when full with at
//     least 2 samples (§2.3).
//   - Evaluates every vertex in topological order (§2.4,
//     ScalingMetricEvaluator): busy time from the MAX aggregate, inputRate =
//     rate(NUM_RECORDS_IN) [≤1.15], TPR = inputRate / busy, the switch to the
//     observed TPR of sources (ScalingMetrics records it; it needs
//     observed-true-processing-rate.min-observations finite samples), target
//     and catch-up data rates propagated through output ratios (0 unless
//     both rates are > 0), the scale-up / scale-down thresholds and the
//     backlog exception. Averages skip ±∞ samples (getAverage). A source
//     without an ingestion rate fails the whole evaluation, as the
//     evaluator's exception does.
//   - Sizes each vertex (§2.5, JobVertexScaler): ceil(clamped factor × p)
//     within the vertex min/max parallelism and the vertex's max
//     parallelism; aligns sources to their partition count and keyBy (HASH)
//     inputs to the key groups with the legacy EVENLY_SPREAD rules, the
//     downward walk and the direction guard (§2.6); delays scale-downs by
//     scale-down.interval and executes the maximum recommendation of that
//     interval (§2.7, DelayedScaleDown).
//   - Rescales (§2.11, ScalingExecutor.computeScalingSummary) only if some
//     vertex whose parallelism changes is outside its utilization bounds,
//     and then every vertex whose parallelism changes. A vertex whose
//     scale-down is still delayed does not change, so it neither counts nor
//     moves; one whose delayed scale-down has come due counts with the flag
//     stored with the interval's maximum recommendation, not with its
//     current one. It never changes the TaskManagers' slots.
//
// Off by default in the operator and therefore left out: restart-time
// tracking (restart.time is used as is, §2.10), ineffective-scaling
// detection (§2.8), observed scalability (§2.9), memory tuning (§2.12), the
// GC-pressure and heap-usage gates, CPU/memory quotas, the cluster-capacity
// check, excluded periods and excluded vertices (§2.11). The busy-time
// aggregator is fixed to MAX (the default).
type FlinkOperator struct {
	Config FlinkOperatorConfig

	// name is Name(); empty: "flink-operator".
	name string

	jobID        string
	runningSince time.Time
	windowStart  time.Time
	samples      []foSample
	delayed      map[string]*foDelayed
	// last is the latest evaluation (for the plan's reason and the tests).
	last map[string]foVertexEval
}

// FlinkOperatorConfig is the autoscaler's configuration (job.autoscaler.*
// keys, §1) that the policy honors.
type FlinkOperatorConfig struct {
	// MetricsWindow is metrics.window (15 min).
	MetricsWindow time.Duration
	// StabilizationInterval is stabilization.interval (5 min).
	StabilizationInterval time.Duration
	// TargetUtilization is utilization.target (0.7).
	TargetUtilization float64
	// TargetUtilizationBoundary is target.utilization.boundary (0.3), from
	// which the max and min utilizations derive when they are unset.
	TargetUtilizationBoundary float64
	// UtilizationMax and UtilizationMin are utilization.max / .min; nil:
	// target + boundary and target − boundary (1.0 and 0.4).
	UtilizationMax, UtilizationMin *float64
	// ScaleDownInterval is scale-down.interval (1 h); ≤ 0 scales down at
	// once.
	ScaleDownInterval time.Duration
	// ScaleDownMaxFactor is scale-down.max-factor (0.6): factors below
	// 1 − 0.6 are raised to it.
	ScaleDownMaxFactor float64
	// ScaleUpMaxFactor is scale-up.max-factor (100000): factors above 1 +
	// it are lowered to it.
	ScaleUpMaxFactor float64
	// CatchUpDuration is catch-up.duration (30 min); 0 disables the
	// catch-up and restart terms.
	CatchUpDuration time.Duration
	// RestartTime is restart.time (5 min); time tracking is off by default.
	RestartTime time.Duration
	// BacklogLagThreshold is backlog-processing.lag-threshold (5 min).
	BacklogLagThreshold time.Duration
	// ObservedTPRLagThreshold, ObservedTPRSwitchThreshold and
	// ObservedTPRMinObservations are
	// observed-true-processing-rate.lag-threshold (30 s), .switch-threshold
	// (0.15) and .min-observations (2).
	ObservedTPRLagThreshold    time.Duration
	ObservedTPRSwitchThreshold float64
	ObservedTPRMinObservations int
	// VertexMinParallelism and VertexMaxParallelism are
	// vertex.min-parallelism (1) and vertex.max-parallelism (200).
	VertexMinParallelism, VertexMaxParallelism int
	// ReconcileInterval is kubernetes.operator.reconcile.interval (60 s):
	// the sampling cadence.
	ReconcileInterval time.Duration
	// Alignment is how sources and keyBy vertices are aligned (§2.6): 1.15's
	// scaling.key-group.partitions.adjust.mode = EVENLY_SPREAD, or 1.16's
	// scaling.parallelism-alignment.mode = BALANCED.
	Alignment FlinkOperatorAlignment
	// TPRInputFromGauge is FLINK-39306 (1.16): with the MAX busy-time
	// aggregator the TPR numerator of a non-source is the window average of
	// its numRecordsInPerSecond gauge (sum over subtasks), falling back to
	// rate(NUM_RECORDS_IN) when that is NaN or ±∞ (computeTprInputRate).
	// false: rate(NUM_RECORDS_IN) [≤1.15].
	TPRInputFromGauge bool
	// ExpectedRatePerSubtask is FLINK-39743 (1.16): EXPECTED_PROCESSING_RATE
	// = TPR / current × new; false: TPR × capped factor [≤1.15]. It is
	// read only by ineffective-scaling detection, which is off: it is kept
	// for the evaluation's record.
	ExpectedRatePerSubtask bool
}

// FlinkOperatorAlignment is the alignment of a new parallelism to the
// source partitions or key groups (§2.6).
type FlinkOperatorAlignment int

const (
	// FOAlignLegacyEvenlySpread is the deprecated
	// scaling.key-group.partitions.adjust.mode at its EVENLY_SPREAD default
	// (the 1.15 rules): a divisor in the search region, else the downward
	// walk and the direction guard, which can block the scale.
	FOAlignLegacyEvenlySpread FlinkOperatorAlignment = iota
	// FOAlignBalanced is 1.16's scaling.parallelism-alignment.mode default
	// BALANCED (BuiltInAlignmentMode): the first divisor or load-reducing
	// value in the search region, else the computed target bounded by the
	// alignment cap min(N, maxParallelism, upper limit) (the FLINK-40389
	// fix, apache/flink-kubernetes-operator#1179), so a source never exceeds
	// its partition count. It never blocks a scale.
	FOAlignBalanced
)

// DefaultFlinkOperatorConfig is the operator's defaults (§1).
func DefaultFlinkOperatorConfig() FlinkOperatorConfig {
	return FlinkOperatorConfig{
		MetricsWindow:              15 * time.Minute,
		StabilizationInterval:      5 * time.Minute,
		TargetUtilization:          0.7,
		TargetUtilizationBoundary:  0.3,
		ScaleDownInterval:          time.Hour,
		ScaleDownMaxFactor:         0.6,
		ScaleUpMaxFactor:           100000,
		CatchUpDuration:            30 * time.Minute,
		RestartTime:                5 * time.Minute,
		BacklogLagThreshold:        5 * time.Minute,
		ObservedTPRLagThreshold:    30 * time.Second,
		ObservedTPRSwitchThreshold: 0.15,
		ObservedTPRMinObservations: 2,
		VertexMinParallelism:       1,
		VertexMaxParallelism:       200,
		ReconcileInterval:          60 * time.Second,
	}
}

// DefaultFlinkOperator116Config is the defaults of operator 1.16
// (apache/flink-kubernetes-operator main, pom 1.16-SNAPSHOT, no 1.16 tag
// yet), where they differ from 1.15.0 in what this policy reads:
//   - job.autoscaler.scaling.parallelism-alignment.mode (new, FLINK-39938 /
//     FLIP-586) defaults to BALANCED; the deprecated
//     scaling.key-group.partitions.adjust.mode is honored only when set
//     (ParallelismAligner.resolve), so BALANCED applies; with the
//     FLINK-40389 cap (#1179, merged after main's 6e9caeb4).
//   - FLINK-39306 changes the default (MAX aggregator) TPR numerator of
//     non-sources: TPRInputFromGauge.
//   - FLINK-39743 changes EXPECTED_PROCESSING_RATE: ExpectedRatePerSubtask.
//
// Checked and unchanged from 1.15.0 (AutoScalerOptions, and
// KubernetesOperatorConfigOptions for the reconcile interval):
// metrics.window, stabilization.interval, utilization.target,
// target.utilization.boundary, utilization.max/min (unset),
// scale-down.interval, scale-down.max-factor, scale-up.max-factor,
// catch-up.duration, restart.time, restart.time-tracking.enabled,
// backlog-processing.lag-threshold, observed-true-processing-rate.*
// (lag-threshold, switch-threshold, min-observations),
// vertex.min-parallelism, vertex.max-parallelism,
// metrics.busy-time.aggregator (MAX), scaling.effectiveness.detection.enabled,
// observed-scalability.enabled, memory.*, and
// kubernetes.operator.reconcile.interval. The new plug-in keys
// (metrics.custom-evaluators, scaling.custom-executors) default to none.
// The gate (ScalingExecutor.computeScalingSummary) and DelayedScaleDown are
// unchanged.
func DefaultFlinkOperator116Config() FlinkOperatorConfig {
	c := DefaultFlinkOperatorConfig()
	c.Alignment = FOAlignBalanced
	c.TPRInputFromGauge = true
	c.ExpectedRatePerSubtask = true
	return c
}

// NewFlinkOperator is the policy at the operator's (1.15) defaults.
func NewFlinkOperator() *FlinkOperator {
	return &FlinkOperator{Config: DefaultFlinkOperatorConfig()}
}

// NewFlinkOperator116 is the policy at the operator's 1.16 defaults
// (DefaultFlinkOperator116Config), named "flink-operator-1.16".
func NewFlinkOperator116() *FlinkOperator {
	return &FlinkOperator{Config: DefaultFlinkOperator116Config(), name: "flink-operator-1.16"}
}

var _ Policy = (*FlinkOperator)(nil)

// Name implements Policy.
func (f *FlinkOperator) Name() string {
	if f.name != "" {
		return f.name
	}
	return "flink-operator"
}

// Interval implements Policy: the operator's reconcile interval.
func (f *FlinkOperator) Interval() time.Duration {
	if f.Config.ReconcileInterval > 0 {
		return f.Config.ReconcileInterval
	}
	return 60 * time.Second
}

// Rescaled implements Policy: an executed rescale clears every delayed
// scale-down (§2.7). With restart-time tracking off (§2.10) nothing else is
// kept; the restart itself clears the window when RUNNING moves.
func (f *FlinkOperator) Rescaled(Rescale) {
	f.delayed = nil
}

// foSample is one stored sample: the per-vertex values the evaluation reads.
type foSample struct {
	at time.Time
	v  map[string]foPoint
}

// foPoint is one vertex at one sample; NaN where Flink did not report.
type foPoint struct {
	busy     float64 // busyTimeMsPerSecond, MAX over subtasks
	in, out  float64 // NUM_RECORDS_IN / NUM_RECORDS_OUT counters
	inPerSec float64 // numRecordsInPerSecond (sum)
	lag      float64 // LAG (pendingRecords; 0 when absent)
	obsTPR   float64 // OBSERVED_TPR (sources), NaN if none yet
}

// foVertexInfo is a vertex of the latest sample's topology.
type foVertexInfo struct {
	id         string
	current    int
	maxPar     int
	inputs     []string // distinct upstream vertex ids
	hash       bool     // some input edge is HASH (keyBy)
	partitions int      // NUM_SOURCE_PARTITIONS
}

type foTopology struct {
	order   []string
	v       map[string]*foVertexInfo
	outputs map[string]int // number of downstream vertices
}

// foVertexEval is one vertex's evaluated metrics (§2.4).
type foVertexEval struct {
	valid            bool
	busy             float64 // window average, ms/s
	inRate, outRate  float64 // records/s
	lag              float64 // latest
	busyTPR, obsTPR  float64
	tpr              float64
	target, catchUp  float64
	scaleUp          float64 // SCALE_UP_RATE_THRESHOLD
	scaleDown        float64 // SCALE_DOWN_RATE_THRESHOLD
	targetCapacity   float64 // capacity at utilization.target, with restart
	processBacklog   bool    // the job is processing backlog
	outside          bool    // TPR outside [scaleUp, scaleDown]
	factor           float64 // capped scale factor
	recommended      int     // after limits and alignment (before the delay)
	expectedTPR      float64 // EXPECTED_PROCESSING_RATE [≤1.15]: TPR × factor
	isSource         bool
	scaleDownPending bool
}

// foDelayed is a vertex's delayed scale-down (§2.7,
// DelayedScaleDown.VertexDelayedScaleDownInfo): when it was first
// recommended and the recommendations, oldest first, strictly decreasing.
type foDelayed struct {
	first time.Time
	recs  []foRec
}

// foRec is one recommendation (DelayedScaleDown.RecommendedParallelism):
// with whether the vertex was outside its utilization bounds when it was
// made, which is the gate's flag once it is the interval's maximum.
type foRec struct {
	at      time.Time
	p       int
	outside bool
}

// Observe implements Policy.
func (f *FlinkOperator) Observe(o Observation) *Plan {
	if o.Deployment.Rescaling || o.FlinkErr != nil {
		return nil
	}
	s := o.Flink
	if s.State != "RUNNING" {
		return nil // §2.1: no sample unless RUNNING
	}
	cfg := f.Config
	now := o.Now
	since := s.RunningSince
	if since.IsZero() {
		since = o.Deployment.RunningSince
	}
	if s.JobID != f.jobID || !since.Equal(f.runningSince) {
		f.jobID, f.runningSince = s.JobID, since
		f.samples, f.windowStart, f.last = nil, time.Time{}, nil
	}
	if now.Before(since.Add(cfg.StabilizationInterval)) {
		return nil // §2.3: stabilizing
	}
	if f.windowStart.IsZero() {
		f.windowStart = now
	}
	f.record(now, s)
	if now.Before(f.windowStart.Add(cfg.MetricsWindow)) {
		return nil // window not full yet
	}
	cut := now.Add(-cfg.MetricsWindow)
	keep := f.samples[:0]
	for _, x := range f.samples {
		if !x.at.Before(cut) {
			keep = append(keep, x)
		}
	}
	f.samples = keep
	if len(f.samples) < 2 {
		return nil
	}
	topo := foBuildTopology(s, o.Deployment)
	evals, ok := f.evaluate(topo)
	f.last = evals
	if !ok {
		return nil
	}
	return f.decide(now, topo, evals, o.Deployment)
}

// record stores one sample; a source's observed TPR is measured when its
// lag is large enough, otherwise the previous average is carried (§2.2;
// ScalingMetrics.computeDataRateMetrics and getObservedTpr).
func (f *FlinkOperator) record(now time.Time, s metrics.FlinkSample) {
	smp := foSample{at: now, v: make(map[string]foPoint, len(s.Vertices))}
	for _, v := range s.Vertices {
		if _, dup := smp.v[v.ID]; dup {
			continue
		}
		source := len(v.Inputs) == 0
		pt := foPoint{
			busy: math.NaN(), in: foVal(v.NumRecordsIn), out: foVal(v.NumRecordsOut),
			inPerSec: foVal(v.NumRecordsInPerSecond), obsTPR: math.NaN(),
		}
		if b := v.BusyTimeMsPerSecond; b != nil && !math.IsNaN(b.Max) && !math.IsInf(b.Max, 0) {
			pt.busy = b.Max
		}
		if source {
			// A source's NUM_RECORDS_IN is its operator's numRecordsIn,
			// or numRecordsOut when that is 0 (or absent).
			if (math.IsNaN(pt.in) || pt.in == 0) && !math.IsNaN(pt.out) {
				pt.in = pt.out
			}
			if v.PendingRecords != nil && !math.IsNaN(*v.PendingRecords) {
				pt.lag = *v.PendingRecords
			}
			bp := math.NaN()
			if v.BackPressuredTimeMsPerSecond != nil {
				bp = v.BackPressuredTimeMsPerSecond.Avg
			}
			pt.obsTPR = f.observedTPR(v.ID, pt.inPerSec, pt.lag, bp)
		}
		smp.v[v.ID] = pt
	}
	f.samples = append(f.samples, smp)
}

// observedTPR is a source's OBSERVED_TPR sample: NaN (not recorded)
// without numRecordsInPerSecond; +∞ when that is 0; inPerSec / (1 −
// backPressured/1000) while catching up (lag ≥ lag-threshold × inPerSec)
// with back pressure below 1000 ms/s; otherwise the average of the stored
// observations, NaN with fewer than min-observations of them — so a single
// observation is not carried into a second one.
func (f *FlinkOperator) observedTPR(id string, inPerSec, lag, bp float64) float64 {
	cfg := f.Config
	switch {
	case math.IsNaN(inPerSec):
		return math.NaN()
	case inPerSec == 0:
		return math.Inf(1)
	case lag >= cfg.ObservedTPRLagThreshold.Seconds()*inPerSec && bp < 1000:
		return inPerSec / (1 - bp/1000)
	}
	return foAverage(f.samples, id, func(p foPoint) float64 { return p.obsTPR }, cfg.ObservedTPRMinObservations)
}

func foVal(p *float64) float64 {
	if p == nil || math.IsInf(*p, 0) {
		return math.NaN()
	}
	return *p
}

// foBuildTopology orders the latest sample's vertices topologically (the
// sample's order among ready vertices; anything left in a cycle last).
func foBuildTopology(s metrics.FlinkSample, d Deployment) foTopology {
	t := foTopology{v: map[string]*foVertexInfo{}, outputs: map[string]int{}}
	var ids []string
	for _, vs := range s.Vertices {
		if _, dup := t.v[vs.ID]; dup {
			continue
		}
		cur := d.Parallelism[vs.ID]
		if cur <= 0 {
			cur = vs.Parallelism
		}
		vi := &foVertexInfo{id: vs.ID, current: max(cur, 1), maxPar: vs.MaxParallelism}
		seen := map[string]bool{}
		for _, in := range vs.Inputs {
			if in.ShipStrategy == "HASH" {
				vi.hash = true
			}
			if !seen[in.ID] {
				seen[in.ID] = true
				vi.inputs = append(vi.inputs, in.ID)
			}
		}
		parts := map[[2]string]bool{}
		for _, po := range vs.Partitions {
			parts[[2]string{po.Topic, fmt.Sprint(po.Partition)}] = true
		}
		vi.partitions = len(parts)
		t.v[vs.ID] = vi
		ids = append(ids, vs.ID)
	}
	for _, id := range ids {
		for _, in := range t.v[id].inputs {
			t.outputs[in]++
		}
	}
	done := map[string]bool{}
	for len(t.order) < len(ids) {
		progress := false
		for _, id := range ids {
			if done[id] {
				continue
			}
			ready := true
			for _, in := range t.v[id].inputs {
				if _, known := t.v[in]; known && !done[in] {
					ready = false
					break
				}
			}
			if ready {
				done[id] = true
				t.order = append(t.order, id)
				progress = true
			}
		}
		if !progress { // a cycle: take the rest in the sample's order
			for _, id := range ids {
				if !done[id] {
					done[id] = true
					t.order = append(t.order, id)
				}
			}
		}
	}
	return t
}

// foRate is (last − first) / Δt over the first and last non-NaN values of
// the window (getRate, §2.3); NaN without two such samples.
func foRate(samples []foSample, id string, get func(foPoint) float64) float64 {
	first, last := -1, -1
	for i, s := range samples {
		if p, ok := s.v[id]; ok && !math.IsNaN(get(p)) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 || last == first {
		return math.NaN()
	}
	dt := samples[last].at.Sub(samples[first].at).Seconds()
	if dt <= 0 {
		return math.NaN()
	}
	return (get(samples[last].v[id]) - get(samples[first].v[id])) / dt
}

// foAverage is ScalingMetricEvaluator.getAverage (§2.3): the plain mean of
// the finite values, skipping NaN and ±∞; with none, +∞ if some value was
// infinite and NaN otherwise; NaN with fewer than minN finite values.
func foAverage(samples []foSample, id string, get func(foPoint) float64, minN int) float64 {
	sum, n, inf := 0.0, 0, false
	for _, s := range samples {
		p, ok := s.v[id]
		if !ok {
			continue
		}
		switch x := get(p); {
		case math.IsNaN(x):
		case math.IsInf(x, 0):
			inf = true
		default:
			sum += x
			n++
		}
	}
	switch {
	case n == 0 && inf:
		return math.Inf(1)
	case n == 0 || n < minN:
		return math.NaN()
	}
	return sum / float64(n)
}

// foJavaRound is Java's Math.round on doubles: floor(x + 0.5).
func foJavaRound(x float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	return math.Floor(x + 0.5)
}

// foCapacity is getTargetProcessingCapacity (§2.4): round(catchUp +
// restart term + target/util), +∞ at util 0.
func foCapacity(cfg FlinkOperatorConfig, target, catchUp, util float64, withRestart bool) float64 {
	u := math.Min(math.Max(util, 0), 1)
	if u == 0 {
		return math.Inf(1)
	}
	restart := 0.0
	if withRestart && cfg.CatchUpDuration > 0 {
		restart = target * cfg.RestartTime.Seconds() / cfg.CatchUpDuration.Seconds()
	}
	return foJavaRound(catchUp + restart + target/u)
}

func (c FlinkOperatorConfig) utilBounds() (hi, lo float64) {
	hi = c.TargetUtilization + c.TargetUtilizationBoundary
	lo = c.TargetUtilization - c.TargetUtilizationBoundary
	if c.UtilizationMax != nil {
		hi = *c.UtilizationMax
	}
	if c.UtilizationMin != nil {
		lo = *c.UtilizationMin
	}
	return hi, lo
}

// foRateOf is m[id], NaN when absent.
func foRateOf(m map[string]float64, id string) float64 {
	if x, ok := m[id]; ok {
		return x
	}
	return math.NaN()
}

// foOutputRatio is ScalingMetricEvaluator.computeEdgeOutputRatio (§2.4):
// the records/s on the edge up → v over up's input records/s; 0 unless both
// are > 0 (so a NaN or negative rate, e.g. after a counter reset, counts 0).
// The edge rate (computeEdgeDataRate) is v's input rate when up is its only
// input; else v's input rate less the output rates of its other inputs, if
// each of those has v as its only output and the sum is a number; else up's
// output rate.
func foOutputRatio(t foTopology, inRate, outRate map[string]float64, up string, v *foVertexInfo) float64 {
	upIn := foRateOf(inRate, up)
	if !(upIn > 0) {
		return 0
	}
	edge := foRateOf(outRate, up)
	if len(v.inputs) == 1 {
		edge = foRateOf(inRate, v.id)
	} else {
		others := 0.0
		for _, o := range v.inputs {
			if o == up {
				continue
			}
			if t.outputs[o] != 1 {
				others = math.NaN()
				break
			}
			others += foRateOf(outRate, o)
		}
		if !math.IsNaN(others) {
			edge = foRateOf(inRate, v.id) - others
		}
	}
	if !(edge > 0) {
		return 0
	}
	return edge / upIn
}

// evaluate computes §2.4 for every vertex over the window. ok is false when
// a source has no ingestion rate (NaN), where ScalingMetricEvaluator throws
// and the operator skips the cycle.
func (f *FlinkOperator) evaluate(t foTopology) (ev map[string]foVertexEval, ok bool) {
	cfg := f.Config
	ev = make(map[string]foVertexEval, len(t.order))
	inRate := map[string]float64{}
	outRate := map[string]float64{}
	for _, id := range t.order {
		inRate[id] = foRate(f.samples, id, func(p foPoint) float64 { return p.in })
		outRate[id] = foRate(f.samples, id, func(p foPoint) float64 { return p.out })
	}
	latest := f.samples[len(f.samples)-1]

	backlog := false
	for _, id := range t.order {
		if len(t.v[id].inputs) > 0 {
			continue
		}
		lag := latest.v[id].lag
		if lag/inRate[id] > cfg.BacklogLagThreshold.Seconds() {
			backlog = true
		}
	}
	hiUtil, loUtil := cfg.utilBounds()
	if backlog {
		hiUtil, loUtil = 1, 0
	}

	ok = true
	for _, id := range t.order {
		v := t.v[id]
		e := foVertexEval{
			inRate: inRate[id], outRate: outRate[id], lag: latest.v[id].lag,
			isSource: len(v.inputs) == 0, processBacklog: backlog,
			obsTPR: math.NaN(),
		}
		e.busy = foAverage(f.samples, id, func(p foPoint) float64 { return p.busy }, 1)
		// computeTprFromBusyTime: +∞ with no input, else rate / busy
		// fraction (±∞ at busy 0, NaN with either NaN).
		tprIn := e.inRate
		if cfg.TPRInputFromGauge && !e.isSource {
			if g := foAverage(f.samples, id, func(p foPoint) float64 { return p.inPerSec }, 1); !math.IsNaN(g) && !math.IsInf(g, 0) {
				tprIn = g
			}
		}
		if tprIn == 0 {
			e.busyTPR = math.Inf(1)
		} else {
			e.busyTPR = tprIn / (e.busy / 1000)
		}
		e.tpr = e.busyTPR
		if e.isSource {
			// selectTprMetric
			e.obsTPR = foAverage(f.samples, id, func(p foPoint) float64 { return p.obsTPR }, cfg.ObservedTPRMinObservations)
			if !math.IsNaN(e.obsTPR) && (math.IsNaN(e.busyTPR) || math.IsInf(e.busyTPR, 0) ||
				e.busyTPR > e.obsTPR*(1+cfg.ObservedTPRSwitchThreshold)) {
				e.tpr = e.obsTPR
			}
			lagRate := foRate(f.samples, id, func(p foPoint) float64 { return p.lag })
			if math.IsNaN(lagRate) {
				lagRate = 0
			}
			e.target = math.Max(0, e.inRate+lagRate)
			if math.IsNaN(e.inRate) {
				e.target = math.NaN()
				ok = false
			}
			if cfg.CatchUpDuration > 0 {
				e.catchUp = e.lag / cfg.CatchUpDuration.Seconds()
			}
		} else {
			for _, in := range v.inputs {
				up, known := ev[in]
				if !known {
					e.target, e.catchUp = math.NaN(), math.NaN()
					break
				}
				r := foOutputRatio(t, inRate, outRate, in, v)
				e.target += up.target * r
				e.catchUp += up.catchUp * r
			}
		}
		e.scaleUp = foCapacity(cfg, e.target, e.catchUp, hiUtil, false)
		e.scaleDown = foCapacity(cfg, e.target, e.catchUp, loUtil, true)
		e.targetCapacity = foCapacity(cfg, e.target, e.catchUp, cfg.TargetUtilization, true)
		e.valid = !math.IsNaN(e.busy) && !math.IsNaN(e.tpr) && !math.IsNaN(e.target) &&
			!math.IsNaN(e.catchUp) && !math.IsNaN(e.targetCapacity)
		if e.valid {
			e.outside = e.tpr < e.scaleUp || e.tpr > e.scaleDown
		}
		ev[id] = e
	}
	return ev, ok
}

// foScaleFactor is §2.5 steps 2–3: targetCapacity / TPR within
// [1 − scale-down.max-factor, 1 + scale-up.max-factor].
func foScaleFactor(cfg FlinkOperatorConfig, targetCapacity, tpr float64) float64 {
	x := targetCapacity / tpr
	lo, hi := 1-cfg.ScaleDownMaxFactor, 1+cfg.ScaleUpMaxFactor
	if math.IsNaN(x) {
		return x
	}
	return math.Min(math.Max(x, lo), hi)
}

// foLimits is §2.5 step 4 and the operator max-parallelism cap: the lower
// and upper bounds of the new parallelism.
func foLimits(cfg FlinkOperatorConfig, cur, maxPar int) (lower, upper int) {
	lower = min(cur, cfg.VertexMinParallelism)
	upper = max(cur, cfg.VertexMaxParallelism)
	if maxPar > 0 {
		upper = min(upper, maxPar)
	}
	return lower, upper
}

// foParallelism is §2.5 step 5: min(max(lower, ceil(factor × cur)),
// min(maxParallelism, upper)).
func foParallelism(cfg FlinkOperatorConfig, cur, maxPar int, factor float64) int {
	lower, upper := foLimits(cfg, cur, maxPar)
	raw := math.Ceil(factor * float64(cur))
	p := math.Min(math.Max(float64(lower), raw), float64(upper))
	return int(p)
}

// foAlign is the alignment (§2.6) of a new parallelism p ≠ cur. N is the
// partition count (sources) or the key groups (maxParallelism, HASH
// inputs); the cap is min(N, maxParallelism, upper limit); the search region
// is [p, cap] for a scale-up and [p, min(cur, cap)] for a scale-down.
//   - FOAlignLegacyEvenlySpread (JobVertexScaler.scale, 1.15): the first
//     divisor of N in the region, else the downward walk, and the direction
//     guard.
//   - FOAlignBalanced (BuiltInAlignmentMode.BALANCED with the FLINK-40389
//     cap): the first divisor of N or load-reducing value (N/q < N/p) in the
//     region, else min(p, cap).
func foAlign(cfg FlinkOperatorConfig, cur, p, maxPar, partitions int, hash bool) int {
	if p == cur || (partitions <= 0 && !hash) {
		return p
	}
	n := maxPar
	if partitions > 0 {
		n = partitions
	}
	if n <= 0 {
		return p
	}
	lower, upper := foLimits(cfg, cur, 0)
	capP := min(n, upper)
	if maxPar > 0 {
		capP = min(capP, maxPar)
	}
	end := capP
	if p < cur {
		end = min(capP, cur)
	}
	balanced := cfg.Alignment == FOAlignBalanced
	for q := p; q <= end; q++ {
		if n%q == 0 || (balanced && n/q < n/p) {
			return q
		}
	}
	if balanced {
		return min(p, capP)
	}
	q := p - 1
	for ; q > 0; q-- {
		if n/q > n/p {
			if n%q != 0 {
				q++
			}
			break
		}
	}
	q = max(q, lower)
	if (p > cur && q < cur) || (p < cur && q > cur) {
		return cur // the direction guard: the scale is blocked
	}
	return q
}

// delay is §2.7 (JobVertexScaler.applyScaleDownInterval) for a vertex
// whose recommendation is p and whose utilization-bounds flag is outside: a
// recommendation ≥ cur clears its delayed scale-down; a lower one is
// recorded with the flag and executed, at the maximum recommendation of the
// last interval, once the interval has passed since the first one. It
// returns the parallelism to apply, whether it is a change, and the change's
// bounds flag for the gate: the vertex's own for an immediate change, the
// maximum recommendation's for a scale-down that has come due.
func (f *FlinkOperator) delay(id string, cur, p int, outside bool, now time.Time) (np int, changed, chOutside bool) {
	if p >= cur {
		delete(f.delayed, id)
		return p, p != cur, outside && p != cur
	}
	iv := f.Config.ScaleDownInterval
	if iv <= 0 {
		return p, true, outside
	}
	if f.delayed == nil {
		f.delayed = map[string]*foDelayed{}
	}
	d := f.delayed[id]
	if d == nil {
		d = &foDelayed{first: now}
		f.delayed[id] = d
	}
	k := len(d.recs)
	for k > 0 && d.recs[k-1].p <= p {
		k--
	}
	d.recs = append(d.recs[:k], foRec{at: now, p: p, outside: outside})
	from := now.Add(-iv)
	i := 0
	for i < len(d.recs)-1 && d.recs[i].at.Before(from) {
		i++
	}
	d.recs = d.recs[i:]
	if from.Before(d.first) {
		return cur, false, false
	}
	return d.recs[0].p, true, d.recs[0].outside
}

// decide sizes every vertex (§2.5–§2.7) and applies the gate (§2.11,
// ScalingExecutor.computeScalingSummary): only the vertices whose
// parallelism changes count, each with its change's bounds flag.
func (f *FlinkOperator) decide(now time.Time, t foTopology, evals map[string]foVertexEval, d Deployment) *Plan {
	cfg := f.Config
	type change struct {
		p       int
		outside bool
	}
	changes := map[string]change{}
	anyOutside := false
	for _, id := range t.order {
		e := evals[id]
		if !e.valid {
			continue // §2.2: non-finite metrics exclude the vertex
		}
		v := t.v[id]
		e.factor = foScaleFactor(cfg, e.targetCapacity, e.tpr)
		if math.IsNaN(e.factor) {
			evals[id] = e
			continue
		}
		p := foParallelism(cfg, v.current, v.maxPar, e.factor)
		if p != v.current {
			p = foAlign(cfg, v.current, p, v.maxPar, v.partitions, v.hash)
		}
		e.recommended = p
		if p != v.current {
			if cfg.ExpectedRatePerSubtask {
				e.expectedTPR = e.tpr / float64(v.current) * float64(p)
			} else {
				e.expectedTPR = e.tpr * e.factor
			}
		}
		np, changed, outside := f.delay(id, v.current, p, e.outside, now)
		e.scaleDownPending = p < v.current && !changed
		if changed {
			changes[id] = change{np, outside}
			anyOutside = anyOutside || outside
		}
		evals[id] = e
	}
	if !anyOutside {
		return nil
	}
	plan := &Plan{Parallelism: map[string]int{}}
	for _, id := range t.order {
		plan.Parallelism[id] = t.v[id].current
	}
	for id, p := range d.Parallelism {
		if _, ok := plan.Parallelism[id]; !ok {
			plan.Parallelism[id] = max(p, 1)
		}
	}
	var why []string
	for _, id := range t.order {
		e := evals[id]
		c, ok := changes[id]
		if !ok {
			continue
		}
		note := "within bounds"
		switch {
		case c.outside && c.p < t.v[id].current && e.recommended != c.p:
			note = "delayed maximum outside bounds"
		case c.outside && e.tpr < e.scaleUp:
			note = fmt.Sprintf("TPR %.0f < %.0f", e.tpr, e.scaleUp)
		case c.outside:
			note = fmt.Sprintf("TPR %.0f > %.0f", e.tpr, e.scaleDown)
		}
		why = append(why, fmt.Sprintf("%s %d→%d (%s)", id, t.v[id].current, c.p, note))
		plan.Parallelism[id] = c.p
	}
	plan.Reason = f.Name() + ": " + strings.Join(why, "; ")
	// An executed rescale clears every delayed scale-down (§2.7).
	f.delayed = nil
	return plan
}

// Explain is the last evaluation, one line per vertex (by id, sorted): the
// window's busy time, input rate and lag, the true processing rate, the
// target and catch-up rates, the scale-up and scale-down thresholds,
// whether the vertex is outside them and what it would run at. Empty
// before the window first filled. For comparing runs with the real
// autoscaler's evaluations.
func (f *FlinkOperator) Explain() string {
	var lines []string
	for _, id := range slices.Sorted(maps.Keys(f.last)) {
		e := f.last[id]
		if !e.valid {
			lines = append(lines, fmt.Sprintf("%.6s: not evaluated", id))
			continue
		}
		lines = append(lines, fmt.Sprintf("%.6s: busy %.0f ms/s, in %.1f/s, lag %.0f, TPR %.1f (busy %.1f, observed %.1f), target %.1f + catch-up %.1f, up at %.1f, down at %.1f, outside %t, → %d",
			id, e.busy, e.inRate, e.lag, e.tpr, e.busyTPR, e.obsTPR, e.target, e.catchUp, e.scaleUp, e.scaleDown, e.outside, e.recommended))
	}
	return strings.Join(lines, "; ")
}
