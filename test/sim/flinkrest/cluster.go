package flinkrest

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// omap is a JSON object with a fixed key order.
type omap []kv

type kv struct {
	key string
	val any
}

func (m omap) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, e := range m {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(marshal(e.key))
		buf.WriteByte(':')
		buf.Write(marshal(e.val))
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// ---- GET /overview ----

type clusterOverview struct {
	TaskManagers        int    `json:"taskmanagers"`
	SlotsTotal          int    `json:"slots-total"`
	SlotsAvailable      int    `json:"slots-available"`
	TaskManagersBlocked int    `json:"taskmanagers-blocked,omitempty"`
	SlotsFreeAndBlocked int    `json:"slots-free-and-blocked,omitempty"`
	JobsRunning         int    `json:"jobs-running"`
	JobsFinished        int    `json:"jobs-finished"`
	JobsCancelled       int    `json:"jobs-cancelled"`
	JobsFailed          int    `json:"jobs-failed"`
	FlinkVersion        string `json:"flink-version"`
	FlinkCommit         string `json:"flink-commit"`
}

func (h *handler) clusterOverview(req *request) response {
	return ok(overviewOf(req.view, []sim.View{req.view}))
}

// overviewOf is /overview of a cluster whose TaskManagers v shows, running
// the jobs of jobs (one view per job).
func overviewOf(v sim.View, jobs []sim.View) clusterOverview {
	o := clusterOverview{
		TaskManagers: len(v.TaskManagers),
		FlinkVersion: flinkVersionString(v.FlinkVersion),
		FlinkCommit:  v.FlinkCommit,
	}
	for _, tm := range v.TaskManagers {
		o.SlotsTotal += tm.SlotsNumber
		o.SlotsAvailable += tm.FreeSlots
	}
	for _, jv := range jobs {
		if jv.Job.ID == "" {
			continue
		}
		switch jv.Job.State {
		case "FINISHED":
			o.JobsFinished++
		case "CANCELED":
			o.JobsCancelled++
		case "FAILED":
			o.JobsFailed++
		default: // every state that is not globally terminal
			o.JobsRunning++
		}
	}
	return o
}

// ---- GET /config ----

type dashboardConfig struct {
	RefreshInterval int64            `json:"refresh-interval"`
	TimezoneName    string           `json:"timezone-name"`
	TimezoneOffset  int              `json:"timezone-offset"`
	FlinkVersion    string           `json:"flink-version"`
	FlinkRevision   string           `json:"flink-revision"`
	Features        dashboardFeature `json:"features"`
}

type dashboardFeature struct {
	WebSubmit  bool `json:"web-submit"`
	WebCancel  bool `json:"web-cancel"`
	WebRescale bool `json:"web-rescale"`
	WebHistory bool `json:"web-history"`
}

func (h *handler) dashboardConfig(req *request) response {
	v := req.view
	return ok(dashboardConfig{
		RefreshInterval: configMillis(v.JobManagerConfig, "web.refresh-interval", 3000),
		// The JobManager image runs in UTC.
		TimezoneName:   "Coordinated Universal Time",
		TimezoneOffset: 0,
		FlinkVersion:   flinkVersionString(v.FlinkVersion),
		// "<commit> @ <commit date>"; the view has no commit date.
		FlinkRevision: v.FlinkCommit + " @ 1970-01-01T00:00:00+00:00",
		Features: dashboardFeature{
			WebSubmit:  configBool(v.JobManagerConfig, "web.submit.enable", true),
			WebCancel:  configBool(v.JobManagerConfig, "web.cancel.enable", true),
			WebRescale: strings.EqualFold(v.Scheduler, "adaptive") && configBool(v.JobManagerConfig, "web.rescale.enable", true),
			WebHistory: false,
		},
	})
}

// ---- GET /jobmanager/config and /jobs/:jobid/jobmanager/config ----

type configEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// sensitiveKeys are GlobalConfiguration's markers of secret options, whose
// values the REST API hides.
var sensitiveKeys = []string{
	"password", "secret", "fs.azure.account.key", "apikey", "api-key", "auth-params",
	"service-key", "token", "basic-auth", "jaas.config", "http-headers",
}

const hiddenContent = "******"

func configEntries(conf map[string]string) []configEntry {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Configuration.toMap() is a HashMap sized to the entries.
	keys = javaHashOrder(keys, len(keys))
	out := make([]configEntry, 0, len(keys))
	for _, k := range keys {
		val := conf[k]
		lk := strings.ToLower(k)
		for _, s := range sensitiveKeys {
			if strings.Contains(lk, s) {
				val = hiddenContent
				break
			}
		}
		out = append(out, configEntry{Key: k, Value: val})
	}
	return out
}

func (h *handler) jobManagerConfig(req *request) response {
	return ok(configEntries(req.view.JobManagerConfig))
}

func (h *handler) jobJobManagerConfig(req *request) response {
	if _, errResp := req.job(); errResp != nil {
		return *errResp
	}
	return ok(configEntries(req.view.JobManagerConfig))
}

// ---- TaskManagers ----

const mib = 1 << 20

// tmMemory is a TaskManager's memory model, derived from the process size
// (TaskManagerView.PhysicalMemory) with Flink's defaults.
type tmMemory struct {
	FrameworkHeap      int64 `json:"frameworkHeap"`
	TaskHeap           int64 `json:"taskHeap"`
	FrameworkOffHeap   int64 `json:"frameworkOffHeap"`
	TaskOffHeap        int64 `json:"taskOffHeap"`
	NetworkMemory      int64 `json:"networkMemory"`
	ManagedMemory      int64 `json:"managedMemory"`
	JvmMetaspace       int64 `json:"jvmMetaspace"`
	JvmOverhead        int64 `json:"jvmOverhead"`
	TotalFlinkMemory   int64 `json:"totalFlinkMemory"`
	TotalProcessMemory int64 `json:"totalProcessMemory"`
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

func memoryOf(tm sim.TaskManagerView) tmMemory {
	if t := tm.Memory; t.ProcessBytes > 0 {
		return tmMemory{
			FrameworkHeap: t.FrameworkHeapBytes, TaskHeap: t.TaskHeapBytes,
			FrameworkOffHeap: t.FrameworkOffHeapBytes, TaskOffHeap: t.TaskOffHeapBytes,
			NetworkMemory: t.NetworkBytes, ManagedMemory: t.ManagedBytes,
			JvmMetaspace: t.MetaspaceBytes, JvmOverhead: t.OverheadBytes,
			TotalFlinkMemory: t.FlinkBytes(), TotalProcessMemory: t.ProcessBytes,
		}
	}
	process := tm.PhysicalMemory
	if process <= 0 {
		process = 1728 * mib // taskmanager.memory.process.size of the default flink-conf
	}
	m := tmMemory{TotalProcessMemory: process, JvmMetaspace: 256 * mib}
	m.JvmOverhead = clamp(process/10, 192*mib, 1024*mib)
	m.TotalFlinkMemory = process - m.JvmMetaspace - m.JvmOverhead
	m.FrameworkHeap = 128 * mib
	m.FrameworkOffHeap = 128 * mib
	m.NetworkMemory = clamp(m.TotalFlinkMemory/10, 64*mib, 1024*mib)
	m.ManagedMemory = tm.ManagedMemory
	if m.ManagedMemory <= 0 {
		m.ManagedMemory = m.TotalFlinkMemory * 4 / 10
	}
	m.TaskHeap = max(m.TotalFlinkMemory-m.FrameworkHeap-m.FrameworkOffHeap-m.TaskOffHeap-m.NetworkMemory-m.ManagedMemory, 0)
	return m
}

type resourceProfile struct {
	CPUCores          jdouble `json:"cpuCores"`
	TaskHeapMemory    int64   `json:"taskHeapMemory"`
	TaskOffHeapMemory int64   `json:"taskOffHeapMemory"`
	ManagedMemory     int64   `json:"managedMemory"`
	NetworkMemory     int64   `json:"networkMemory"`
	ExtendedResources omap    `json:"extendedResources"`
}

// profile is the resource profile of n of the TaskManager's slots (all its
// slots: its total resource), in MiB as ResourceProfileInfo reports.
func profile(tm sim.TaskManagerView, m tmMemory, n int) resourceProfile {
	slots := max(tm.SlotsNumber, 1)
	part := func(v int64) int64 { return v / mib * int64(n) / int64(slots) }
	return resourceProfile{
		CPUCores:          jdouble(tm.CPUCores * float64(n) / float64(slots)),
		TaskHeapMemory:    part(m.TaskHeap),
		TaskOffHeapMemory: part(m.TaskOffHeap),
		ManagedMemory:     part(m.ManagedMemory),
		NetworkMemory:     part(m.NetworkMemory),
		ExtendedResources: omap{},
	}
}

type hardwareDescription struct {
	CPUCores       int   `json:"cpuCores"`
	PhysicalMemory int64 `json:"physicalMemory"`
	FreeMemory     int64 `json:"freeMemory"`
	ManagedMemory  int64 `json:"managedMemory"`
}

type taskManagerInfo struct {
	ID                     string              `json:"id"`
	Path                   string              `json:"path"`
	DataPort               int                 `json:"dataPort"`
	JMXPort                int                 `json:"jmxPort"`
	TimeSinceLastHeartbeat int64               `json:"timeSinceLastHeartbeat"`
	SlotsNumber            int                 `json:"slotsNumber"`
	FreeSlots              int                 `json:"freeSlots"`
	TotalResource          resourceProfile     `json:"totalResource"`
	FreeResource           resourceProfile     `json:"freeResource"`
	Hardware               hardwareDescription `json:"hardware"`
	MemoryConfiguration    tmMemory            `json:"memoryConfiguration"`
	Blocked                bool                `json:"blocked,omitempty"`
}

func taskManagerInfoOf(tm sim.TaskManagerView) taskManagerInfo {
	m := memoryOf(tm)
	return taskManagerInfo{
		ID:                     tm.ID,
		Path:                   tm.Path,
		DataPort:               tm.DataPort,
		JMXPort:                tm.JMXPort,
		TimeSinceLastHeartbeat: tm.TimeSinceLastHeartbeat,
		SlotsNumber:            tm.SlotsNumber,
		FreeSlots:              tm.FreeSlots,
		TotalResource:          profile(tm, m, tm.SlotsNumber),
		FreeResource:           profile(tm, m, tm.FreeSlots),
		Hardware: hardwareDescription{
			CPUCores:       max(int(math.Ceil(tm.CPUCores)), 1),
			PhysicalMemory: tm.PhysicalMemory,
			FreeMemory:     tm.FreeMemory,
			ManagedMemory:  m.ManagedMemory,
		},
		MemoryConfiguration: m,
	}
}

func (h *handler) taskManagers(req *request) response {
	tms := make([]taskManagerInfo, 0, len(req.view.TaskManagers))
	for _, tm := range req.view.TaskManagers {
		tms = append(tms, taskManagerInfoOf(tm))
	}
	return ok(struct {
		TaskManagers []taskManagerInfo `json:"taskmanagers"`
	}{tms})
}

type slotInfo struct {
	Resource resourceProfile `json:"resource"`
	JobID    string          `json:"jobId"`
}

type gcInfo struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
	Time  int64  `json:"time"`
}

type tmMetricsInfo struct {
	HeapUsed                            int64    `json:"heapUsed"`
	HeapCommitted                       int64    `json:"heapCommitted"`
	HeapMax                             int64    `json:"heapMax"`
	NonHeapUsed                         int64    `json:"nonHeapUsed"`
	NonHeapCommitted                    int64    `json:"nonHeapCommitted"`
	NonHeapMax                          int64    `json:"nonHeapMax"`
	DirectCount                         int64    `json:"directCount"`
	DirectUsed                          int64    `json:"directUsed"`
	DirectMax                           int64    `json:"directMax"`
	MappedCount                         int64    `json:"mappedCount"`
	MappedUsed                          int64    `json:"mappedUsed"`
	MappedMax                           int64    `json:"mappedMax"`
	MemorySegmentsAvailable             *int64   `json:"memorySegmentsAvailable,omitempty"`
	MemorySegmentsTotal                 *int64   `json:"memorySegmentsTotal,omitempty"`
	NettyShuffleMemorySegmentsAvailable int64    `json:"nettyShuffleMemorySegmentsAvailable"`
	NettyShuffleMemorySegmentsUsed      int64    `json:"nettyShuffleMemorySegmentsUsed"`
	NettyShuffleMemorySegmentsTotal     int64    `json:"nettyShuffleMemorySegmentsTotal"`
	NettyShuffleMemoryAvailable         int64    `json:"nettyShuffleMemoryAvailable"`
	NettyShuffleMemoryUsed              int64    `json:"nettyShuffleMemoryUsed"`
	NettyShuffleMemoryTotal             int64    `json:"nettyShuffleMemoryTotal"`
	GarbageCollectors                   []gcInfo `json:"garbageCollectors"`
}

const memorySegmentSize = 32 * 1024

// tmGauges are the JVM and shuffle gauges of a TaskManager: what the
// view says it uses (sim's memory model), or, for a view without one, a
// fixed share of the heap.
type tmGauges struct {
	heapMax, heapUsed, nonHeapMax, nonHeapUsed, directUsed int64
	metaspaceUsed, managedUsed                             int64
	gcTimeMsPerSecond                                      float64
	segmentsTotal, segmentsUsed                            int64
}

func gaugesOf(tm sim.TaskManagerView) tmGauges {
	m := memoryOf(tm)
	g := tmGauges{
		heapMax:     m.FrameworkHeap + m.TaskHeap,
		nonHeapMax:  m.JvmMetaspace + 240*mib, // metaspace + code cache
		directUsed:  m.NetworkMemory + m.FrameworkOffHeap/4,
		nonHeapUsed: m.JvmMetaspace / 2,
	}
	g.segmentsTotal = m.NetworkMemory / memorySegmentSize
	if tm.Memory.ProcessBytes > 0 {
		g.heapUsed, g.managedUsed, g.gcTimeMsPerSecond = tm.HeapUsed, tm.ManagedUsed, tm.GCTimeMsPerSecond
		g.metaspaceUsed = tm.MetaspaceUsed
		g.nonHeapUsed = tm.MetaspaceUsed + 40*mib // and the code cache
		g.segmentsUsed = min(tm.NetworkSegmentsUsed, g.segmentsTotal)
		return g
	}
	g.heapUsed = g.heapMax / 4
	g.metaspaceUsed = g.nonHeapUsed
	busy := tm.SlotsNumber - tm.FreeSlots
	if tm.SlotsNumber > 0 {
		g.segmentsUsed = g.segmentsTotal * int64(busy) / int64(tm.SlotsNumber) / 2
	}
	return g
}

func (h *handler) taskManagerDetails(req *request) response {
	id := req.params["taskmanagerid"]
	for _, tm := range req.view.TaskManagers {
		if tm.ID != id {
			continue
		}
		info := taskManagerInfoOf(tm)
		m := memoryOf(tm)
		g := gaugesOf(tm)
		slots := make([]slotInfo, 0, tm.SlotsNumber-tm.FreeSlots)
		for i := range tm.SlotsNumber - tm.FreeSlots {
			jid := req.view.Job.ID
			if i < len(tm.SlotJobIDs) {
				jid = tm.SlotJobIDs[i] // a session cluster's: the job holding the slot
			}
			slots = append(slots, slotInfo{Resource: profile(tm, m, 1), JobID: jid})
		}
		metrics := tmMetricsInfo{
			HeapUsed: g.heapUsed, HeapCommitted: g.heapMax, HeapMax: g.heapMax,
			NonHeapUsed: g.nonHeapUsed, NonHeapCommitted: g.nonHeapUsed, NonHeapMax: g.nonHeapMax,
			DirectCount: g.segmentsTotal + 16, DirectUsed: g.directUsed, DirectMax: g.directUsed,
			NettyShuffleMemorySegmentsAvailable: g.segmentsTotal - g.segmentsUsed,
			NettyShuffleMemorySegmentsUsed:      g.segmentsUsed,
			NettyShuffleMemorySegmentsTotal:     g.segmentsTotal,
			NettyShuffleMemoryAvailable:         (g.segmentsTotal - g.segmentsUsed) * memorySegmentSize,
			NettyShuffleMemoryUsed:              g.segmentsUsed * memorySegmentSize,
			NettyShuffleMemoryTotal:             g.segmentsTotal * memorySegmentSize,
			GarbageCollectors: []gcInfo{
				{Name: "G1_Young_Generation"}, {Name: "G1_Old_Generation"},
			},
		}
		if req.ver.hasLegacyMemorySegments() {
			avail, total := g.segmentsTotal-g.segmentsUsed, g.segmentsTotal
			metrics.MemorySegmentsAvailable, metrics.MemorySegmentsTotal = &avail, &total
		}
		return ok(struct {
			taskManagerInfo
			AllocatedSlots []slotInfo    `json:"allocatedSlots"`
			Metrics        tmMetricsInfo `json:"metrics"`
		}{info, slots, metrics})
	}
	return errorResponse(http.StatusNotFound, fmt.Sprintf("Could not find TaskExecutor %s.", id))
}

// configMillis reads a duration option (Flink's TimeUtils syntax: "10 s",
// "500ms", "1min", a bare number is milliseconds).
func configMillis(conf map[string]string, key string, def int64) int64 {
	s, found := conf[key]
	if !found {
		return def
	}
	ms, parsed := parseFlinkDuration(s)
	if !parsed {
		return def
	}
	return ms
}

func parseFlinkDuration(s string) (int64, bool) {
	s = strings.TrimSpace(strings.ToLower(s))
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	var n int64
	if _, err := fmt.Sscan(s[:i], &n); err != nil {
		return 0, false
	}
	unit := strings.TrimSpace(s[i:])
	switch unit {
	case "", "ms", "milli", "millis", "millisecond", "milliseconds":
		return n, true
	case "s", "sec", "secs", "second", "seconds":
		return n * 1000, true
	case "m", "min", "mins", "minute", "minutes":
		return n * 60_000, true
	case "h", "hour", "hours":
		return n * 3_600_000, true
	case "d", "day", "days":
		return n * 86_400_000, true
	}
	return 0, false
}

func configBool(conf map[string]string, key string, def bool) bool {
	switch strings.ToLower(strings.TrimSpace(conf[key])) {
	case "true":
		return true
	case "false":
		return false
	}
	return def
}

func configInt(conf map[string]string, key string, def int64) int64 {
	var n int64
	if s, found := conf[key]; found {
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err == nil {
			return n
		}
	}
	return def
}
