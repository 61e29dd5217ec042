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
//     order, Name, Parallelism, MaxParallelism, SlotSharingGroup (and
//     SlotSharingUnknown), Inputs, At, FlinkVersion, State, RunningSince,
//     TaskManagers, and the checkpoint Interval and Timeout. JobID and
//     JobName come from REST, or from Prometheus when REST has none; so do
//     the cluster's Slots (REST's /overview is live, the reporter's gauges
//     as old as a scrape), whatever PreferPrometheus says.
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
//   - A value one side lacks never replaces the other's with zero: the
//     vertex fields go by nil, and the partitions' negative offsets
//     (Flink's -1 and sentinels such as -915623761776, passed through by
//     REST) are -1, unknown, whichever side they come from.
//   - Checkpoints, field by field (Completed, Failed, InProgress,
//     LastDuration, LastStateSize): REST's when it has the field, else
//     Prometheus'; with PreferPrometheus, Prometheus' when it has it, else
//     REST's. Prometheus lacks a field its sample names in Missing
//     ("checkpoints: <gauge>…", e.g. lastCheckpointDuration, -1 until a
//     checkpoint completed); REST lacks them all without statistics, and
//     the last duration and size when it says "checkpoints: lastDuration".
//     Interval and Timeout are REST's (zero without REST statistics).
//     "checkpoints: …" entries are dropped for fields taken from the other
//     side; when REST has statistics Prometheus' other checkpoint entries
//     go, and when it has none but Prometheus' stand in, REST's go except
//     "checkpoints: interval…".
//   - Target failures ("jobmanager <url>: …", "taskmanager <url>: …") are
//     kept only when they cost something: a TaskManager's when a vertex is
//     incomplete, the JobManager's when the checkpoints are not REST's.
//   - Prometheus vertices REST does not list (an old attempt, another
//     deployment) are ignored. Other entries of both samples are kept.
//   - Dropped is both samples' (the families the scraper skipped).
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
	if out.Slots == nil {
		out.Slots = prom.Slots
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
		v.Partitions = knownOffsets(v.Partitions)
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

	out.Checkpoints = mergeCheckpoints(rest.Checkpoints, prom.Checkpoints, opt.PreferPrometheus, restMissing, promMissing)
	if !anyIncomplete {
		promMissing.drop(string(TaskManager)+" ", "")
	}

	out.Missing = union(restMissing.kept(), promMissing.kept(), extra)
	out.Dropped = union(rest.Dropped, prom.Dropped)
	return out
}

// union concatenates lists without repeating an entry.
func union(lists ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, list := range lists {
		for _, m := range list {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// restLastCheckpoint is how metrics/flink names the missing last completed
// checkpoint ("checkpoints: lastDuration: no completed checkpoint yet"),
// which leaves both LastDuration and LastStateSize unknown.
const restLastCheckpoint = "lastDuration"

// mergeCheckpoints merges the checkpoint statistics field by field, so
// that a field one side lacks never replaces the other's with zero. A
// Prometheus sample (this package's) names each gauge it lacks in Missing
// ("checkpoints: <gauge>…", its field then zero); REST has all counters
// when it has statistics, and the last checkpoint's duration and size
// unless it says "checkpoints: lastDuration". Interval and Timeout are
// REST's only.
func mergeCheckpoints(rest, prom *metrics.CheckpointSample, preferProm bool, restMissing, promMissing *missing) *metrics.CheckpointSample {
	if rest == nil && prom == nil {
		return nil
	}
	var out metrics.CheckpointSample
	if rest != nil {
		out = *rest
	}
	restLast := rest != nil && !restMissing.hasMetric("checkpoints: "+restLastCheckpoint)
	fields := []struct {
		name    string // the Prometheus sample's gauge
		restHas bool
		take    func()
	}{
		{mCompleted, rest != nil, func() { out.Completed = prom.Completed }},
		{mFailed, rest != nil, func() { out.Failed = prom.Failed }},
		{mInProgress, rest != nil, func() { out.InProgress = prom.InProgress }},
		{mCheckpointDuration, restLast, func() { out.LastDuration = prom.LastDuration }},
		{mCheckpointSize, restLast, func() { out.LastStateSize = prom.LastStateSize }},
	}
	usedProm, restLacks := false, map[string]bool{}
	for _, f := range fields {
		promHas := prom != nil && !promMissing.hasMetric("checkpoints: "+f.name)
		switch {
		case promHas && (preferProm || !f.restHas):
			f.take()
			usedProm = true
			if f.name == mCheckpointDuration {
				restMissing.drop("checkpoints: "+restLastCheckpoint, restLastCheckpoint)
			}
		case f.restHas:
			promMissing.drop("checkpoints: "+f.name, f.name)
		default:
			restLacks[f.name] = true
		}
	}
	if rest != nil {
		// Prometheus' other checkpoint gaps ("checkpoints: no JobManager
		// target", a failed JobManager target) cost nothing.
		promMissing.dropIf(func(e string) bool {
			if what, ok := strings.CutPrefix(e, "checkpoints: "); ok {
				name, _, _ := strings.Cut(what, ":")
				return !restLacks[name]
			}
			return strings.HasPrefix(e, string(JobManager)+" ")
		})
		return &out
	}
	if !usedProm {
		return nil
	}
	// REST's statistics failed and Prometheus' stand in: REST's error
	// costs nothing, but the interval and timeout (REST's only) stay
	// unknown when REST says so.
	restMissing.dropIf(func(e string) bool {
		return strings.HasPrefix(e, "checkpoints: ") && !strings.HasPrefix(e, "checkpoints: interval")
	})
	return &out
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
		v.Partitions = knownOffsets(append([]metrics.PartitionOwner(nil), pv.Partitions...))
	}
}

// knownOffsets returns the partitions with every negative offset as -1
// (unknown): REST passes Flink's gauges through, and before the first
// fetch or commit they are -1 or a negative sentinel (the legacy
// consumer's -915623761776 for "not set"), never an offset. ps is not
// modified; a copy is made when an offset changes.
func knownOffsets(ps []metrics.PartitionOwner) []metrics.PartitionOwner {
	copied := false
	for i, p := range ps {
		if p.CurrentOffset >= -1 && p.CommittedOffset >= -1 {
			continue
		}
		if !copied {
			ps, copied = append([]metrics.PartitionOwner(nil), ps...), true
		}
		ps[i].CurrentOffset, ps[i].CommittedOffset = max(p.CurrentOffset, -1), max(p.CommittedOffset, -1)
	}
	return ps
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

// dropIf removes the entries drop is true of.
func (m *missing) dropIf(drop func(string) bool) {
	for i, e := range m.entries {
		if drop(e) {
			m.dropped[i] = true
		}
	}
}

// hasMetric tells whether an entry kept is prefix followed by its end, ':'
// or ' ' (the rule of drop with a metric name).
func (m *missing) hasMetric(prefix string) bool {
	for i, e := range m.entries {
		if m.dropped[i] || !strings.HasPrefix(e, prefix) {
			continue
		}
		if rest := e[len(prefix):]; rest == "" || rest[0] == ':' || rest[0] == ' ' {
			return true
		}
	}
	return false
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
