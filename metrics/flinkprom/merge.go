package flinkprom

import (
	"fmt"
	"strings"

	"github.com/flinkscale/flinkscale/metrics"
)

// MergeOptions tunes MergeWith.
type MergeOptions struct {
	// PreferPrometheus takes every metric value Prometheus has (for a
	// complete vertex) over REST's, instead of only filling REST's gaps.
	PreferPrometheus bool
}

// Merge combines a REST sample (metrics/flink) with a sample from Scraper
// or PromQL of the same job. It is MergeWith without options: REST's
// values win and Prometheus fills only what REST is missing.
func Merge(rest, prom metrics.FlinkSample) metrics.FlinkSample {
	return MergeWith(rest, prom, MergeOptions{})
}

// MergeWith combines a REST sample with a Prometheus one. The rule:
//
//   - Topology and job facts always come from REST: the vertex list and
//     order, Name, Parallelism, MaxParallelism, SlotSharingGroup, Inputs,
//     At, FlinkVersion, State, RunningSince, TaskManagers, and the
//     checkpoint Interval and Timeout. JobID and JobName come from REST,
//     or from Prometheus when REST has none.
//   - A Prometheus vertex is used only when it is complete: its reported
//     subtask count (the Parallelism of a sample from this package) equals
//     REST's Parallelism. Otherwise none of its values is used and Missing
//     gets "<id>: subtasks: prometheus reported k of n" when REST lacks
//     something of the vertex (a Missing entry, or a nil busy, back-pressure
//     or rate field) or PreferPrometheus is set; its other Prometheus
//     entries ("<id>: …") are dropped, and its REST entries kept.
//   - For a complete vertex, each metric field (BusyTimeMsPerSecond,
//     BackPressuredTimeMsPerSecond, NumRecordsIn/OutPerSecond,
//     NumRecordsIn/Out, PendingRecords, Partitions) is REST's when REST has
//     it (non-nil, non-empty), else Prometheus'; with PreferPrometheus,
//     Prometheus' when it has it, else REST's. When the value taken is
//     Prometheus', REST's Missing entries for that metric
//     ("<id>: <metric>…", the Flink metric name, e.g. busyTimeMsPerSecond)
//     are dropped; when it is REST's, Prometheus' entries for it are
//     dropped; when neither has it, both sides' entries are kept.
//   - Checkpoints: REST's when it has them, else Prometheus' with
//     Interval and Timeout left zero; with PreferPrometheus, Prometheus'
//     counters and last duration and size with REST's Interval and Timeout.
//     "checkpoints: …" entries follow the sample taken.
//   - Target failures ("jobmanager <url>: …", "taskmanager <url>: …") are
//     kept only when they cost something: a TaskManager's when a vertex is
//     incomplete, the JobManager's when the checkpoints are not REST's.
//   - Prometheus vertices REST does not list (an old attempt, another
//     deployment) are ignored. Other entries of both samples are kept.
func MergeWith(rest, prom metrics.FlinkSample, opt MergeOptions) metrics.FlinkSample {
	out := rest
	out.Vertices = make([]metrics.VertexSample, len(rest.Vertices))
	copy(out.Vertices, rest.Vertices)
	if out.JobID == "" {
		out.JobID = prom.JobID
	}
	if out.JobName == "" {
		out.JobName = prom.JobName
	}
	restMissing := newMissing(rest.Missing)
	promMissing := newMissing(prom.Missing)
	var extra []string

	byID := make(map[string]*metrics.VertexSample, len(prom.Vertices))
	for i := range prom.Vertices {
		byID[prom.Vertices[i].ID] = &prom.Vertices[i]
	}
	anyIncomplete := false
	for i := range out.Vertices {
		v := &out.Vertices[i]
		pv := byID[v.ID]
		promMissing.drop(v.ID+": "+incompleteWhat+":", "")
		if pv == nil || v.Parallelism <= 0 || pv.Parallelism != v.Parallelism {
			reported := 0
			if pv != nil {
				reported = pv.Parallelism
			}
			promMissing.drop(v.ID+": ", "")
			if opt.PreferPrometheus || restMissing.has(v.ID+": ") || v.BusyTimeMsPerSecond == nil ||
				v.BackPressuredTimeMsPerSecond == nil || v.NumRecordsInPerSecond == nil || v.NumRecordsOutPerSecond == nil {
				extra = append(extra, fmt.Sprintf("%s: %s: prometheus reported %d of %d", v.ID, incompleteWhat, reported, v.Parallelism))
				anyIncomplete = true
			}
			continue
		}
		mergeVertex(v, pv, opt.PreferPrometheus, restMissing, promMissing)
	}
	// Vertices REST does not know.
	for _, pv := range prom.Vertices {
		known := false
		for _, v := range out.Vertices {
			known = known || v.ID == pv.ID
		}
		if !known {
			promMissing.drop(pv.ID+": ", "")
		}
	}

	switch {
	case rest.Checkpoints != nil && opt.PreferPrometheus && prom.Checkpoints != nil:
		cp := *prom.Checkpoints
		cp.Interval, cp.Timeout = rest.Checkpoints.Interval, rest.Checkpoints.Timeout
		out.Checkpoints = &cp
		restMissing.drop("checkpoints:", "")
		promMissing.drop(string(JobManager)+" ", "")
	case rest.Checkpoints != nil:
		promMissing.drop("checkpoints:", "")
		promMissing.drop(string(JobManager)+" ", "")
	case prom.Checkpoints != nil:
		cp := *prom.Checkpoints
		out.Checkpoints = &cp
		restMissing.drop("checkpoints:", "")
	}
	if !anyIncomplete {
		promMissing.drop(string(TaskManager)+" ", "")
	}

	out.Missing = nil
	seen := map[string]bool{}
	for _, list := range [][]string{restMissing.kept(), promMissing.kept(), extra} {
		for _, m := range list {
			if !seen[m] {
				seen[m] = true
				out.Missing = append(out.Missing, m)
			}
		}
	}
	return out
}

// mergeVertex fills v (REST's) from pv (Prometheus', complete).
func mergeVertex(v, pv *metrics.VertexSample, preferProm bool, restMissing, promMissing *missing) {
	// take decides a field: whether Prometheus' value is used, and drops
	// the Missing entries of the other side.
	take := func(metric string, restHas, promHas bool) bool {
		useProm := promHas && (preferProm || !restHas)
		switch {
		case useProm:
			restMissing.drop(v.ID+": "+metric, metric)
		case restHas:
			promMissing.drop(v.ID+": "+metric, metric)
		}
		return useProm
	}
	if take(mBusy, v.BusyTimeMsPerSecond != nil, pv.BusyTimeMsPerSecond != nil) {
		v.BusyTimeMsPerSecond = pv.BusyTimeMsPerSecond
	}
	if take(mBackPressured, v.BackPressuredTimeMsPerSecond != nil, pv.BackPressuredTimeMsPerSecond != nil) {
		v.BackPressuredTimeMsPerSecond = pv.BackPressuredTimeMsPerSecond
	}
	if take(mRecordsInRate, v.NumRecordsInPerSecond != nil, pv.NumRecordsInPerSecond != nil) {
		v.NumRecordsInPerSecond = pv.NumRecordsInPerSecond
	}
	if take(mRecordsOutRate, v.NumRecordsOutPerSecond != nil, pv.NumRecordsOutPerSecond != nil) {
		v.NumRecordsOutPerSecond = pv.NumRecordsOutPerSecond
	}
	if take(mRecordsIn, v.NumRecordsIn != nil, pv.NumRecordsIn != nil) {
		v.NumRecordsIn = pv.NumRecordsIn
	}
	if take(mRecordsOut, v.NumRecordsOut != nil, pv.NumRecordsOut != nil) {
		v.NumRecordsOut = pv.NumRecordsOut
	}
	if take(mPending, v.PendingRecords != nil, pv.PendingRecords != nil) {
		v.PendingRecords = pv.PendingRecords
	}
	if take(mPartitions, len(v.Partitions) > 0, len(pv.Partitions) > 0) {
		v.Partitions = append([]metrics.PartitionOwner(nil), pv.Partitions...)
	}
}

// missing is a Missing list with entries dropped by prefix.
type missing struct {
	entries []string
	dropped []bool
}

func newMissing(entries []string) *missing {
	return &missing{entries: entries, dropped: make([]bool, len(entries))}
}

// drop removes the entries starting with prefix. With a metric name, the
// prefix must be followed by the end, ':' or ' ' (so that
// "numRecordsIn" does not drop "numRecordsInPerSecond").
func (m *missing) drop(prefix, metric string) {
	for i, e := range m.entries {
		if !strings.HasPrefix(e, prefix) {
			continue
		}
		if metric != "" {
			rest := e[len(prefix):]
			if rest != "" && rest[0] != ':' && rest[0] != ' ' {
				continue
			}
		}
		m.dropped[i] = true
	}
}

func (m *missing) has(prefix string) bool {
	for i, e := range m.entries {
		if !m.dropped[i] && strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func (m *missing) kept() []string {
	var out []string
	for i, e := range m.entries {
		if !m.dropped[i] {
			out = append(out, e)
		}
	}
	return out
}
