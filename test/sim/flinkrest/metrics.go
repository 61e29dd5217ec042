package flinkrest

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/flinkscale/flinkscale/test/sim"
)

func itoa(i int) string { return strconv.Itoa(i) }

// metricStore is one component's metrics as the JobManager's MetricStore
// holds them: ids to the string values the metric query service dumped.
// A Gauge is dumped with value.toString() (a Double as "734.0", a Long as
// "266", a Boolean as "true"), a Counter as its long count, a Meter as its
// double rate.
type metricStore struct {
	keys   []string
	values map[string]string
}

func newStore() *metricStore { return &metricStore{values: map[string]string{}} }

func (s *metricStore) put(id, value string) {
	if _, dup := s.values[id]; !dup {
		s.keys = append(s.keys, id)
	}
	s.values[id] = value
}

func (s *metricStore) double(id string, v float64) { s.put(id, javaDouble(v)) }
func (s *metricStore) long(id string, v float64)   { s.put(id, javaLong(v)) }
func (s *metricStore) integer(id string, v int64)  { s.put(id, strconv.FormatInt(v, 10)) }

// ids lists the store's ids as ConcurrentHashMap.keySet() iterates them.
func (s *metricStore) ids() []string { return javaHashOrder(s.keys, 0) }

// restScopeComponent is MetricQueryService.replaceInvalidChars.
func restScopeComponent(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', ':', ',':
			return '_'
		}
		return r
	}, s)
}

// operatorMetricName is the name an operator's metric group carries: the
// operator name cut to 80 UTF-16 units (METRICS_OPERATOR_NAME_MAX_LENGTH).
func operatorMetricName(vx sim.VertexView) string {
	name := vx.OperatorName
	if name == "" {
		// The chain's head operator: the vertex name up to the first " -> ".
		name, _, _ = strings.Cut(vx.Name, " -> ")
	}
	if u := utf16.Encode([]rune(name)); len(u) > 80 {
		name = string(utf16.Decode(u[:80]))
	}
	return name
}

// isBackPressured stands in for the instantaneous Boolean gauge (the output
// was unavailable when sampled): true when the task spends most of its time
// back-pressured.
func isBackPressured(st sim.SubtaskView) bool {
	return st.BackPressuredTimeMsPerSecond >= 500
}

// subtaskStore is one subtask's metrics: task scope, then, for a source, its
// head operator's scope "<operator>.<metric>".
func subtaskStore(v sim.View, vx sim.VertexView, st sim.SubtaskView) *metricStore {
	s := newStore()
	s.double("busyTimeMsPerSecond", st.BusyTimeMsPerSecond) // Gauge<Double>
	s.long("idleTimeMsPerSecond", st.IdleTimeMsPerSecond)   // TimerGauge: Gauge<Long>
	s.long("backPressuredTimeMsPerSecond", st.BackPressuredTimeMsPerSecond)
	s.long("softBackPressuredTimeMsPerSecond", st.SoftBackPressuredTimeMsPerSecond)
	s.long("hardBackPressuredTimeMsPerSecond", st.HardBackPressuredTimeMsPerSecond)
	s.double("accumulateBusyTimeMs", st.AccumulatedBusyTimeMs) // Gauge<Double>, NaN if disabled
	s.long("accumulateIdleTimeMs", st.AccumulatedIdleTimeMs)
	s.long("accumulateBackPressuredTimeMs", st.AccumulatedBackPressuredMs)
	s.put("isBackPressured", strconv.FormatBool(isBackPressured(st)))
	s.long("numRecordsIn", st.NumRecordsIn) // Counter
	s.long("numRecordsOut", st.NumRecordsOut)
	s.double("numRecordsInPerSecond", st.NumRecordsInPerSecond) // Meter
	s.double("numRecordsOutPerSecond", st.NumRecordsOutPerSecond)
	if !vx.IsSource {
		return s
	}
	op := restScopeComponent(operatorMetricName(vx)) + "."
	s.long(op+"numRecordsIn", st.SourceNumRecordsIn)
	s.long(op+"numRecordsOut", st.SourceNumRecordsOut)
	s.double(op+"numRecordsInPerSecond", st.SourceNumRecordsInPerSecond)
	s.double(op+"numRecordsOutPerSecond", st.SourceNumRecordsOutPerSecond)
	if st.PendingRecords != nil {
		// Registered lazily, after the reader's first fetch.
		s.long(op+"pendingRecords", *st.PendingRecords)
	}
	for _, p := range st.Partitions {
		g := op + "KafkaSourceReader.topic." + restScopeComponent(p.Topic) + ".partition." + itoa(p.Partition) + "."
		s.integer(g+"currentOffset", p.CurrentOffset)
		s.integer(g+"committedOffset", p.CommittedOffset)
	}
	// Offsets are committed on each completed checkpoint.
	s.integer(op+"KafkaSourceReader.commitsSucceeded", int64(v.Job.Checkpoints.Completed))
	s.integer(op+"KafkaSourceReader.commitsFailed", 0)
	return s
}

// subtaskStores are the metric stores of vx's subtasks (by index) in the
// fetched view st, built once per fetch: a collector's requests at one
// instant read them several times. Stores are only read once built.
func (h *handler) subtaskStores(st *sim.View, vx *sim.VertexView) map[int]*metricStore {
	h.storesMu.Lock()
	defer h.storesMu.Unlock()
	if h.storesOf != st {
		h.storesOf, h.stores = st, map[string]map[int]*metricStore{}
	}
	if s, ok := h.stores[vx.ID]; ok {
		return s
	}
	s := make(map[int]*metricStore, len(vx.Subtasks))
	for _, sub := range vx.Subtasks {
		s[sub.Index] = subtaskStore(*st, *vx, sub)
	}
	h.stores[vx.ID] = s
	return s
}

// taskStore is a vertex's TaskMetricStore: every subtask's metrics, ids
// prefixed "<subtask>.".
func (h *handler) taskStore(v *sim.View, vx *sim.VertexView) *metricStore {
	s := newStore()
	subs := h.subtaskStores(v, vx)
	for _, st := range vx.Subtasks {
		sub := subs[st.Index]
		for _, k := range sub.keys {
			s.put(itoa(st.Index)+"."+k, sub.values[k])
		}
	}
	return s
}

// jobStore is the JobManager's job-scope metrics.
func jobStore(v sim.View, ver version) *metricStore {
	j := v.Job
	now := nowMillis(v)
	s := newStore()
	cp := j.Checkpoints
	if c := cp.LatestCompleted; c != nil {
		s.integer("lastCheckpointDuration", c.EndToEndDurationMs)
		s.integer("lastCheckpointSize", c.CheckpointedSize)
		s.integer("lastCheckpointFullSize", c.StateSizeBytes)
		s.put("lastCheckpointExternalPath", c.ExternalPath)
	} else {
		s.integer("lastCheckpointDuration", -1)
		s.integer("lastCheckpointSize", -1)
		s.integer("lastCheckpointFullSize", -1)
		s.put("lastCheckpointExternalPath", "n/a")
	}
	if r := cp.LatestRestored; r != nil {
		s.integer("lastCheckpointRestoreTimestamp", r.RestoreTimestamp)
	} else {
		s.integer("lastCheckpointRestoreTimestamp", -1)
	}
	s.integer("numberOfCompletedCheckpoints", int64(cp.Completed))
	s.integer("numberOfFailedCheckpoints", int64(cp.Failed))
	s.integer("numberOfInProgressCheckpoints", int64(cp.InProgress))
	s.integer("totalNumberOfCheckpoints", int64(cp.Total))
	s.integer("numRestarts", int64(j.NumRestarts))
	if ver.hasFullRestarts() {
		s.integer("fullRestarts", int64(j.NumRestarts))
	}
	s.integer("numRescales", int64(j.NumRescales))

	ts := func(state string) int64 { return j.Timestamps[state] }
	terminal := globallyTerminal(j.State) || j.State == "SUSPENDED"
	switch { // UpTimeGauge
	case j.State == "RUNNING":
		s.integer("uptime", max(now-ts("RUNNING"), 0))
	case terminal:
		s.integer("uptime", -1)
	default:
		s.integer("uptime", 0)
	}
	switch { // DownTimeGauge
	case j.State == "FAILING" || j.State == "RESTARTING":
		if f := ts("FAILING"); f > 0 {
			s.integer("downtime", max(now-f, 0))
		} else {
			s.integer("downtime", 0)
		}
	case terminal:
		s.integer("downtime", -1)
	default:
		s.integer("downtime", 0)
	}
	restarting := ts("RESTARTING") // RestartTimeGauge
	switch {
	case restarting <= 0:
		s.integer("restartingTime", 0)
	case ts("RUNNING") >= restarting:
		s.integer("restartingTime", ts("RUNNING")-restarting)
	case terminal:
		s.integer("restartingTime", max(ts(j.State)-restarting, 0))
	default:
		s.integer("restartingTime", max(now-restarting, 0))
	}
	return s
}

// jobManagerStore is the JobManager's own metrics.
func jobManagerStore(v sim.View) *metricStore {
	s := newStore()
	var total, free int64
	for _, tm := range v.TaskManagers {
		total += int64(tm.SlotsNumber)
		free += int64(tm.FreeSlots)
	}
	s.integer("taskSlotsAvailable", free)
	s.integer("taskSlotsTotal", total)
	s.integer("numRegisteredTaskManagers", int64(len(v.TaskManagers)))
	s.integer("numRunningJobs", runningJobs([]sim.View{v}))
	return s
}

// runningJobs counts the jobs of views that are not globally terminal.
func runningJobs(views []sim.View) int64 {
	n := int64(0)
	for _, v := range views {
		if v.Job.ID != "" && !globallyTerminal(v.Job.State) {
			n++
		}
	}
	return n
}

// taskManagerStore is a TaskManager's JVM and shuffle gauges.
func taskManagerStore(tm sim.TaskManagerView, ver version) *metricStore {
	g := gaugesOf(tm)
	m := memoryOf(tm)
	s := newStore()
	s.integer("Status.JVM.Memory.Heap.Used", g.heapUsed)
	s.integer("Status.JVM.Memory.Heap.Committed", g.heapMax)
	s.integer("Status.JVM.Memory.Heap.Max", g.heapMax)
	s.integer("Status.JVM.Memory.NonHeap.Used", g.nonHeapUsed)
	s.integer("Status.JVM.Memory.NonHeap.Committed", g.nonHeapUsed)
	s.integer("Status.JVM.Memory.NonHeap.Max", g.nonHeapMax)
	s.integer("Status.JVM.Memory.Metaspace.Used", g.metaspaceUsed)
	s.integer("Status.JVM.Memory.Metaspace.Committed", g.metaspaceUsed)
	s.integer("Status.JVM.Memory.Metaspace.Max", m.JvmMetaspace)
	s.integer("Status.Shuffle.Netty.TotalMemorySegments", g.segmentsTotal)
	s.integer("Status.Shuffle.Netty.UsedMemorySegments", g.segmentsUsed)
	s.integer("Status.Shuffle.Netty.AvailableMemorySegments", g.segmentsTotal-g.segmentsUsed)
	s.integer("Status.Flink.Memory.Managed.Total", m.ManagedMemory)
	s.integer("Status.Flink.Memory.Managed.Used", g.managedUsed)
	if ver.atLeast(1, 19) {
		// The collectors' sum (FLINK-33318, Flink 1.19): a MeterView of
		// their time, in ms per second.
		s.double("Status.JVM.GarbageCollector.All.TimeMsPerSecond", g.gcTimeMsPerSecond)
	}
	return s
}

// ---- MetricCollectionResponseBody: a bare JSON array ----

type metricValue struct {
	ID    string  `json:"id"`
	Value *string `json:"value,omitempty"`
}

// metricsResponse answers AbstractMetricsHandler: without ?get the ids, with
// it the values of the requested ids that exist (in HashSet order; unknown
// ids dropped). A missing store answers [].
func metricsResponse(req *request, s *metricStore) response {
	out := []metricValue{}
	if s == nil {
		return ok(out)
	}
	requested := req.queryList("get")
	if len(requested) == 0 {
		for _, id := range s.ids() {
			out = append(out, metricValue{ID: id})
		}
		return ok(out)
	}
	for _, id := range javaHashOrder(requested, javaHashSetCapacity(len(requested))) {
		if val, found := s.values[id]; found {
			out = append(out, metricValue{ID: id, Value: &val})
		}
	}
	return ok(out)
}

func (h *handler) vertexMetrics(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	vid, errResp := req.vertexParam()
	if errResp != nil {
		return *errResp
	}
	st := req.metricStore()
	vx := storedVertex(st, jid, vid)
	if vx == nil {
		return metricsResponse(req, nil)
	}
	return metricsResponse(req, h.taskStore(st, vx))
}

func (h *handler) subtaskMetrics(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	vid, errResp := req.vertexParam()
	if errResp != nil {
		return *errResp
	}
	raw := req.params["subtaskindex"]
	idx, err := strconv.Atoi(raw)
	if err != nil || idx < 0 {
		return badParam("path", "subtaskindex", raw)
	}
	st := req.metricStore()
	vx := storedVertex(st, jid, vid)
	if vx == nil {
		return metricsResponse(req, nil)
	}
	if s, ok := h.subtaskStores(st, vx)[idx]; ok {
		return metricsResponse(req, s)
	}
	return metricsResponse(req, nil)
}

func (h *handler) jobMetrics(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	st := req.metricStore()
	if st == nil || st.Job.ID == "" || !strings.EqualFold(st.Job.ID, jid) {
		return metricsResponse(req, nil)
	}
	return metricsResponse(req, jobStore(*st, req.ver))
}

func (h *handler) jobManagerMetrics(req *request) response {
	st := req.metricStore()
	if st == nil {
		return metricsResponse(req, nil)
	}
	return metricsResponse(req, jobManagerStore(*st))
}

func (h *handler) taskManagerMetrics(req *request) response {
	id := req.params["taskmanagerid"]
	if st := req.metricStore(); st != nil {
		for _, tm := range st.TaskManagers {
			if tm.ID == id {
				return metricsResponse(req, taskManagerStore(tm, req.ver))
			}
		}
	}
	return metricsResponse(req, nil)
}

// storedVertex is vertex vid of job jid in the store st, if it holds them.
func storedVertex(st *sim.View, jid, vid string) *sim.VertexView {
	if st == nil || st.Job.ID == "" || !strings.EqualFold(st.Job.ID, jid) {
		return nil
	}
	return findVertex(&st.Job, vid)
}

// ---- AggregatedMetricsResponseBody: a bare JSON array ----

type aggregatedMetric struct {
	ID   string   `json:"id"`
	Min  *jdouble `json:"min,omitempty"`
	Max  *jdouble `json:"max,omitempty"`
	Avg  *jdouble `json:"avg,omitempty"`
	Sum  *jdouble `json:"sum,omitempty"`
	Skew *jdouble `json:"skew,omitempty"`
}

type aggregations struct{ min, max, avg, sum, skew bool }

// parseAggregations reads ?agg= (case-insensitive; all of them when absent;
// skew only from 1.20 on, an unknown mode is a 400 as in
// MetricsAggregationParameter).
func parseAggregations(req *request) (aggregations, *response) {
	modes := req.queryList("agg")
	if len(modes) == 0 {
		return aggregations{min: true, max: true, avg: true, sum: true, skew: req.ver.hasSkew()}, nil
	}
	var a aggregations
	for _, m := range modes {
		switch strings.ToUpper(m) {
		case "MIN":
			a.min = true
		case "MAX":
			a.max = true
		case "AVG":
			a.avg = true
		case "SUM":
			a.sum = true
		case "SKEW":
			if !req.ver.hasSkew() {
				r := badParam("query", "agg", strings.Join(req.r.URL.Query()["agg"], ","))
				return a, &r
			}
			a.skew = true
		default:
			r := badParam("query", "agg", strings.Join(req.r.URL.Query()["agg"], ","))
			return a, &r
		}
	}
	return a, nil
}

// aggregatedResponse is AbstractAggregatingMetricsHandler: without ?get the
// union of the stores' ids (HashSet order); with it, per requested id in the
// requested order, the aggregates agg over the stores that have it. A
// non-numeric metric is skipped; but if any requested id has no value in any
// store, the whole answer is [].
func aggregatedResponse(req *request, agg aggregations, stores []*metricStore) response {
	out := []aggregatedMetric{}
	requested := req.queryList("get")
	if len(requested) == 0 {
		var union []string
		for _, s := range stores {
			union = append(union, s.keys...)
		}
		for _, id := range javaHashOrder(union, 32) {
			out = append(out, aggregatedMetric{ID: id})
		}
		return ok(out)
	}
	for _, id := range requested {
		var values []float64
		numeric := true
		for _, s := range stores {
			raw, found := s.values[id]
			if !found {
				continue
			}
			f, isNum := javaParseDouble(raw)
			if !isNum {
				numeric = false
				break
			}
			values = append(values, f)
		}
		if !numeric {
			continue
		}
		if len(values) == 0 {
			return ok([]aggregatedMetric{})
		}
		out = append(out, aggregate(id, values, agg))
	}
	return ok(out)
}

func ptr(f float64) *jdouble { d := jdouble(f); return &d }

func aggregate(id string, values []float64, agg aggregations) aggregatedMetric {
	minV, maxV, sum := values[0], values[0], values[0]
	for _, x := range values[1:] {
		minV = javaMin(minV, x)
		maxV = javaMax(maxV, x)
		sum += x
	}
	m := aggregatedMetric{ID: id}
	if agg.min {
		m.Min = ptr(minV)
	}
	if agg.max {
		m.Max = ptr(maxV)
	}
	if agg.avg {
		m.Avg = ptr(sum / float64(len(values)))
	}
	if agg.sum {
		m.Sum = ptr(sum)
	}
	if agg.skew {
		m.Skew = ptr(skew(values))
	}
	return m
}

// javaMin and javaMax are Math.min/max: NaN wins.
func javaMin(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Min(a, b)
}

func javaMax(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

// skew is DoubleDataSkew: the mean absolute deviation over the mean, in
// percent, capped at 100; 0 for a zero mean.
func skew(values []float64) float64 {
	sum := 0.0
	for _, v := range values {
		sum += v
	}
	avg := sum / float64(len(values))
	if avg == 0 {
		return 0
	}
	dev := 0.0
	for _, v := range values {
		dev += math.Abs(avg - v)
	}
	return math.Min(dev/float64(len(values))/avg*100, 100)
}

// javaParseDouble is Double.valueOf: decimal and hex floats, "NaN",
// "Infinity", surrounding whitespace, an optional d/f suffix; "true" is not
// a number.
func javaParseDouble(s string) (float64, bool) {
	t := strings.TrimSpace(s)
	switch strings.TrimLeft(t, "+-") {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if strings.HasPrefix(t, "-") {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if n := len(t); n > 0 && strings.ContainsRune("dDfF", rune(t[n-1])) && !strings.HasPrefix(strings.ToLower(t), "0x") {
		t = t[:n-1]
	}
	lower := strings.ToLower(t)
	if strings.Contains(lower, "inf") || strings.Contains(lower, "nan") || strings.Contains(t, "_") {
		return 0, false
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

func (h *handler) subtasksAggregatedMetrics(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	vid, errResp := req.vertexParam()
	if errResp != nil {
		return *errResp
	}
	agg, errResp := parseAggregations(req)
	if errResp != nil {
		return *errResp
	}
	var stores []*metricStore
	st := req.metricStore()
	if vx := storedVertex(st, jid, vid); vx != nil {
		byIndex := h.subtaskStores(st, vx)
		ranges := req.queryList("subtasks")
		if len(ranges) == 0 {
			for _, sub := range vx.Subtasks {
				stores = append(stores, byIndex[sub.Index])
			}
		} else {
			for _, i := range subtaskIndices(ranges) {
				if s, found := byIndex[i]; found {
					stores = append(stores, s)
				}
			}
		}
	}
	return aggregatedResponse(req, agg, stores)
}

// subtaskIndices expands "0,2-5" as AggregatingSubtasksMetricsHandler does:
// in the given order, duplicates kept, malformed parts ignored.
func subtaskIndices(ranges []string) []int {
	var out []int
	for _, raw := range ranges {
		r := strings.TrimSpace(raw)
		if from, to, isRange := strings.Cut(r, "-"); isRange {
			a, err1 := strconv.Atoi(from)
			b, err2 := strconv.Atoi(to)
			if err1 != nil || err2 != nil {
				continue
			}
			for i := a; i <= b; i++ {
				out = append(out, i)
			}
			continue
		}
		if i, err := strconv.Atoi(r); err == nil {
			out = append(out, i)
		}
	}
	return out
}

func (h *handler) taskManagersAggregatedMetrics(req *request) response {
	agg, errResp := parseAggregations(req)
	if errResp != nil {
		return *errResp
	}
	var stores []*metricStore
	var tms []sim.TaskManagerView
	if st := req.metricStore(); st != nil {
		tms = st.TaskManagers
	}
	ids := req.queryList("taskmanagers")
	if len(ids) == 0 {
		for _, tm := range tms {
			stores = append(stores, taskManagerStore(tm, req.ver))
		}
	} else {
		for _, id := range ids {
			for _, tm := range tms {
				if tm.ID == id {
					stores = append(stores, taskManagerStore(tm, req.ver))
				}
			}
		}
	}
	return aggregatedResponse(req, agg, stores)
}
