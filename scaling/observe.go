package scaling

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// job is the validated, internal view of a snapshot: plain numbers, vertices
// in topological order, edges resolved.
type job struct {
	s        *Snapshot
	vertices []*vertex // topological order
	byID     map[string]*vertex
	// cpu is the cores of one TaskManager now; slots its task slots now.
	cpu   float64
	slots int
	// checkpoint health, from the snapshot and the policy.
	ckptDuration time.Duration
	ckptSlow     bool
	ckptFailing  bool
	// slotScale (> 1) multiplies every plan's slots when Flink did not
	// report slot-sharing groups but holds more slots than one group needs.
	slotScale float64
}

// vertex is one job vertex with validated metrics (fractions, records/s).
type vertex struct {
	v    *Vertex
	p    int
	maxP int
	ins  []*edge
	outs []*edge

	busyAvg, busyMax float64 // busy fraction of the average and busiest subtask
	bpMax            float64 // backpressured fraction of the most backpressured subtask
	in, out          float64 // records/s summed over subtasks
	hasOut           bool

	// Kafka source measurements.
	lag, lagRate, arrival  float64
	hasLag, hasLagRate     bool
	hasArrival             bool
	spread                 spread
	excluded               bool
	lower, upper           int
	upperLimit, lowerLimit ReasonCode

	// Derived by the model.
	measurable bool    // capacity could be measured from busy time
	perSubtask float64 // c(p): records/s one subtask handles at 100 % busy, at its share now
	bcast      float64 // records/s each subtask receives over broadcast edges (its target once targets ran)
	curve      usl
	fitted     bool
	target     float64 // records/s the vertex must sustain
	lagBacklog float64 // records of the current lag that will pass through the vertex
	backlog    float64 // lagBacklog plus what arrives during the restart
	catchUp    float64 // extra records/s to drain backlog within the catch-up duration
	lagCatchUp float64 // the part of catchUp due to the current lag only
	reasons    []Reason
}

type edge struct {
	from, to *vertex
	ship     string
	// ratio is the records arriving over this edge per partitioned record
	// into from; for a broadcast edge, what each subtask receives.
	ratio float64
}

// tpr is the vertex's true processing rate now: records in per second over
// the busiest subtask's busy fraction (DS2), +Inf when not measurable.
func (x *vertex) tpr() float64 {
	return x.capacityAt(x.p)
}

// capacityAt is the predicted true processing rate at parallelism q: the
// busiest subtask's per-subtask capacity scaled by the curve's efficiency,
// less what the broadcast inputs take of every subtask, over its share of
// the vertex's (partitioned) records.
func (x *vertex) capacityAt(q int) float64 {
	return x.capAt(q, 1)
}

// capAt is the rate of partitioned records the vertex sustains at
// parallelism q with its busiest subtask busy u of the time: what is left of
// u·c after the broadcast records every subtask handles, over its share.
func (x *vertex) capAt(q int, u float64) float64 {
	if !x.measurable {
		return math.Inf(1)
	}
	return math.Max(0, u*x.perSubtask*x.curve.efficiency(q)/x.curve.efficiency(x.p)-x.bcast) / x.spread.share(q)
}

// meets reports whether parallelism q carries target at busy fraction util,
// and target plus catchUp at full speed.
func (x *vertex) meets(q int, util, target, catchUp float64) bool {
	return x.capAt(q, util) >= target*(1-rel) && x.capAt(q, 1) >= (target+catchUp)*(1-rel)
}

// utilizationAt is the busiest subtask's predicted busy fraction at
// parallelism q when the vertex receives its target rate: its share of the
// partitioned records plus every broadcast record, over what it processes
// at 100 % busy.
func (x *vertex) utilizationAt(q int) float64 {
	if !x.measurable {
		return 0
	}
	if x.broadcastOnly() {
		return x.busyMax // every subtask has all the work, whatever q
	}
	return (x.spread.share(q)*x.target + x.bcast) / (x.perSubtask * x.curve.efficiency(q) / x.curve.efficiency(x.p))
}

func (x *vertex) reason(code ReasonCode, format string, a ...any) {
	x.reasons = append(x.reasons, Reason{Code: code, Vertex: x.v.ID, Message: fmt.Sprintf(format, a...)})
}

// observe validates the snapshot against the policy and builds the internal
// view. Any reason returned means the data cannot be trusted: the caller
// holds.
func observe(s *Snapshot, p *Policy, now time.Time) (*job, []Reason) {
	var rs []Reason
	add := func(code ReasonCode, vertex, format string, a ...any) {
		rs = append(rs, Reason{Code: code, Vertex: vertex, Message: fmt.Sprintf(format, a...)})
	}
	if s.JobState != "RUNNING" {
		add(ReasonJobNotRunning, "", "job state is %q, not RUNNING", s.JobState)
		return nil, rs
	}
	if len(s.Vertices) == 0 {
		add(ReasonInvalidSnapshot, "", "the snapshot has no vertices")
		return nil, rs
	}
	j := &job{s: s, byID: make(map[string]*vertex, len(s.Vertices))}
	all := make([]*vertex, 0, len(s.Vertices))
	for i := range s.Vertices {
		v := &s.Vertices[i]
		if v.ID == "" {
			add(ReasonInvalidSnapshot, "", "vertex %d (%q) has no id", i, v.Name)
			continue
		}
		if j.byID[v.ID] != nil {
			add(ReasonInvalidSnapshot, v.ID, "vertex id %s appears twice", v.ID)
			continue
		}
		x := &vertex{v: v, p: v.Parallelism, maxP: v.MaxParallelism}
		j.byID[v.ID] = x
		all = append(all, x)
	}
	for _, x := range all {
		for _, in := range x.v.Inputs {
			up := j.byID[in.ID]
			if up == nil || up == x {
				add(ReasonInvalidSnapshot, x.v.ID, "input %q is not another vertex of the job", in.ID)
				continue
			}
			e := &edge{from: up, to: x, ship: in.ShipStrategy}
			x.ins = append(x.ins, e)
			up.outs = append(up.outs, e)
		}
	}
	if len(rs) > 0 {
		return nil, rs
	}
	order, ok := topoSort(all)
	if !ok {
		add(ReasonInvalidSnapshot, "", "the job graph has a cycle")
		return nil, rs
	}
	j.vertices = order
	for _, x := range order {
		rs = append(rs, x.readMetrics(s)...)
	}
	rs = append(rs, j.readTaskManagers()...)
	rs = append(rs, j.readCheckpoints(p)...)
	if len(rs) > 0 {
		return nil, rs
	}
	rs = append(rs, checkWindow(s, p, now)...)
	if len(rs) > 0 {
		return nil, rs
	}
	return j, nil
}

// topoSort orders vertices so that every edge points forward (Kahn's
// algorithm, stable in snapshot order). ok is false on a cycle.
func topoSort(all []*vertex) ([]*vertex, bool) {
	indeg := make(map[*vertex]int, len(all))
	for _, x := range all {
		indeg[x] = len(x.ins)
	}
	var order []*vertex
	var ready []*vertex
	for _, x := range all {
		if indeg[x] == 0 {
			ready = append(ready, x)
		}
	}
	for len(ready) > 0 {
		x := ready[0]
		ready = ready[1:]
		order = append(order, x)
		for _, e := range x.outs {
			indeg[e.to]--
			if indeg[e.to] == 0 {
				ready = append(ready, e.to)
			}
		}
	}
	return order, len(order) == len(all)
}

// readMetrics turns one vertex's raw metrics into fractions and rates.
func (x *vertex) readMetrics(s *Snapshot) []Reason {
	var rs []Reason
	v := x.v
	add := func(code ReasonCode, format string, a ...any) {
		rs = append(rs, Reason{Code: code, Vertex: v.ID, Message: fmt.Sprintf(format, a...)})
	}
	if x.p < 1 {
		add(ReasonInvalidSnapshot, "parallelism must be ≥ 1, got %d", x.p)
	}
	if x.maxP < 1 {
		add(ReasonMissingMetrics, "maxParallelism is missing")
	} else if x.maxP < x.p {
		add(ReasonInvalidSnapshot, "maxParallelism %d is below parallelism %d", x.maxP, x.p)
	}
	// value reads a required or optional metric and checks it is finite and
	// within [lo, hi].
	value := func(name string, f *Float, required bool, lo, hi float64) (float64, bool) {
		if f == nil {
			if required {
				add(ReasonMissingMetrics, "%s is missing", name)
			}
			return 0, false
		}
		val := float64(*f)
		if math.IsNaN(val) || math.IsInf(val, 0) {
			add(ReasonNonFiniteMetric, "%s is %v", name, val)
			return 0, false
		}
		if val < lo || val > hi {
			add(ReasonMetricOutOfRange, "%s is %g, outside [%g, %g]", name, val, lo, hi)
			return 0, false
		}
		return val, true
	}
	stat := func(name string, st *Stat) (avg, mx float64) {
		if st == nil {
			add(ReasonMissingMetrics, "%s is missing", name)
			return 0, 0
		}
		// Flink computes these from nanosecond timers: allow rounding above 1000.
		avg, okA := value(name+".avg", st.Avg, true, 0, 1000.5)
		mx, okM := value(name+".max", st.Max, true, 0, 1000.5)
		if okA && okM && avg > mx*(1+1e-6)+1e-6 {
			add(ReasonMetricOutOfRange, "%s.avg %g exceeds its max %g", name, avg, mx)
		}
		return math.Min(avg, 1000) / 1000, math.Min(mx, 1000) / 1000
	}
	x.busyAvg, x.busyMax = stat("busyTimeMsPerSecond", v.BusyTimeMsPerSecond)
	_, x.bpMax = stat("backPressuredTimeMsPerSecond", v.BackPressuredTimeMsPerSecond)
	x.in, _ = value("numRecordsInPerSecond", v.NumRecordsInPerSecond, true, 0, math.MaxFloat64)
	x.out, x.hasOut = value("numRecordsOutPerSecond", v.NumRecordsOutPerSecond, false, 0, math.MaxFloat64)

	if !x.isSource() {
		if v.Partitions != 0 || v.LagRecords != nil || v.ArrivalRatePerSecond != nil || len(v.PartitionRates) > 0 {
			add(ReasonInvalidSnapshot, "only sources have partitions, lag or arrival rates")
		}
	}
	if len(v.PartitionRates) > 0 && len(v.PartitionRates) != v.Partitions {
		add(ReasonInvalidSnapshot, "partitionRates lists %d partitions, partitions says %d", len(v.PartitionRates), v.Partitions)
	}
	if v.Partitions < 0 {
		add(ReasonInvalidSnapshot, "partitions must not be negative, got %d", v.Partitions)
	}
	x.lag, x.hasLag = value("lagRecords", v.LagRecords, v.Partitions > 0, 0, math.MaxFloat64)
	x.lagRate, x.hasLagRate = value("lagRatePerSecond", v.LagRatePerSecond, false, -math.MaxFloat64, math.MaxFloat64)
	x.arrival, x.hasArrival = value("arrivalRatePerSecond", v.ArrivalRatePerSecond, false, 0, math.MaxFloat64)
	if len(rs) == 0 {
		sp, r := newSpread(x, s)
		rs = append(rs, r...)
		x.spread = sp
	}
	return rs
}

func (x *vertex) isSource() bool { return len(x.ins) == 0 }

// readTaskManagers checks the TaskManager shape.
func (j *job) readTaskManagers() []Reason {
	tm := j.s.TaskManagers
	cpu := float64(tm.CPU)
	if !(cpu > 0) || math.IsInf(cpu, 0) {
		return []Reason{{Code: ReasonMissingMetrics, Message: fmt.Sprintf("taskManagers.cpu must be a positive number of cores, got %v", cpu)}}
	}
	if tm.Slots < 1 || tm.Replicas < 1 {
		return []Reason{{Code: ReasonMissingMetrics, Message: fmt.Sprintf("a running job needs taskManagers with slots ≥ 1 and replicas ≥ 1, got %d and %d", tm.Slots, tm.Replicas)}}
	}
	j.cpu, j.slots = cpu, tm.Slots
	return nil
}

// readCheckpoints judges checkpoint health: slow when a checkpoint takes more
// than the policy's share of the interval (or more than its timeout allows),
// failing when any failed within the window.
func (j *job) readCheckpoints(p *Policy) []Reason {
	c := j.s.Checkpoints
	if c == nil {
		return nil
	}
	for _, f := range []Float{c.IntervalMs, c.DurationMs, c.TimeoutMs, c.StateSizeBytes} {
		if v := float64(f); math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return []Reason{{Code: ReasonNonFiniteMetric, Message: fmt.Sprintf("checkpoint statistics must be finite and non-negative, got %v", v)}}
		}
	}
	if c.RecentFailures < 0 {
		return []Reason{{Code: ReasonInvalidSnapshot, Message: "checkpoints.recentFailures must not be negative"}}
	}
	j.ckptDuration = time.Duration(float64(c.DurationMs) * float64(time.Millisecond))
	interval := float64(c.IntervalMs)
	j.ckptSlow = interval > 0 && float64(c.DurationMs) > p.Checkpoints.MaxDurationRatio*interval
	if to := float64(c.TimeoutMs); to > 0 && float64(c.DurationMs) > 0.8*to {
		j.ckptSlow = true
	}
	j.ckptFailing = c.RecentFailures > 0
	return nil
}

// checkWindow refuses windows that are too small, too old, or that include
// the warm-up after the job's last (re)start.
func checkWindow(s *Snapshot, p *Policy, now time.Time) []Reason {
	var rs []Reason
	add := func(code ReasonCode, format string, a ...any) {
		rs = append(rs, Reason{Code: code, Message: fmt.Sprintf(format, a...)})
	}
	if s.WindowStart.IsZero() || s.WindowEnd.IsZero() || s.RunningSince.IsZero() {
		add(ReasonMissingMetrics, "windowStart, windowEnd and runningSince are required")
		return rs
	}
	span := s.WindowEnd.Sub(s.WindowStart)
	if span < 0 {
		add(ReasonInvalidSnapshot, "windowEnd %s is before windowStart %s", s.WindowEnd.Format(time.RFC3339), s.WindowStart.Format(time.RFC3339))
		return rs
	}
	if s.WindowEnd.After(now.Add(time.Minute)) {
		add(ReasonInvalidSnapshot, "windowEnd %s is in the future (now %s)", s.WindowEnd.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if s.Samples < p.MinSamples {
		add(ReasonTooFewSamples, "%d samples in the window, need %d", s.Samples, p.MinSamples)
	}
	// Samples are taken every polling interval, so a full window spans one
	// interval less than its length: accept 90 %.
	if need := p.MetricsWindow.Duration * 9 / 10; span < need {
		add(ReasonWindowTooShort, "the window covers %s, need %s of a %s window", span.Round(time.Second), need.Round(time.Second), p.MetricsWindow)
	}
	if age := now.Sub(s.WindowEnd); age > p.MaxSnapshotAge.Duration {
		add(ReasonStaleSnapshot, "the newest sample is %s old, more than %s", age.Round(time.Second), p.MaxSnapshotAge)
	}
	if warm := s.RunningSince.Add(p.WarmUp.Duration); s.WindowStart.Before(warm) {
		add(ReasonWarmingUp, "the window starts %s, before the warm-up after the job started running ends at %s", s.WindowStart.Format(time.RFC3339), warm.Format(time.RFC3339))
	}
	return rs
}

// spread says how a vertex's records are shared among its subtasks.
type spread interface {
	// share is the fraction of the vertex's records its busiest subtask
	// handles at parallelism q.
	share(q int) float64
}

// even: records are spread evenly (forward, rebalance, rescale inputs).
type even struct{}

func (even) share(q int) float64 { return 1 / float64(q) }

// keyGroups: a keyed vertex's subtasks own contiguous key-group ranges; with
// keys spread evenly over key groups the busiest subtask has the largest
// range, ceil(maxP/q) of maxP key groups.
type keyGroups struct{ maxP int }

func (k keyGroups) share(q int) float64 {
	return float64(assign.MaxKeyGroupsPerSubtask(k.maxP, q)) / float64(k.maxP)
}

// uniformPartitions: n partitions of unknown (assumed equal) rates. Both of
// Flink's assignment rules give counts that differ by at most one for a single
// topic, so the busiest reader has ceil(n/q) of them.
type uniformPartitions struct{ n int }

func (u uniformPartitions) share(q int) float64 {
	return float64((u.n+q-1)/q) / float64(u.n)
}

// weightedPartitions: partitions with measured arrival rates, assigned to
// readers by Flink's restore rule from the current owners (or afresh, for a
// stateless upgrade).
type weightedPartitions struct {
	// prefix[i] is the summed rate of the first i splits of the current
	// readers' lists, concatenated in reader order: the restore rule cuts
	// that list into contiguous chunks.
	prefix []float64
	// For a fresh assignment: each partition's number, its topic's start
	// hash ((topic.hashCode()·31) & 0x7FFFFFFF) and its rate.
	partition []int
	topicHash []int
	rate      []float64
	total     float64
	fresh     bool
	memo      map[int]float64
}

func (w *weightedPartitions) share(q int) float64 {
	if v, ok := w.memo[q]; ok {
		return v
	}
	busiest := 0.0
	if w.fresh {
		sums := make([]float64, q)
		for i, k := range w.partition {
			o := (w.topicHash[i]%q + k) % q // assign.KafkaSplitOwner
			sums[o] += w.rate[i]
			busiest = math.Max(busiest, sums[o])
		}
	} else {
		n := len(w.prefix) - 1
		base, extra, at := n/q, n%q, 0
		for i := 0; i < q && at < n; i++ {
			size := base
			if i < extra {
				size++
			}
			busiest = math.Max(busiest, w.prefix[at+size]-w.prefix[at])
			at += size
		}
	}
	v := busiest / w.total
	w.memo[q] = v
	return v
}

// newSpread picks how the vertex's work is spread: by partitions for a
// partitioned source, by key groups for a keyed vertex, evenly otherwise.
func newSpread(x *vertex, s *Snapshot) (spread, []Reason) {
	v := x.v
	switch {
	case x.isSource() && v.Partitions > 0:
		if len(v.PartitionRates) == 0 {
			return uniformPartitions{n: v.Partitions}, nil
		}
		return newWeightedPartitions(x, s.UpgradeMode == "stateless")
	case v.Keyed():
		return keyGroups{maxP: x.maxP}, nil
	default:
		return even{}, nil
	}
}

func newWeightedPartitions(x *vertex, fresh bool) (spread, []Reason) {
	v := x.v
	bad := func(format string, a ...any) (spread, []Reason) {
		return nil, []Reason{{Code: ReasonInvalidSnapshot, Vertex: v.ID, Message: fmt.Sprintf(format, a...)}}
	}
	if len(v.PartitionRates) != v.Partitions {
		return bad("partitionRates lists %d partitions, partitions says %d", len(v.PartitionRates), v.Partitions)
	}
	// Splits in the order the enumerator assigns them: by topic, then
	// partition; readers keep that order within their own lists.
	prs := append([]PartitionRate(nil), v.PartitionRates...)
	sort.Slice(prs, func(i, j int) bool {
		if prs[i].Topic != prs[j].Topic {
			return prs[i].Topic < prs[j].Topic
		}
		return prs[i].Partition < prs[j].Partition
	})
	w := &weightedPartitions{fresh: fresh, memo: map[int]float64{},
		partition: make([]int, len(prs)), topicHash: make([]int, len(prs)), rate: make([]float64, len(prs))}
	owned := true
	for i, pr := range prs {
		if i > 0 && pr.Topic == prs[i-1].Topic && pr.Partition == prs[i-1].Partition {
			return bad("partition %s-%d is listed twice", pr.Topic, pr.Partition)
		}
		r := float64(pr.ArrivalRatePerSecond)
		if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 || pr.Partition < 0 {
			return bad("partition %s-%d has arrival rate %v", pr.Topic, pr.Partition, r)
		}
		if pr.Subtask == nil {
			owned = false
		} else if *pr.Subtask < 0 || *pr.Subtask >= x.p {
			return bad("partition %s-%d is owned by subtask %d of %d", pr.Topic, pr.Partition, *pr.Subtask, x.p)
		}
		if i == 0 || pr.Topic != prs[i-1].Topic {
			w.topicHash[i] = assign.TopicHash(pr.Topic)
		} else {
			w.topicHash[i] = w.topicHash[i-1]
		}
		w.partition[i], w.rate[i] = pr.Partition, r
		w.total += r
	}
	if w.total == 0 {
		return uniformPartitions{n: v.Partitions}, nil
	}
	// The current owner of each split: as measured, or Flink's fresh
	// assignment at the current parallelism when unknown.
	owner := make([]int, len(prs))
	for i, pr := range prs {
		if owned {
			owner[i] = *pr.Subtask
		} else {
			owner[i] = (w.topicHash[i]%x.p + pr.Partition) % x.p
		}
	}
	byReader := make([][]int, x.p)
	for i, o := range owner {
		byReader[o] = append(byReader[o], i)
	}
	w.prefix = make([]float64, 1, len(prs)+1)
	for _, reader := range byReader {
		for _, i := range reader {
			w.prefix = append(w.prefix, w.prefix[len(w.prefix)-1]+w.rate[i])
		}
	}
	return w, nil
}
