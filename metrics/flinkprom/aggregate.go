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
	head    map[string]float64 // the head operator's (operator_id == task_id)
	source  bool               // its head operator is a source ("Source: …" or a Kafka reader)
	parts   map[partKey]*metrics.PartitionOwner
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
}

func newAggregator(jobID string) *aggregator {
	return &aggregator{jobID: jobID, jobs: map[string]string{}, verts: map[string]*vertexAcc{}, jm: map[string]float64{}}
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

// addJobManager takes the jobmanager_job gauges of an exposition.
func (a *aggregator) addJobManager(mfs map[string]*dto.MetricFamily) {
	for _, name := range []string{mCheckpointDuration, mCheckpointSize, mCompleted, mFailed, mInProgress, mRestarts} {
		mf := mfs[prefixJMJob+name]
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
		s = &subtask{attempt: attempt, tm: l[lTMID], task: map[string]float64{}, head: map[string]float64{}}
		v.subtasks[idx] = s
	case attempt < s.attempt:
		return nil // a stale attempt (the old task not yet unregistered)
	}
	return s
}

// addTaskManager takes the task and head-operator metrics of an exposition.
func (a *aggregator) addTaskManager(mfs map[string]*dto.MetricFamily) {
	for name, mf := range mfs {
		var scope, metric string
		switch {
		case strings.HasPrefix(name, familyOffsets):
			scope, metric = "offset", name[len(familyOffsets):]
			if metric != mCurrentOffset && metric != mCommitted {
				continue
			}
		case strings.HasPrefix(name, prefixOperator):
			scope, metric = "operator", name[len(prefixOperator):]
			switch metric {
			case mRecordsIn, mRecordsOut, mRecordsInRate, mRecordsOutRate, mPending:
			default:
				continue
			}
		case strings.HasPrefix(name, prefixTask):
			scope, metric = "task", name[len(prefixTask):]
			switch metric {
			case mBusy, mBackPressured, mRecordsIn, mRecordsOut, mRecordsInRate, mRecordsOutRate:
			default:
				continue
			}
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			val, ok := valueOf(m)
			if !ok {
				continue
			}
			l := labelsOf(m)
			if scope != "task" && l[lOperatorID] != l[lTaskID] {
				continue // a chained operator: not the vertex's input
			}
			s := a.subtaskOf(l)
			if s == nil {
				continue
			}
			switch scope {
			case "task":
				s.task[metric] = val
			case "operator":
				s.head[metric] = val
				if strings.HasPrefix(l[lOperatorName], "Source:") || metric == mPending {
					s.source = true
				}
			case "offset":
				p, err := strconv.Atoi(l[lPartition])
				if err != nil || l[lTopic] == "" {
					continue
				}
				s.source = true
				if s.parts == nil {
					s.parts = map[partKey]*metrics.PartitionOwner{}
				}
				k := partKey{l[lTopic], p}
				po := s.parts[k]
				if po == nil {
					idx, _ := strconv.Atoi(l[lSubtask])
					po = &metrics.PartitionOwner{Topic: k.topic, Partition: p, Subtask: idx, CurrentOffset: -1, CommittedOffset: -1}
					s.parts[k] = po
				}
				if off := toOffset(val); metric == mCurrentOffset {
					po.CurrentOffset = off
				} else {
					po.CommittedOffset = off
				}
			}
		}
	}
}

// toOffset converts a gauge to an offset; NaN and infinities are unknown (-1).
func toOffset(v float64) int64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < -1 || v > math.MaxInt64/2 {
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
	for _, key := range a.order {
		v := a.verts[key]
		vs, missing := aggregateVertex(v, tmFailed)
		out.Vertices = append(out.Vertices, vs)
		out.Missing = append(out.Missing, missing...)
	}
	switch {
	case !jmScraped && len(failed) == 0:
		out.Missing = append(out.Missing, "checkpoints: no JobManager target")
	case !jmScraped:
		// The JobManager's failure is already listed.
	case !a.jmSet || out.JobID == "":
		out.Missing = append(out.Missing, "checkpoints: the JobManager reports no job metrics")
	default:
		cp, missing := a.checkpoints(out.JobID)
		out.Checkpoints = cp
		out.Missing = append(out.Missing, missing...)
	}
	return out, nil
}

func (a *aggregator) checkpoints(jobID string) (*metrics.CheckpointSample, []string) {
	get := func(name string) (float64, bool) {
		v, ok := a.jm[jobID+"\x00"+name]
		return v, ok && !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	var missing []string
	for _, n := range []string{mCompleted, mFailed, mInProgress} {
		if _, ok := get(n); !ok {
			missing = append(missing, "checkpoints: "+n)
		}
	}
	if len(missing) == 3 {
		return nil, missing
	}
	cp := &metrics.CheckpointSample{}
	if v, ok := get(mCompleted); ok {
		cp.Completed = int(v)
	}
	if v, ok := get(mFailed); ok {
		cp.Failed = int(v)
	}
	if v, ok := get(mInProgress); ok {
		cp.InProgress = int(v)
	}
	// -1 until a checkpoint completed.
	if v, ok := get(mCheckpointDuration); ok && v >= 0 {
		cp.LastDuration = time.Duration(v) * time.Millisecond
	} else {
		missing = append(missing, "checkpoints: "+mCheckpointDuration)
	}
	if v, ok := get(mCheckpointSize); ok && v >= 0 {
		cp.LastStateSize = int64(v)
	} else {
		missing = append(missing, "checkpoints: "+mCheckpointSize)
	}
	return cp, missing
}

// aggregateVertex aggregates a vertex over its reported subtasks. A metric
// is set only when every reported subtask has a finite value for it.
func aggregateVertex(v *vertexAcc, tmFailed bool) (metrics.VertexSample, []string) {
	idx := make([]int, 0, len(v.subtasks))
	source := false
	for i, s := range v.subtasks {
		idx = append(idx, i)
		source = source || s.source
	}
	sort.Ints(idx)
	n := len(idx)
	vs := metrics.VertexSample{ID: v.id, Name: v.name, Parallelism: n}
	var missing []string
	if n > 0 && idx[n-1] != n-1 {
		missing = append(missing, incompleteEntry(v.id, fmt.Sprintf("%d reported, highest subtask_index %d", n, idx[n-1])))
	} else if tmFailed {
		missing = append(missing, incompleteEntry(v.id, fmt.Sprintf("%d reported; a TaskManager could not be scraped", n)))
	}

	// collect returns the values of a metric of every reported subtask, or
	// why not.
	collect := func(metric string, pick func(*subtask) (float64, bool)) ([]float64, bool) {
		vals := make([]float64, 0, n)
		nan := 0
		for _, i := range idx {
			x, ok := pick(v.subtasks[i])
			if !ok {
				continue
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				nan++
				continue
			}
			vals = append(vals, x)
		}
		switch {
		case len(vals) == n && n > 0:
			return vals, true
		case nan > 0:
			missing = append(missing, fmt.Sprintf("%s: %s: %d of %d subtasks not finite (NaN: not measured)", v.id, metric, nan, n))
		default:
			missing = append(missing, fmt.Sprintf("%s: %s: %d of %d subtasks reported", v.id, metric, len(vals), n))
		}
		return nil, false
	}
	task := func(m string) func(*subtask) (float64, bool) {
		return func(s *subtask) (float64, bool) { x, ok := s.task[m]; return x, ok }
	}
	// The task's input counters are its head operator's (Flink reuses
	// them), except for a FLIP-27 source, whose task-level input is the
	// (empty) network input: prefer the head operator's.
	in := func(m string) func(*subtask) (float64, bool) {
		return func(s *subtask) (float64, bool) {
			if x, ok := s.head[m]; ok {
				return x, true
			}
			x, ok := s.task[m]
			return x, ok
		}
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
		sum := 0.0
		for _, x := range vals {
			sum += x
		}
		return &sum
	}
	if vals, ok := collect(mBusy, task(mBusy)); ok {
		vs.BusyTimeMsPerSecond = agg(vals)
	}
	if vals, ok := collect(mBackPressured, task(mBackPressured)); ok {
		vs.BackPressuredTimeMsPerSecond = agg(vals)
	}
	if vals, ok := collect(mRecordsInRate, in(mRecordsInRate)); ok {
		vs.NumRecordsInPerSecond = total(vals)
	}
	if vals, ok := collect(mRecordsOutRate, task(mRecordsOutRate)); ok {
		vs.NumRecordsOutPerSecond = total(vals)
	}
	if vals, ok := collect(mRecordsIn, in(mRecordsIn)); ok {
		vs.NumRecordsIn = total(vals)
	}
	if vals, ok := collect(mRecordsOut, task(mRecordsOut)); ok {
		vs.NumRecordsOut = total(vals)
	}
	if source {
		// pendingRecords is registered lazily: absent until the readers
		// fetched; partly present is as missing as absent.
		if vals, ok := collect(mPending, func(s *subtask) (float64, bool) { x, ok := s.head[mPending]; return x, ok }); ok {
			vs.PendingRecords = total(vals)
		}
		for _, i := range idx {
			for _, p := range v.subtasks[i].parts {
				vs.Partitions = append(vs.Partitions, *p)
			}
		}
		sort.Slice(vs.Partitions, func(i, j int) bool {
			a, b := vs.Partitions[i], vs.Partitions[j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
	}
	return vs, missing
}
