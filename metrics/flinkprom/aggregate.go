package flinkprom

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/flinkscale/flinkscale/metrics"
)

// subtask is what one subtask (one attempt) reported.
type subtask struct {
	attempt int
	tm      string
	task    map[string]float64 // task-scope metrics
	// head is the head operator's (operator_id == task_id); named are the
	// operators named "Source:…" that are not the head, by operator_id,
	// one of which stands in for the head when no series has its id (see
	// headOp).
	head  *operator
	named map[string]*operator
	// lost names the families (familyKey) that did not parse in the
	// exposition this subtask was reported in, with that target: what
	// they would have said of it is unknown, not absent.
	lost map[string]string
}

// operator is what one operator of a subtask reported.
type operator struct {
	values map[string]float64
	// source: a source operator ("Source: …", or a Kafka reader: it
	// reports pendingRecords or partition offsets).
	source bool
	parts  map[partKey]*metrics.PartitionOwner
}

// headOp is the subtask's head operator: the one whose operator_id is the
// task_id or, when no series has that id, the only operator named
// "Source:…" (nil when there is neither).
func (s *subtask) headOp() *operator {
	if s.head != nil {
		return s.head
	}
	if len(s.named) == 1 {
		for _, op := range s.named {
			return op
		}
	}
	return nil
}

// operatorOf finds (or creates) the record of the operator of a sample.
func (s *subtask) operatorOf(l map[string]string) *operator {
	newOp := func() *operator {
		return &operator{values: map[string]float64{}, source: strings.HasPrefix(l[lOperatorName], "Source:")}
	}
	if l[lOperatorID] == l[lTaskID] {
		if s.head == nil {
			s.head = newOp()
		}
		return s.head
	}
	id := l[lOperatorID]
	if s.named == nil {
		s.named = map[string]*operator{}
	}
	if s.named[id] == nil {
		s.named[id] = newOp()
	}
	return s.named[id]
}

type partKey struct {
	topic     string
	partition int
}

type vertexAcc struct {
	id, name string
	subtasks map[int]*subtask
}

// aggregator accumulates the samples of the expositions of one scrape.
type aggregator struct {
	jobID string // only this job when set
	jobs  map[string]string
	order []string
	verts map[string]*vertexAcc
	jm    map[string]float64 // jobmanager_job metrics of the job
	jmSet bool
	// jmLost names the JobManager metrics whose family did not parse,
	// with the target.
	jmLost map[string]string
	// tmPartial: a TaskManager's exposition had a family the scraper
	// reads that did not parse, so some subtasks may be missing.
	tmPartial bool
	// dropped are the skipped families' reports (FlinkSample.Dropped),
	// bounded per target.
	dropped []string
	// slots are the task slots each JobManager target reported (see
	// jmSlots).
	slots []metrics.SlotsSample
}

func newAggregator(jobID string) *aggregator {
	return &aggregator{jobID: jobID, jobs: map[string]string{}, verts: map[string]*vertexAcc{}, jm: map[string]float64{}, jmLost: map[string]string{}}
}

// Scopes of the TaskManager families the scraper reads.
const (
	scopeTask     = "task"
	scopeOperator = "operator"
	scopeOffset   = "offset"
)

// tmFamily tells whether the scraper reads a TaskManager family, and as
// which scope and metric.
func tmFamily(name string) (scope, metric string, ok bool) {
	switch {
	case strings.HasPrefix(name, familyOffsets):
		metric = name[len(familyOffsets):]
		return scopeOffset, metric, metric == mCurrentOffset || metric == mCommitted
	case strings.HasPrefix(name, prefixOperator):
		metric = name[len(prefixOperator):]
		switch metric {
		case mRecordsIn, mRecordsOut, mRecordsInRate, mRecordsOutRate, mPending:
			return scopeOperator, metric, true
		}
	case strings.HasPrefix(name, prefixTask):
		metric = name[len(prefixTask):]
		switch metric {
		case mBusy, mBackPressured, mRecordsIn, mRecordsOut, mRecordsInRate, mRecordsOutRate:
			return scopeTask, metric, true
		}
	}
	return "", "", false
}

// jmMetrics are the JobManager's job metrics the scraper reads.
var jmMetrics = []string{mCheckpointDuration, mCheckpointSize, mCompleted, mFailed, mInProgress, mRestarts}

// familyKey names a TaskManager family in subtask.lost.
func familyKey(scope, metric string) string { return scope + "/" + metric }

// Bounds of FlinkSample.Dropped.
const (
	maxDroppedPerTarget = 5
	maxDropped          = 20
)

// noteSkipped reports an exposition's skipped families as Dropped entries.
func (a *aggregator) noteSkipped(where string, skipped []skippedFamily) {
	for i, s := range skipped {
		if i == maxDroppedPerTarget {
			a.dropped = append(a.dropped, fmt.Sprintf("%s: %d more metric families skipped", where, len(skipped)-i))
			return
		}
		if s.name == "" {
			a.dropped = append(a.dropped, fmt.Sprintf("%s: %s", where, s.reason))
		} else {
			a.dropped = append(a.dropped, fmt.Sprintf("%s: family %s skipped: %s", where, s.name, s.reason))
		}
	}
}

func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func valueOf(m *dto.Metric) (float64, bool) {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	}
	return 0, false
}

// job records a sample's job and reports whether it belongs to the job
// collected.
func (a *aggregator) job(l map[string]string) bool {
	id := l[lJobID]
	if id == "" || a.jobID != "" && id != a.jobID {
		return false
	}
	if _, ok := a.jobs[id]; !ok || a.jobs[id] == "" {
		a.jobs[id] = l[lJobName]
	}
	return true
}

// addJobManager takes the jobmanager_job gauges of the exposition of the
// target where.
func (a *aggregator) addJobManager(where string, e *exposition) {
	a.noteSkipped(where, e.skipped)
	for _, sk := range e.skipped {
		for _, name := range jmMetrics {
			if sk.name == prefixJMJob+name {
				a.jmLost[name] = where
			}
		}
	}
	if sl := jmSlots(e); sl != nil {
		a.slots = append(a.slots, *sl)
	}
	for _, name := range jmMetrics {
		mf := e.families[prefixJMJob+name]
		if mf == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labelsOf(m)
			if !a.job(l) {
				continue
			}
			if v, ok := valueOf(m); ok {
				a.jm[l[lJobID]+"\x00"+name] = v
				a.jmSet = true
			}
		}
	}
}

// jmSlots reads the resource manager's slot gauges of a JobManager's
// exposition, flink_jobmanager_taskSlotsTotal and
// flink_jobmanager_taskSlotsAvailable (jobmanager scope: no job label; the
// target is the job's cluster's JobManager). nil when either is absent,
// did not parse, is given more than once, or is not plausible
// (metrics.NewSlotsSample): unknown, never a gap.
func jmSlots(e *exposition) *metrics.SlotsSample {
	one := func(name string) (float64, bool) {
		mf := e.families[prefixJM+name]
		if mf == nil || len(mf.GetMetric()) != 1 {
			return 0, false
		}
		return valueOf(mf.GetMetric()[0])
	}
	total, okT := one(mSlotsTotal)
	available, okA := one(mSlotsAvailable)
	if !okT || !okA {
		return nil
	}
	return metrics.NewSlotsSample(total, available)
}

// subtaskOf finds (or creates) the record of the sample's subtask; nil when
// the sample is of another job, has no task labels, or is of an older
// attempt than one already seen.
func (a *aggregator) subtaskOf(l map[string]string) *subtask {
	if !a.job(l) {
		return nil
	}
	id := l[lTaskID]
	idx, err := strconv.Atoi(l[lSubtask])
	if id == "" || err != nil || idx < 0 {
		return nil
	}
	attempt, _ := strconv.Atoi(l[lAttempt])
	key := l[lJobID] + "\x00" + id
	v := a.verts[key]
	if v == nil {
		v = &vertexAcc{id: id, name: l[lTaskName], subtasks: map[int]*subtask{}}
		a.verts[key] = v
		a.order = append(a.order, key)
	}
	s := v.subtasks[idx]
	switch {
	case s == nil || attempt > s.attempt:
		s = &subtask{attempt: attempt, tm: l[lTMID], task: map[string]float64{}}
		v.subtasks[idx] = s
	case attempt < s.attempt:
		return nil // a stale attempt (the old task not yet unregistered)
	}
	return s
}

// addTaskManager takes the task and head-operator metrics of the
// exposition of the target where. A family the scraper reads that did not
// parse is lost to every subtask the exposition reports.
func (a *aggregator) addTaskManager(where string, e *exposition) {
	a.noteSkipped(where, e.skipped)
	seen := map[*subtask]bool{}
	for name, mf := range e.families {
		scope, metric, ok := tmFamily(name)
		if !ok {
			continue
		}
		for _, m := range mf.GetMetric() {
			val, ok := valueOf(m)
			if !ok {
				continue
			}
			l := labelsOf(m)
			if scope != scopeTask && l[lOperatorID] != l[lTaskID] && !strings.HasPrefix(l[lOperatorName], "Source:") {
				continue // a chained operator: not the vertex's input
			}
			s := a.subtaskOf(l)
			if s == nil {
				continue
			}
			seen[s] = true
			if scope == scopeTask {
				s.task[metric] = val
				continue
			}
			op := s.operatorOf(l)
			if scope == scopeOperator {
				op.values[metric] = val
				op.source = op.source || metric == mPending
				continue
			}
			p, err := strconv.Atoi(l[lPartition])
			if err != nil || l[lTopic] == "" {
				continue
			}
			op.source = true
			if op.parts == nil {
				op.parts = map[partKey]*metrics.PartitionOwner{}
			}
			k := partKey{l[lTopic], p}
			po := op.parts[k]
			if po == nil {
				idx, _ := strconv.Atoi(l[lSubtask])
				po = &metrics.PartitionOwner{Topic: k.topic, Partition: p, Subtask: idx, CurrentOffset: -1, CommittedOffset: -1}
				op.parts[k] = po
			}
			if off := toOffset(val); metric == mCurrentOffset {
				po.CurrentOffset = off
			} else {
				po.CommittedOffset = off
			}
		}
	}
	var lost []string
	for _, sk := range e.skipped {
		if scope, metric, ok := tmFamily(sk.name); ok {
			lost = append(lost, familyKey(scope, metric))
		}
	}
	if len(lost) == 0 {
		return
	}
	a.tmPartial = true
	for s := range seen {
		if s.lost == nil {
			s.lost = map[string]string{}
		}
		for _, k := range lost {
			s.lost[k] = where
		}
	}
}

// toOffset converts a gauge to an offset. NaN, infinities and negative
// values are unknown (-1): KafkaSourceReader reports -1 until it knows an
// offset, and Flink's offset sentinels are negative (the legacy consumer's
// "offset not set" is -915623761776, KafkaPartitionSplit's markers -1 to
// -3, "no stopping offset" Long.MIN_VALUE).
func toOffset(v float64) int64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > math.MaxInt64/2 {
		return -1
	}
	return int64(v)
}

// incomplete is the Missing entry of a vertex whose aggregates are over the
// subtasks reported, when not all of them may have: Merge settles it.
const incompleteWhat = "subtasks"

func incompleteEntry(id string, why string) string {
	return id + ": " + incompleteWhat + ": " + why
}

// sample builds the FlinkSample: failed lists the targets that could not be
// read (as Missing entries), tmFailed whether one of them was a
// TaskManager, jmScraped whether a JobManager exposition was read.
func (a *aggregator) sample(at time.Time, failed []string, tmFailed, jmScraped bool) (metrics.FlinkSample, error) {
	out := metrics.FlinkSample{At: at, Missing: append([]string(nil), failed...)}
	out.Dropped = append([]string(nil), a.dropped...)
	if len(out.Dropped) > maxDropped {
		more := len(out.Dropped) - (maxDropped - 1)
		out.Dropped = append(out.Dropped[:maxDropped-1], fmt.Sprintf("%d more entries not listed", more))
	}
	if len(a.jobs) > 1 {
		ids := make([]string, 0, len(a.jobs))
		for id := range a.jobs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return out, fmt.Errorf("flinkprom: the targets report %d jobs (%s); set the job id", len(ids), strings.Join(ids, ", "))
	}
	for id, name := range a.jobs {
		out.JobID, out.JobName = id, name
	}
	partial := ""
	switch {
	case tmFailed:
		partial = "a TaskManager could not be scraped"
	case a.tmPartial:
		partial = "a TaskManager's exposition had metric families that did not parse"
	}
	for _, key := range a.order {
		v := a.verts[key]
		vs, missing := aggregateVertex(v, partial)
		out.Vertices = append(out.Vertices, vs)
		out.Missing = append(out.Missing, missing...)
	}
	// Slots: the JobManagers' that report them, when they agree (a standby
	// JobManager's resource manager is not the leader's); else unknown.
	for i, sl := range a.slots {
		if sl != a.slots[0] {
			break
		}
		if i == len(a.slots)-1 {
			out.Slots = &sl
		}
	}
	jmFailed := false
	for _, f := range failed {
		jmFailed = jmFailed || strings.HasPrefix(f, string(JobManager)+" ")
	}
	switch {
	case !jmScraped && !jmFailed:
		out.Missing = append(out.Missing, "checkpoints: no JobManager target")
	case !jmScraped:
		// The JobManager's failure is already listed.
	case !a.jmSet && len(a.jmLost) == 0 || out.JobID == "":
		out.Missing = append(out.Missing, "checkpoints: the JobManager reports no job metrics")
	default:
		cp, missing := a.checkpoints(out.JobID)
		out.Checkpoints = cp
		out.Missing = append(out.Missing, missing...)
	}
	return out, nil
}

// checkpoints reads the job's checkpoint gauges. A gauge that is absent,
// not finite or (the last checkpoint's, -1 until one completed) negative
// is named in missing; its field is zero and must not be read (Merge does
// not).
func (a *aggregator) checkpoints(jobID string) (*metrics.CheckpointSample, []string) {
	var missing []string
	get := func(name string) (float64, bool) {
		v, ok := a.jm[jobID+"\x00"+name]
		if ok && finite(v) && v >= 0 {
			return v, true
		}
		switch where := a.jmLost[name]; {
		case where != "":
			missing = append(missing, fmt.Sprintf("checkpoints: %s: its metric family on %s did not parse", name, where))
		case ok && v < 0:
			missing = append(missing, fmt.Sprintf("checkpoints: %s: %v (none yet)", name, v))
		case ok:
			missing = append(missing, fmt.Sprintf("checkpoints: %s: %v", name, v))
		default:
			missing = append(missing, "checkpoints: "+name)
		}
		return 0, false
	}
	cp := &metrics.CheckpointSample{}
	completed, okC := get(mCompleted)
	failed, okF := get(mFailed)
	inProgress, okI := get(mInProgress)
	if !okC && !okF && !okI {
		return nil, missing
	}
	cp.Completed, cp.Failed, cp.InProgress = int(completed), int(failed), int(inProgress)
	if v, ok := get(mCheckpointDuration); ok {
		cp.LastDuration = time.Duration(v) * time.Millisecond
	}
	if v, ok := get(mCheckpointSize); ok {
		cp.LastStateSize = int64(v)
	}
	return cp, missing
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// outputFromSource decides, for a source vertex, whether its output count
// and rate are its source operator's rather than the task's: where the
// task's is absent, and for both when the task-level output is 0 while the
// source operator's is not (Flink does not count a FLIP-27 source's output
// at task level in some versions and chains); the counters decide when
// both sides have them, else the rates. In that case a value the source
// operator lacks is missing, not the task's 0. The arguments are sums
// over the subtasks, nil when absent.
func outputFromSource(taskCount, srcCount, taskRate, srcRate *float64) (count, rate bool) {
	zero := false
	switch {
	case taskCount != nil && srcCount != nil:
		zero = *taskCount == 0 && *srcCount > 0
	case taskRate != nil && srcRate != nil:
		zero = *taskRate == 0 && *srcRate > 0
	}
	return zero || taskCount == nil && srcCount != nil, zero || taskRate == nil && srcRate != nil
}

// zeroOutput is the Missing entry's note for an output the task reports as
// 0 and the source operator does not report.
const zeroOutput = "the task's is 0 while the source operator's output is not"

// aggregateVertex aggregates a vertex over its reported subtasks. A metric
// is set only when every reported subtask has a finite value for it.
// partial, when set, says why the reported subtasks may not be all.
func aggregateVertex(v *vertexAcc, partial string) (metrics.VertexSample, []string) {
	idx := make([]int, 0, len(v.subtasks))
	source := false
	for i, s := range v.subtasks {
		idx = append(idx, i)
		if h := s.headOp(); h != nil && h.source {
			source = true
		}
	}
	sort.Ints(idx)
	n := len(idx)
	vs := metrics.VertexSample{ID: v.id, Name: v.name, Parallelism: n}
	var missing []string
	if n > 0 && idx[n-1] != n-1 {
		missing = append(missing, incompleteEntry(v.id, fmt.Sprintf("%d reported, highest subtask_index %d", n, idx[n-1])))
	} else if partial != "" {
		missing = append(missing, incompleteEntry(v.id, fmt.Sprintf("%d reported; %s", n, partial)))
	}

	// A pick reads a metric of a subtask: its value, or whether it was
	// lost with a family that did not parse (and on which target).
	type pick func(*subtask) (x float64, ok bool, lostOn string)
	// collect returns the values of a metric of every reported subtask,
	// or (vals nil) the Missing entry that says why not.
	collect := func(metric string, get pick) ([]float64, string) {
		vals := make([]float64, 0, n)
		nan, lost, lostOn := 0, 0, ""
		for _, i := range idx {
			x, ok, on := get(v.subtasks[i])
			switch {
			case !ok && on != "":
				lost, lostOn = lost+1, on
			case !ok:
			case !finite(x):
				nan++
			default:
				vals = append(vals, x)
			}
		}
		var why string
		switch {
		case len(vals) == n && n > 0:
			return vals, ""
		case nan > 0:
			why = fmt.Sprintf("%s: %s: %d of %d subtasks not finite (NaN: not measured)", v.id, metric, nan, n)
		default:
			why = fmt.Sprintf("%s: %s: %d of %d subtasks reported", v.id, metric, len(vals), n)
		}
		if lost > 0 {
			why += fmt.Sprintf(" (%d in a metric family on %s that did not parse)", lost, lostOn)
		}
		return nil, why
	}
	task := func(m string) pick {
		return func(s *subtask) (float64, bool, string) {
			x, ok := s.task[m]
			return x, ok, s.lost[familyKey(scopeTask, m)]
		}
	}
	head := func(m string) pick {
		return func(s *subtask) (float64, bool, string) {
			if h := s.headOp(); h != nil {
				if x, ok := h.values[m]; ok {
					return x, true, ""
				}
			}
			return 0, false, s.lost[familyKey(scopeOperator, m)]
		}
	}
	// The task's input counters are its head operator's (Flink reuses
	// them), except for a FLIP-27 source, whose task-level input is the
	// (empty) network input: the head operator's are used, for every
	// subtask of the vertex once one reports them (or lost them with a
	// family that did not parse), so that a subtask without them is
	// missing rather than the task's 0.
	in := func(m string) pick {
		for _, s := range v.subtasks {
			if s.lost[familyKey(scopeOperator, m)] != "" {
				return head(m)
			}
			if h := s.headOp(); h != nil {
				if _, ok := h.values[m]; ok {
					return head(m)
				}
			}
		}
		return task(m)
	}
	agg := func(vals []float64) *metrics.Agg {
		sum, mx := 0.0, vals[0]
		for _, x := range vals {
			sum += x
			mx = max(mx, x)
		}
		return &metrics.Agg{Avg: sum / float64(len(vals)), Max: mx}
	}
	total := func(vals []float64) *float64 {
		if vals == nil {
			return nil
		}
		sum := 0.0
		for _, x := range vals {
			sum += x
		}
		return &sum
	}
	// set keeps a metric's aggregate, or its Missing entry.
	set := func(vals []float64, why string, f func([]float64)) {
		if why != "" {
			missing = append(missing, why)
			return
		}
		f(vals)
	}
	setSum := func(vals []float64, why string, dst **float64) {
		set(vals, why, func(vals []float64) { *dst = total(vals) })
	}
	vals, why := collect(mBusy, task(mBusy))
	set(vals, why, func(vals []float64) { vs.BusyTimeMsPerSecond = agg(vals) })
	vals, why = collect(mBackPressured, task(mBackPressured))
	set(vals, why, func(vals []float64) { vs.BackPressuredTimeMsPerSecond = agg(vals) })
	vals, why = collect(mRecordsInRate, in(mRecordsInRate))
	setSum(vals, why, &vs.NumRecordsInPerSecond)
	vals, why = collect(mRecordsIn, in(mRecordsIn))
	setSum(vals, why, &vs.NumRecordsIn)

	outC, whyC := collect(mRecordsOut, task(mRecordsOut))
	outR, whyR := collect(mRecordsOutRate, task(mRecordsOutRate))
	if source {
		srcC, srcWhyC := collect(mRecordsOut, head(mRecordsOut))
		srcR, srcWhyR := collect(mRecordsOutRate, head(mRecordsOutRate))
		useC, useR := outputFromSource(total(outC), total(srcC), total(outR), total(srcR))
		if useC {
			outC, whyC = srcC, srcWhyC
			if whyC != "" {
				whyC += " (" + zeroOutput + ")"
			}
		}
		if useR {
			outR, whyR = srcR, srcWhyR
			if whyR != "" {
				whyR += " (" + zeroOutput + ")"
			}
		}
	}
	setSum(outR, whyR, &vs.NumRecordsOutPerSecond)
	setSum(outC, whyC, &vs.NumRecordsOut)
	if !source {
		return vs, missing
	}
	// pendingRecords is registered lazily: absent until the readers
	// fetched; partly present is as missing as absent.
	vals, why = collect(mPending, head(mPending))
	setSum(vals, why, &vs.PendingRecords)
	// A subtask whose offset families both did not parse may own
	// partitions nobody knows of (each partition has both gauges, so one
	// family tells the owners).
	unknown, lostOn := 0, ""
	for _, i := range idx {
		s := v.subtasks[i]
		if on := s.lost[familyKey(scopeOffset, mCurrentOffset)]; on != "" && s.lost[familyKey(scopeOffset, mCommitted)] != "" {
			unknown, lostOn = unknown+1, on
			continue
		}
		if h := s.headOp(); h != nil {
			for _, p := range h.parts {
				vs.Partitions = append(vs.Partitions, *p)
			}
		}
	}
	if unknown > 0 {
		vs.Partitions = nil
		missing = append(missing, fmt.Sprintf("%s: %s: the KafkaSourceReader offsets of %d of %d subtasks are in metric families on %s that did not parse", v.id, mPartitions, unknown, n, lostOn))
		return vs, missing
	}
	sort.Slice(vs.Partitions, func(i, j int) bool {
		a, b := vs.Partitions[i], vs.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return vs, missing
}
