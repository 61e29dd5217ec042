package metrics

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"

	"github.com/flinkscale/flinkscale/scaling"
)

// Window keeps one job's samples over the metrics window and assembles
// snapshots from them. It is not safe for concurrent use: one reconcile owns
// it at a time.
type Window struct {
	length time.Duration
	flink  []FlinkSample
	// packed[i] holds the vertices of flink[i] in compact form for every
	// sample but the newest, whose Vertices the window keeps as given
	// (nil for it, and for every sample when keepWhole); heads are those
	// vertices' identities, which the samples of one attempt share.
	packed [][]packedVertex
	heads  []vertexHead
	kafka  []KafkaSample
	// resets counts how often a restart emptied the window.
	resets int
	// brokersUnavailable: see SetBrokersUnavailable.
	brokersUnavailable bool
	// keepWhole keeps every sample as added (tests compare compact).
	keepWhole bool
}

// NewWindow keeps samples for the given length (the policy's metricsWindow).
func NewWindow(length time.Duration) *Window { return &Window{length: length} }

// Resets is how many times a job restart emptied the window.
func (w *Window) Resets() int { return w.resets }

// AddFlink adds a Flink sample. A new job id or a new RUNNING timestamp (a
// restart, a failover, a rescale) empties the window first: samples from
// another attempt describe another job. Samples older than the window are
// dropped. The window reads the sample, never modifies what it points to.
func (w *Window) AddFlink(s FlinkSample) {
	if n := len(w.flink); n > 0 {
		last := w.flink[n-1]
		if last.JobID != s.JobID || !last.RunningSince.Equal(s.RunningSince) {
			w.flink, w.packed, w.heads, w.kafka = nil, nil, nil, nil
			w.resets++
		}
	}
	if n := len(w.flink); n > 0 && !w.keepWhole {
		w.compact(&w.flink[n-1], &s)
	}
	w.flink = append(w.flink, s)
	w.packed = append(w.packed, nil)
	w.trim(s.At)
}

// compact packs old, the newest sample so far, now that newest is about to
// be added: its vertices become packedVertex values, and it drops what the
// window reads of the newest sample alone (the partition owners, what was
// missing or dropped). newest shares old's strings and, where they are
// equal, its checkpoint statistics and TaskManagers (a collector that
// reuses what it read hands out copies). A job's window keeps a sample per
// poll (11 in 5 minutes at 30 s); at 1,000 jobs their vertices were a
// quarter of the controller's live heap (BenchmarkWindowRetained).
func (w *Window) compact(old, newest *FlinkSample) {
	share(&newest.JobName, old.JobName)
	share(&newest.FlinkVersion, old.FlinkVersion)
	share(&newest.StateBackend, old.StateBackend)
	if a, b := old.Checkpoints, newest.Checkpoints; a != nil && b != nil && *a == *b {
		newest.Checkpoints = a
	}
	if a, b := old.TaskManagers, newest.TaskManagers; a != nil && b != nil && reflect.DeepEqual(*a, *b) {
		newest.TaskManagers = a
	}
	w.packed[len(w.packed)-1] = w.pack(old.Vertices)
	old.Vertices, old.Missing, old.Dropped = nil, nil, nil
}

// share makes *s the string t (the same bytes) when they are equal.
func share(s *string, t string) {
	if *s == t {
		*s = t
	}
}

// packedVertex is a vertex of an older sample: its identity an index into
// the window's heads, its values without pointers (has says which are
// set). It is 80 bytes where a VertexSample and its values are some 240 in
// eight allocations, and the garbage collector need not scan it.
type packedVertex struct {
	head                int32
	has                 uint8
	busy, backPressured Agg
	inRate, outRate     float64
	in, out, pending    float64
}

// The bits of packedVertex.has.
const (
	hasBusy uint8 = 1 << iota
	hasBackPressured
	hasInRate
	hasOutRate
	hasIn
	hasOut
	hasPending
)

// vertexHead is a vertex's identity: the fields of a VertexSample that
// the samples of one attempt share (88 bytes of its 168).
type vertexHead struct {
	ID, Name                    string
	Parallelism, MaxParallelism int
	SlotSharingGroup            string
	Inputs                      []scaling.Input
}

// pack is vs in packed form, their identities added to the window's heads.
func (w *Window) pack(vs []VertexSample) []packedVertex {
	if len(w.heads) > 2*len(vs)+16 {
		w.reindexHeads()
	}
	if w.heads == nil {
		w.heads = make([]vertexHead, 0, len(vs))
	}
	out := make([]packedVertex, len(vs))
	for i := range vs {
		v, p := &vs[i], &out[i]
		p.head = w.head(v)
		put(v.BusyTimeMsPerSecond, &p.busy, &p.has, hasBusy)
		put(v.BackPressuredTimeMsPerSecond, &p.backPressured, &p.has, hasBackPressured)
		put(v.NumRecordsInPerSecond, &p.inRate, &p.has, hasInRate)
		put(v.NumRecordsOutPerSecond, &p.outRate, &p.has, hasOutRate)
		put(v.NumRecordsIn, &p.in, &p.has, hasIn)
		put(v.NumRecordsOut, &p.out, &p.has, hasOut)
		put(v.PendingRecords, &p.pending, &p.has, hasPending)
	}
	return out
}

// put stores *src in *dst and sets bit in *has, when src is set: the
// inverse of ifSet.
func put[T any](src, dst *T, has *uint8, bit uint8) {
	if src != nil {
		*dst, *has = *src, *has|bit
	}
}

// head is the index of v's identity (id, name, parallelism, slot-sharing
// group, inputs) in the window's heads, added if new.
func (w *Window) head(v *VertexSample) int32 {
	for i := range w.heads {
		h := &w.heads[i]
		if h.ID == v.ID && h.Name == v.Name && h.Parallelism == v.Parallelism && h.MaxParallelism == v.MaxParallelism &&
			h.SlotSharingGroup == v.SlotSharingGroup && slices.Equal(h.Inputs, v.Inputs) {
			return int32(i)
		}
	}
	w.heads = append(w.heads, vertexHead{ID: v.ID, Name: v.Name, Parallelism: v.Parallelism,
		MaxParallelism: v.MaxParallelism, SlotSharingGroup: v.SlotSharingGroup, Inputs: v.Inputs})
	return int32(len(w.heads) - 1)
}

// reindexHeads drops the heads no packed sample names any more. The
// samples of one attempt share theirs, so the heads grow only when a
// collector reports one vertex differently from poll to poll.
func (w *Window) reindexHeads() {
	idx := make([]int32, len(w.heads))
	for i := range idx {
		idx[i] = -1
	}
	var heads []vertexHead
	for _, ps := range w.packed {
		for j := range ps {
			p := &ps[j]
			if idx[p.head] < 0 {
				idx[p.head] = int32(len(heads))
				heads = append(heads, w.heads[p.head])
			}
			p.head = idx[p.head]
		}
	}
	w.heads = heads
}

// values are p's values at t, pointing into p.
func (p *packedVertex) values(t time.Time) vertexAt {
	return vertexAt{at: t,
		busy: ifSet(p.has, hasBusy, &p.busy), backPressured: ifSet(p.has, hasBackPressured, &p.backPressured),
		inRate: ifSet(p.has, hasInRate, &p.inRate), outRate: ifSet(p.has, hasOutRate, &p.outRate),
		in: ifSet(p.has, hasIn, &p.in), out: ifSet(p.has, hasOut, &p.out), pending: ifSet(p.has, hasPending, &p.pending),
	}
}

// ifSet is v when has has bit, else nil.
func ifSet[T any](has, bit uint8, v *T) *T {
	if has&bit == 0 {
		return nil
	}
	return v
}

// unpack is p as a VertexSample whose values point into p (read, never
// modified). Its partition owners are gone: the window reads the newest
// sample's alone.
func (w *Window) unpack(p *packedVertex) VertexSample {
	h, x := &w.heads[p.head], p.values(time.Time{})
	v := VertexSample{ID: h.ID, Name: h.Name, Parallelism: h.Parallelism, MaxParallelism: h.MaxParallelism,
		SlotSharingGroup: h.SlotSharingGroup, Inputs: h.Inputs}
	v.BusyTimeMsPerSecond, v.BackPressuredTimeMsPerSecond = x.busy, x.backPressured
	v.NumRecordsInPerSecond, v.NumRecordsOutPerSecond = x.inRate, x.outRate
	v.NumRecordsIn, v.NumRecordsOut, v.PendingRecords = x.in, x.out, x.pending
	return v
}

// vertices is the vertices of the window's i-th Flink sample: as given for
// the newest, unpacked (into a new slice) for the older ones.
func (w *Window) vertices(i int) []VertexSample {
	ps := w.packed[i]
	if ps == nil {
		return w.flink[i].Vertices
	}
	out := make([]VertexSample, len(ps))
	for j := range ps {
		out[j] = w.unpack(&ps[j])
	}
	return out
}

// AddKafka adds a brokers' sample. As AddFlink's, it shares its topic
// names with the previous sample's (a copy of its partitions, never the
// caller's), whose missing list the window no longer reads.
func (w *Window) AddKafka(s KafkaSample) {
	if n := len(w.kafka); n > 0 && !w.keepWhole {
		old := &w.kafka[n-1]
		s.Partitions = slices.Clone(s.Partitions)
		for i := range s.Partitions {
			if i < len(old.Partitions) {
				share(&s.Partitions[i].Topic, old.Partitions[i].Topic)
			}
		}
		share(&s.Group, old.Group)
		old.Missing = nil
	}
	w.kafka = append(w.kafka, s)
	w.trim(s.At)
}

// DropKafka forgets the brokers' samples: when no trigger's brokers answer,
// the lag and arrival rates of the samples before the outage describe
// another moment and must not be mixed with Flink's view of now. Until the
// next AddKafka the window is Flink's alone, as without a Kafka trigger:
// sources' lag is Flink's pendingRecords, their arrival rates unknown (the
// model falls back to the records read), and nothing about the brokers is
// missing.
func (w *Window) DropKafka() { w.kafka = nil }

// SetBrokersUnavailable records whether the brokers' view of the lag is
// unavailable (every trigger unreachable, or the group without committed
// offsets) and reports whether that changed: the controller announces an
// outage once. The mark survives restarts of the job; AddKafka leaves it.
func (w *Window) SetBrokersUnavailable(on bool) (changed bool) {
	changed = w.brokersUnavailable != on
	w.brokersUnavailable = on
	return changed
}

// BrokersUnavailable is the mark SetBrokersUnavailable set.
func (w *Window) BrokersUnavailable() bool { return w.brokersUnavailable }

// KafkaSamples is how many brokers' samples the window holds.
func (w *Window) KafkaSamples() int { return len(w.kafka) }

// trim drops the samples the window no longer needs: all but the newest
// one at or before the window's start, so that the samples span the whole
// window (with samples every polling interval, keeping only those inside
// it would span as little as the window minus an interval, and a window
// that must be 90 % covered could stay too short forever).
func (w *Window) trim(now time.Time) {
	cut := now.Add(-w.length)
	i := 0
	for i < len(w.flink)-1 && !w.flink[i+1].At.After(cut) {
		i++
	}
	w.flink, w.packed = dropFront(w.flink, i), dropFront(w.packed, i)
	k := 0
	for k < len(w.kafka)-1 && !w.kafka[k+1].At.After(cut) {
		k++
	}
	w.kafka = dropFront(w.kafka, k)
}

// dropFront is s without its first i elements, moved down in place and
// the vacated tail zeroed. Reslicing (s[i:]) would leave the dropped
// samples, and what they point to, in the array until the next append
// outgrew it, and each outgrowing allocates twice the window: a sliding
// window of 11 samples kept arrays of 16 to 32 (a FlinkSample is 240
// bytes).
func dropFront[T any](s []T, i int) []T {
	if i == 0 {
		return s
	}
	n := copy(s, s[i:])
	clear(s[n:])
	return s[:n]
}

// Snapshot assembles the model's snapshot from the window. A metric that no
// sample holds stays absent (the model holds with MissingMetrics), a NaN
// stays NaN, and every gap is listed in the returned missing list with why.
func (w *Window) Snapshot() (scaling.Snapshot, []string) {
	var missing []string
	miss := func(format string, a ...any) { missing = append(missing, fmt.Sprintf(format, a...)) }
	if len(w.flink) == 0 {
		return scaling.Snapshot{Version: scaling.SnapshotVersion}, []string{"no Flink sample in the window"}
	}
	first, last := w.flink[0], w.flink[len(w.flink)-1]
	s := scaling.Snapshot{
		Version: scaling.SnapshotVersion, JobID: last.JobID, JobName: last.JobName, JobState: last.State,
		RunningSince: last.RunningSince, WindowStart: first.At, WindowEnd: last.At, Samples: len(w.flink),
		SlotSharingUnknown: last.SlotSharingUnknown,
		FlinkVersion:       FlinkMinorVersion(last.FlinkVersion), StateBackend: last.StateBackend,
	}
	if n := len(w.kafka); n > 0 {
		// Lag and arrival rates from brokers' samples much older than the
		// job's describe another moment: say so.
		if age := last.At.Sub(w.kafka[n-1].At); age > w.length/2 {
			miss("kafka: the newest brokers' sample is %s older than the newest Flink sample", age.Round(time.Second))
		}
		for _, m := range w.kafka[n-1].Missing {
			miss("kafka: %s", m)
		}
		switch st := w.kafka[n-1].GroupState; st {
		case "PreparingRebalance", "CompletingRebalance":
			// Committed offsets are the last ones committed: the lag
			// may be stale until the group settles.
			miss("kafka: group %s is in %s; its committed offsets may be stale", w.kafka[n-1].Group, st)
		}
	}
	kafka := w.kafkaParts()
	assigned := w.sourceTopics(last, kafka)
	// The sources whose lag the brokers' committed offsets gave: what the
	// Flink collectors say of their pendingRecords (not registered, partly
	// reported) costs nothing.
	var pendingUnused []string
	for _, v := range last.Vertices {
		sv := scaling.Vertex{
			ID: v.ID, Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: v.MaxParallelism,
			SlotSharingGroup: v.SlotSharingGroup, Inputs: v.Inputs,
		}
		vs := w.vertexSamples(v.ID)
		sv.BusyTimeMsPerSecond = agg(vs, func(x *vertexAt) *Agg { return x.busy })
		sv.BackPressuredTimeMsPerSecond = agg(vs, func(x *vertexAt) *Agg { return x.backPressured })
		sv.NumRecordsInPerSecond = rate(vs, func(x *vertexAt) *float64 { return x.in }, func(x *vertexAt) *float64 { return x.inRate })
		sv.NumRecordsOutPerSecond = rate(vs, func(x *vertexAt) *float64 { return x.out }, func(x *vertexAt) *float64 { return x.outRate })
		for name, ok := range map[string]bool{"busyTimeMsPerSecond": sv.BusyTimeMsPerSecond != nil,
			"backPressuredTimeMsPerSecond": sv.BackPressuredTimeMsPerSecond != nil, "numRecordsInPerSecond": sv.NumRecordsInPerSecond != nil} {
			if !ok {
				miss("%s: %s in no sample of the window", v.ID, name)
			}
		}
		if len(v.Inputs) == 0 {
			w.source(&sv, v, assigned[v.ID], kafka, miss)
			if sv.LagSource == scaling.LagFromCommittedOffsets {
				pendingUnused = append(pendingUnused, v.ID)
			}
		}
		s.Vertices = append(s.Vertices, sv)
	}
	for _, m := range last.Missing {
		if !aboutPending(m, pendingUnused) {
			miss("flink: %s", m)
		}
	}
	if c := last.Checkpoints; c != nil {
		s.Checkpoints = &scaling.Checkpoints{
			IntervalMs: scaling.Float(c.Interval.Milliseconds()), TimeoutMs: scaling.Float(c.Timeout.Milliseconds()),
			DurationMs: scaling.Float(w.meanCheckpointMs()), StateSizeBytes: scaling.Float(c.LastStateSize),
		}
		if f := first.Checkpoints; f != nil && c.Failed >= f.Failed {
			s.Checkpoints.RecentFailures = c.Failed - f.Failed
		}
	} else {
		miss("checkpoint statistics: not collected")
	}
	if tm := last.TaskManagers; tm != nil {
		s.TaskManagers = scaling.TaskManagers{CPU: scaling.Float(tm.CPU), Slots: tm.Slots, Replicas: tm.Replicas}
		s.TaskManagers.Memory = w.memory()
	} else {
		miss("TaskManagers: not collected")
	}
	// The slots Flink reports now: the newest sample's, else unknown (0),
	// never a gap.
	if sl := last.Slots; sl != nil && sl.Total > 0 && sl.Available >= 0 && sl.Available <= sl.Total {
		s.TaskManagers.SlotsTotal, s.TaskManagers.SlotsAvailable = sl.Total, sl.Available
	}
	sort.Strings(missing)
	return s, missing
}

// vertexAt is a vertex's values in one Flink sample of the window, and the
// sample's time (pointers into the window: read, never modified).
type vertexAt struct {
	at                  time.Time
	busy, backPressured *Agg
	inRate, outRate     *float64
	in, out, pending    *float64
}

// valuesAt is v's values at t.
func valuesAt(t time.Time, v *VertexSample) vertexAt {
	return vertexAt{at: t, busy: v.BusyTimeMsPerSecond, backPressured: v.BackPressuredTimeMsPerSecond,
		inRate: v.NumRecordsInPerSecond, outRate: v.NumRecordsOutPerSecond,
		in: v.NumRecordsIn, out: v.NumRecordsOut, pending: v.PendingRecords}
}

// vertexSamples returns the vertex in each Flink sample that has it, oldest
// first.
func (w *Window) vertexSamples(id string) []vertexAt {
	out := make([]vertexAt, 0, len(w.flink))
	for i := range w.flink {
		s := &w.flink[i]
		if ps := w.packed[i]; ps != nil {
			for j := range ps {
				if w.heads[ps[j].head].ID == id {
					out = append(out, ps[j].values(s.MetricsAt()))
					break
				}
			}
			continue
		}
		for j := range s.Vertices {
			if s.Vertices[j].ID == id {
				out = append(out, valuesAt(s.MetricsAt(), &s.Vertices[j]))
				break
			}
		}
	}
	return out
}

// agg averages a gauge's avg and max over the samples that have it. NaN in
// the latest sample that has the gauge is kept (the model refuses it);
// earlier NaNs are skipped.
func agg(vs []vertexAt, get func(*vertexAt) *Agg) *scaling.Stat {
	var avgs, maxs []float64
	var latest *Agg
	for i := range vs {
		a := get(&vs[i])
		if a == nil {
			continue
		}
		latest = a
		if finite(a.Avg) && finite(a.Max) {
			avgs, maxs = append(avgs, a.Avg), append(maxs, a.Max)
		}
	}
	if latest == nil {
		return nil
	}
	if !finite(latest.Avg) || !finite(latest.Max) || len(avgs) == 0 {
		return &scaling.Stat{Avg: scaling.F(latest.Avg), Max: scaling.F(latest.Max)}
	}
	return &scaling.Stat{Avg: scaling.F(stat.Mean(avgs, nil)), Max: scaling.F(stat.Mean(maxs, nil))}
}

// rate is a counter's growth over the window per second, as the Flink
// operator's collector computes rates; where the counter is missing or went
// backwards, the average of Flink's own 60-second meter.
func rate(vs []vertexAt, counter, meter func(*vertexAt) *float64) *scaling.Float {
	var t0, t1 time.Time
	var c0, c1 *float64
	for i := range vs {
		if c := counter(&vs[i]); c != nil && finite(*c) {
			if c0 == nil {
				c0, t0 = c, vs[i].at
			}
			c1, t1 = c, vs[i].at
		}
	}
	if c0 != nil && t1.After(t0) && *c1 >= *c0 {
		return scaling.F((*c1 - *c0) / t1.Sub(t0).Seconds())
	}
	var ms []float64
	var latest *float64
	for i := range vs {
		if m := meter(&vs[i]); m != nil {
			latest = m
			if finite(*m) {
				ms = append(ms, *m)
			}
		}
	}
	switch {
	case latest == nil:
		return nil
	case len(ms) == 0 || !finite(*latest):
		return scaling.F(*latest)
	}
	return scaling.F(stat.Mean(ms, nil))
}

// memory is the TaskManagers' memory over the window: the newest memory
// model and limits, the largest use seen, averages of the averages (nil:
// no sample reported memory).
func (w *Window) memory() *scaling.Memory {
	var ms []*MemorySample
	for _, s := range w.flink {
		if t := s.TaskManagers; t != nil && t.Memory != nil {
			ms = append(ms, t.Memory)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	last := ms[len(ms)-1]
	out := &scaling.Memory{
		ProcessBytes: scaling.Float(last.Process), FlinkBytes: scaling.Float(last.Flink), HeapBytes: scaling.Float(last.Heap),
		ManagedBytes: scaling.Float(last.Managed), NetworkBytes: scaling.Float(last.Network), MetaspaceBytes: scaling.Float(last.Metaspace),
		FrameworkHeapBytes: scaling.Float(last.FrameworkHeap), TaskHeapBytes: scaling.Float(last.TaskHeap),
		FrameworkOffHeapBytes: scaling.Float(last.FrameworkOffHeap), TaskOffHeapBytes: scaling.Float(last.TaskOffHeap),
		OverheadBytes: scaling.Float(last.Overhead),
		HeapMaxBytes:  ptrF(last.HeapMax), ManagedTotalBytes: ptrF(last.ManagedTotal), NetworkSegmentsTotal: ptrF(last.NetworkSegmentsTotal),
	}
	series := func(f func(*MemorySample) *float64) []float64 {
		var xs []float64
		for _, m := range ms {
			if v := f(m); v != nil {
				xs = append(xs, *v)
			}
		}
		return xs
	}
	peak := func(xs []float64) *scaling.Float {
		if len(xs) == 0 {
			return nil
		}
		return scaling.F(floats.Max(xs))
	}
	mean := func(xs []float64) *scaling.Float {
		if len(xs) == 0 {
			return nil
		}
		return scaling.F(stat.Mean(xs, nil))
	}
	if mx, av := series(func(m *MemorySample) *float64 { return m.HeapUsedMax }), series(func(m *MemorySample) *float64 { return m.HeapUsedAvg }); len(mx) > 0 {
		out.HeapUsedBytes = &scaling.Stat{Avg: mean(av), Max: peak(mx)}
	}
	out.MetaspaceUsedBytes = peak(series(func(m *MemorySample) *float64 { return m.MetaspaceUsedMax }))
	out.ManagedUsedBytes = peak(series(func(m *MemorySample) *float64 { return m.ManagedUsedMax }))
	if gc := series(func(m *MemorySample) *float64 { return m.GCTimeMsPerSecondMax }); len(gc) > 0 {
		out.GCTimeMsPerSecond = &scaling.Stat{Avg: mean(gc), Max: peak(gc)}
	}
	out.NetworkSegmentsUsed = peak(series(func(m *MemorySample) *float64 { return m.NetworkSegmentsUsedMax }))
	return out
}

func ptrF(v *float64) *scaling.Float {
	if v == nil {
		return nil
	}
	return scaling.F(*v)
}

func (w *Window) meanCheckpointMs() float64 {
	var ds []float64
	for _, s := range w.flink {
		if c := s.Checkpoints; c != nil && c.LastDuration > 0 {
			ds = append(ds, float64(c.LastDuration.Milliseconds()))
		}
	}
	if len(ds) == 0 {
		return 0
	}
	return stat.Mean(ds, nil)
}

// partKey names a partition by a topic name (Kafka's, or a spelling of
// it: see kafkaIndex).
type partKey struct {
	topic     string
	partition int
}

// kafkaPart is one partition's history in the window.
type kafkaPart struct {
	topic                string // Kafka's own name
	first, last          KafkaPartition
	firstAt, lastAt      time.Time
	seen                 int
	arrival              float64
	arrivalOK            bool
	recent               float64 // arrival rate over the newest half of the window
	recentOK             bool
	ends                 []int64     // end offsets, one per sample
	endTimes             []time.Time // their times
	committedKnown       bool
	rates                []float64 // arrival rate between consecutive samples
	rateTimes            []float64 // their midpoints, seconds since the first sample
	backwards, lostStart bool
}

// kafkaIndex is the brokers' partitions in the window by their topic, and
// indexes to find the partition a Flink partition owner names.
type kafkaIndex struct {
	parts map[partKey]*kafkaPart   // by Kafka's own topic name
	rest  map[partKey][]*kafkaPart // by SanitizedTopic
	canon map[partKey][]*kafkaPart // by CanonicalTopic
}

// owned finds the brokers' partition a partition owner names. Flink's REST
// metric ids spell the topic as SanitizedTopic does ("orders.v1" is
// "orders_v1", "orders-v1" stays), its Prometheus reporter replaces more
// ("orders-v1" is "orders_v1" too). The REST spelling is looked up first,
// then the canonical form (CanonicalTopic), which matches either; a
// spelling that several of the brokers' topics have is ambiguous and
// matches none. why says why there is none.
//
// A topic the reporter names "orders_v1" when the brokers report one that
// REST spells so as well ("orders.v1" or "orders_v1") is taken to be that
// one: the reporter's labels cannot tell it from "orders-v1".
func (k *kafkaIndex) owned(o PartitionOwner) (kp *kafkaPart, why string) {
	for _, c := range [][]*kafkaPart{k.rest[partKey{o.Topic, o.Partition}], k.canon[partKey{CanonicalTopic(o.Topic), o.Partition}]} {
		switch len(c) {
		case 0:
			continue
		case 1:
			return c[0], ""
		}
		topics := make([]string, len(c))
		for i, kp := range c {
			topics[i] = kp.topic
		}
		sort.Strings(topics)
		return nil, fmt.Sprintf("matches partitions of several topics (%s): their names are alike once sanitized", strings.Join(topics, ", "))
	}
	return nil, "not reported by the brokers"
}

// kafkaParts folds the brokers' samples per partition.
func (w *Window) kafkaParts() *kafkaIndex {
	size := 0
	if n := len(w.kafka); n > 0 {
		size = len(w.kafka[n-1].Partitions)
	}
	out := make(map[partKey]*kafkaPart, size)
	var t0 time.Time
	if len(w.kafka) > 0 {
		t0 = w.kafka[0].At
	}
	for _, s := range w.kafka {
		for _, p := range s.Partitions {
			k := partKey{p.Topic, p.Partition}
			kp := out[k]
			if kp == nil {
				// Sized for a sample each: growing them by append was
				// most of what a snapshot allocated.
				n := len(w.kafka)
				kp = &kafkaPart{topic: p.Topic, first: p, firstAt: s.At, ends: make([]int64, 0, n), endTimes: make([]time.Time, 0, n),
					rates: make([]float64, 0, n-1), rateTimes: make([]float64, 0, n-1)}
				out[k] = kp
			} else if dt := s.At.Sub(kp.lastAt).Seconds(); dt > 0 {
				if p.End < kp.last.End {
					kp.backwards = true
				} else {
					kp.rates = append(kp.rates, float64(p.End-kp.last.End)/dt)
					kp.rateTimes = append(kp.rateTimes, s.At.Sub(t0).Seconds()-dt/2)
				}
			}
			kp.last, kp.lastAt = p, s.At
			kp.ends, kp.endTimes = append(kp.ends, p.End), append(kp.endTimes, s.At)
			kp.seen++
		}
	}
	for _, kp := range out {
		kp.committedKnown = kp.last.Committed >= 0
		kp.lostStart = kp.committedKnown && kp.last.Committed < kp.last.Start
		if dt := kp.lastAt.Sub(kp.firstAt).Seconds(); dt > 0 && !kp.backwards {
			kp.arrival, kp.arrivalOK = float64(kp.last.End-kp.first.End)/dt, true
			mid := kp.lastAt.Add(-kp.lastAt.Sub(kp.firstAt) / 2)
			for i, at := range kp.endTimes {
				if !at.Before(mid) {
					if rdt := kp.lastAt.Sub(at).Seconds(); rdt > 0 {
						kp.recent, kp.recentOK = float64(kp.last.End-kp.ends[i])/rdt, true
					}
					break
				}
			}
		}
	}
	idx := &kafkaIndex{parts: out, rest: map[partKey][]*kafkaPart{}, canon: map[partKey][]*kafkaPart{}}
	for k, kp := range out {
		rk, ck := partKey{SanitizedTopic(k.topic), k.partition}, partKey{CanonicalTopic(k.topic), k.partition}
		idx.rest[rk] = append(idx.rest[rk], kp)
		idx.canon[ck] = append(idx.canon[ck], kp)
	}
	return idx
}

// sourceTopics maps each source vertex to the partitions its readers own,
// from Flink's KafkaSourceReader metrics. When Flink reports none (the
// metrics are not registered yet) and the job has exactly one source, that
// source reads every partition the brokers reported.
func (w *Window) sourceTopics(last FlinkSample, kafka *kafkaIndex) map[string][]PartitionOwner {
	out := map[string][]PartitionOwner{}
	var sources []VertexSample
	for _, v := range last.Vertices {
		if len(v.Inputs) == 0 {
			sources = append(sources, v)
			out[v.ID] = v.Partitions
		}
	}
	if len(sources) == 1 && len(out[sources[0].ID]) == 0 {
		for k := range kafka.parts {
			out[sources[0].ID] = append(out[sources[0].ID], PartitionOwner{Topic: SanitizedTopic(k.topic), Partition: k.partition, Subtask: -1, CurrentOffset: -1, CommittedOffset: -1})
		}
	}
	for id := range out {
		sort.Slice(out[id], func(i, j int) bool {
			a, b := out[id][i], out[id][j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
	}
	return out
}

// source fills a source vertex's Kafka fields: partitions, the lag and its
// growth, arrival rates from end-offset growth, and the per-partition
// breakdown with owners.
//
// The lag is Flink's pendingRecords when the newest Flink sample has it
// (summed over the readers: the records appended that they have not
// fetched, from their own positions), growing as pendingRecords grew from
// the first to the last sample that reports it (LagFromPendingRecords).
// Only without it does the lag come from the brokers: end − committed
// offset summed over the partitions, growing as that did over the brokers'
// samples (LagFromCommittedOffsets). Flink's KafkaSource commits offsets
// only when a checkpoint completes, so that lag trails the readers by up to
// a checkpoint interval of consumption: a fallback with a known upward
// bias. Without either the lag is missing (the model holds).
func (w *Window) source(sv *scaling.Vertex, v VertexSample, owners []PartitionOwner, kafka *kafkaIndex, miss func(string, ...any)) {
	pending, pendingRate := w.pending(v.ID)
	fromPending := func() {
		sv.LagRecords, sv.LagRatePerSecond, sv.LagSource = pending, pendingRate, scaling.LagFromPendingRecords
	}
	if len(owners) == 0 {
		if pending != nil {
			fromPending()
		}
		return // not a Kafka source, or nothing known about its partitions
	}
	sv.Partitions = len(owners)
	if len(w.kafka) == 0 {
		// No brokers to ask (no Kafka trigger): Flink's own view of the
		// lag, and the model's fallback for the demand (records in plus
		// lag growth), are what there is; nothing is missing.
		if pending != nil {
			fromPending()
		}
		return
	}
	// Committed offsets matter only when Flink reports no pendingRecords:
	// then every partition needs one. The arrival rates (end offsets) are
	// the brokers' either way.
	lag, arrival, recent := 0.0, 0.0, 0.0
	lagOK, arrivalOK, recentOK := true, true, true
	var recentRates, newestRates []float64
	latest := 0.0
	var firstLag, lastLag float64
	var rates []scaling.PartitionRate
	for _, o := range owners {
		kp, why := kafka.owned(o)
		if kp == nil {
			lagOK, arrivalOK = false, false
			miss("%s: partition %s-%d %s", v.ID, o.Topic, o.Partition, why)
			continue
		}
		switch {
		case !kp.committedKnown:
			lagOK = false
			if pending == nil {
				miss("%s: partition %s-%d has no committed offset for the group", v.ID, kp.topic, o.Partition)
			}
		case kp.lostStart:
			miss("%s: partition %s-%d: committed offset %d is below the log start %d (records deleted by retention)", v.ID, kp.topic, o.Partition, kp.last.Committed, kp.last.Start)
			lag += float64(kp.last.End - kp.last.Start)
		default:
			lag += float64(kp.last.End - kp.last.Committed)
			firstLag += float64(kp.first.End - max(kp.first.Committed, 0))
			lastLag += float64(kp.last.End - kp.last.Committed)
		}
		if kp.backwards {
			miss("%s: partition %s-%d: end offset went backwards (topic recreated?)", v.ID, kp.topic, o.Partition)
		}
		if !kp.arrivalOK {
			arrivalOK = false
			continue
		}
		arrival += kp.arrival
		recent += kp.recent
		recentOK = recentOK && kp.recentOK
		newest := math.NaN()
		if n := len(kp.rates); n > 0 {
			newest = kp.rates[n-1]
		}
		latest += newest
		newestRates = append(newestRates, newest)
		pr := scaling.PartitionRate{Topic: kp.topic, Partition: o.Partition, ArrivalRatePerSecond: scaling.Float(kp.arrival)}
		recentRates = append(recentRates, kp.recent)
		if o.Subtask >= 0 {
			sub := o.Subtask
			pr.Subtask = &sub
		}
		if kp.committedKnown {
			// Per partition the lag stays the brokers' (end −
			// committed): Flink's pendingRecords is per reader, not per
			// partition.
			pr.LagRecords = scaling.F(float64(kp.last.End - kp.last.Committed))
		}
		rates = append(rates, pr)
	}
	switch {
	case pending != nil:
		fromPending()
	case lagOK:
		sv.LagRecords, sv.LagSource = scaling.F(lag), scaling.LagFromCommittedOffsets
		if dt := w.kafka[len(w.kafka)-1].At.Sub(w.kafka[0].At).Seconds(); dt > 0 && len(w.kafka) >= 2 {
			sv.LagRatePerSecond = scaling.F((lastLag - firstLag) / dt)
		}
	default:
		miss("%s: lag unknown: no pendingRecords and no committed offsets", v.ID)
	}
	if arrivalOK && len(w.kafka) >= 2 {
		// A step in load within the window: the whole-window average
		// misstates the demand the job must meet from now on, and sizing
		// for it would cost a second rescale (up) or hold a scale-down's
		// stabilization window back (down). The newest interval shows a
		// step first (beyond noise), the newest half a smaller one.
		switch {
		case finite(latest) && len(w.kafka) >= 3 && stepped(latest, arrival, NewestStepThreshold):
			arrival = latest
			for i := range rates {
				rates[i].ArrivalRatePerSecond = scaling.Float(newestRates[i])
			}
		case recentOK && stepped(recent, arrival, StepThreshold):
			arrival = recent
			for i := range rates {
				rates[i].ArrivalRatePerSecond = scaling.Float(recentRates[i])
			}
		}
		sv.ArrivalRatePerSecond = scaling.F(arrival)
		if len(rates) == sv.Partitions {
			sv.PartitionRates = rates
		}
	} else {
		miss("%s: arrival rate unknown: fewer than two brokers' samples of every partition", v.ID)
	}
}

// StepThreshold is how much the arrival rate over the newest half of the
// window must differ from the whole window's for the snapshot to carry the
// newer rate: a step in load, not noise (a ±15 % noise averages out over half
// a window far below it).
const StepThreshold = 0.1

// stepped reports whether x differs from the window's rate by more than the
// threshold, either way.
func stepped(x, window, threshold float64) bool {
	return x > window*(1+threshold) || x < window*(1-threshold)
}

// NewestStepThreshold is the same for the newest interval between two
// brokers' samples alone: above the ±15 % noise a steady load shows.
const NewestStepThreshold = 0.25

// pending is a source's pendingRecords: the newest Flink sample's (nil
// when that sample has none, even if an older one had it: a value from
// before is not the lag now; NaN stays NaN, which the model refuses), and
// its growth per second from the first to the last sample of the window
// that reports a finite one (nil with fewer than two, or when the newest
// is not finite).
func (w *Window) pending(id string) (latest, rate *scaling.Float) {
	var newest *float64
	var t0, t1 time.Time
	var p0, p1 float64
	n := 0
	for _, x := range w.vertexSamples(id) {
		newest = x.pending
		if p := x.pending; p != nil && finite(*p) {
			if n == 0 {
				p0, t0 = *p, x.at
			}
			p1, t1 = *p, x.at
			n++
		}
	}
	if newest == nil {
		return nil, nil
	}
	if n >= 2 && t1.After(t0) && finite(*newest) {
		rate = scaling.F((p1 - p0) / t1.Sub(t0).Seconds())
	}
	return scaling.F(*newest), rate
}

// metricPending is Flink's name of a source's backlog gauge, as the
// collectors name it in Missing ("<vertex id>: pendingRecords…").
const metricPending = "pendingRecords"

// aboutPending says whether a Flink sample's Missing entry is about the
// pendingRecords of one of the vertices ids: "<id>: pendingRecords"
// followed by its end, ':' or ' '.
func aboutPending(entry string, ids []string) bool {
	for _, id := range ids {
		rest, ok := strings.CutPrefix(entry, id+": "+metricPending)
		if ok && (rest == "" || rest[0] == ':' || rest[0] == ' ') {
			return true
		}
	}
	return false
}

// ArrivalTrend is the slope of a source's arrival rate over the window, in
// records per second per minute (least squares over the per-interval rates,
// gonum/stat): positive while load grows. ok is false with fewer than three
// intervals.
func (w *Window) ArrivalTrend(topics map[string]bool) (perMinute float64, ok bool) {
	sums := map[float64]float64{}
	for _, kp := range w.kafkaParts().parts {
		if !topics[kp.topic] {
			continue
		}
		for i, r := range kp.rates {
			sums[kp.rateTimes[i]] += r
		}
	}
	if len(sums) < 3 {
		return 0, false
	}
	var xs, ys []float64
	for x := range sums {
		xs = append(xs, x)
	}
	sort.Float64s(xs)
	for _, x := range xs {
		ys = append(ys, sums[x])
	}
	_, slope := stat.LinearRegression(xs, ys, nil, false)
	return slope * 60, true
}

// BusyQuantile is a quantile (0..1) of a vertex's busiest-subtask busy time
// over the window's samples (gonum/stat, empirical), for reports.
func (w *Window) BusyQuantile(id string, q float64) (float64, bool) {
	var xs []float64
	for _, x := range w.vertexSamples(id) {
		if a := x.busy; a != nil && finite(a.Max) {
			xs = append(xs, a.Max)
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	sort.Float64s(xs)
	return stat.Quantile(q, stat.Empirical, xs, nil), true
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
