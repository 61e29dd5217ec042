// Package metrics turns live systems into the scaling model's snapshot.
// Collectors poll Flink (REST API in metrics/flink, Prometheus reporter or
// PromQL in metrics/flinkprom) and Kafka (metrics/kafka) into timestamped
// samples; a Window keeps a job's samples over the metrics window and
// assembles a scaling.Snapshot that says what is complete and what is
// missing, so that the model can hold with a reason rather than guess.
package metrics

import (
	"math"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
)

// FlinkSample is one poll of a job's Flink metrics. Fields that could not be
// collected are nil (or absent) and named in Missing; a collector never
// turns a missing metric into zero.
type FlinkSample struct {
	At           time.Time
	FlinkVersion string
	// StateBackend is the job's state backend as StateBackendType names it
	// ("hashmap", "rocksdb", "forst"; "": not reported), from REST
	// /jobs/:jobid/checkpoints/config "state_backend", else the
	// JobManager's state.backend.type.
	StateBackend string
	JobID        string
	JobName      string
	// State is Flink's job status (RUNNING, RESTARTING, …).
	State string
	// RunningSince is timestamps.RUNNING of the job: it moves on every
	// restart or failover.
	RunningSince time.Time
	// SlotSharingUnknown is true when the job graph did not say the
	// vertices' slot-sharing groups (Flink's REST API reports
	// slotSharingGroupId only from 1.20): an empty SlotSharingGroup then
	// means "not reported", not the default group. Set by the collector
	// that reads the job graph (metrics/flink).
	SlotSharingUnknown bool
	Vertices           []VertexSample
	Checkpoints        *CheckpointSample
	TaskManagers       *TaskManagerSample
	// Slots is the task slots of the cluster's TaskManagers as Flink's
	// resource manager reports them (nil: not reported). Its absence is
	// never a gap: the snapshot's slot counts are then 0, unknown.
	Slots *SlotsSample
	// Missing lists what could not be collected, as "<vertex id>: <metric>"
	// or "<what>: <why>", for the snapshot's hold reasons and the logs.
	Missing []string
	// Dropped lists input a collector received but could not use, e.g. a
	// metric family of a Prometheus exposition that does not parse, as
	// "<where>: <what>: <why>" (bounded in number and length). It is for
	// the operator and the logs, never a hold reason: what a drop costs (a
	// metric of some subtasks, a source's partitions) is named in Missing,
	// and a dropped family no metric comes from costs nothing.
	Dropped []string
	// MetricsAge is how long before At the JobManager's metric store was
	// refreshed for the vertex metrics read: the time since the collector
	// primed Flink's metric fetcher (0: not known, taken as At). The
	// vertices' counters are dated MetricsAt, so that rates between
	// samples stay true when a poll reads later after its priming than the
	// one before (a controller with a backlog).
	MetricsAge time.Duration
}

// MetricsAt is when the vertex metrics of s were current: At less
// MetricsAge.
func (s *FlinkSample) MetricsAt() time.Time { return s.At.Add(-s.MetricsAge) }

// VertexSample is one vertex at one poll. Aggregates are over subtasks.
type VertexSample struct {
	ID               string
	Name             string
	Parallelism      int
	MaxParallelism   int
	SlotSharingGroup string
	Inputs           []scaling.Input

	// Gauges at the poll, ms/s: avg and max over subtasks.
	BusyTimeMsPerSecond          *Agg
	BackPressuredTimeMsPerSecond *Agg
	// Meters (60 s rates, summed over subtasks). For a source, "in" is the
	// source operator's numRecordsInPerSecond.
	NumRecordsInPerSecond  *float64
	NumRecordsOutPerSecond *float64
	// Counters summed over subtasks (since each subtask's attempt started),
	// from which the window computes its own rates.
	NumRecordsIn  *float64
	NumRecordsOut *float64
	// Sources: pendingRecords summed (nil until Flink registered it) and the
	// Kafka partitions each reader owns, from the KafkaSourceReader metric
	// group (topic names as Flink's metric scope writes them: REST replaces
	// ' ', '.', ':' and ',' with '_'; see SanitizedTopic).
	PendingRecords *float64
	Partitions     []PartitionOwner
}

// Agg is an aggregate over subtasks.
type Agg struct {
	Avg, Max float64
}

// PartitionOwner is a partition a source reader reads, with its offsets as
// the reader reports them (-1: unknown).
type PartitionOwner struct {
	Topic           string // as in the metric name (sanitized; see CanonicalTopic)
	Partition       int
	Subtask         int
	CurrentOffset   int64
	CommittedOffset int64
}

// CheckpointSample is the job's checkpoint statistics at a poll.
type CheckpointSample struct {
	Interval time.Duration
	Timeout  time.Duration
	// LastDuration is the latest completed checkpoint's end-to-end duration.
	LastDuration  time.Duration
	LastStateSize int64
	Completed     int // counts since the job started
	Failed        int
	InProgress    int
}

// TaskManagerSample is the TaskManagers' shape at a poll.
type TaskManagerSample struct {
	CPU      float64 // cores of one TaskManager
	Slots    int     // task slots of one TaskManager
	Replicas int     // TaskManagers registered
	// Memory is what the TaskManagers report of their memory (nil: not
	// read, or nothing reported).
	Memory *MemorySample
}

// MemorySample is the TaskManagers' memory at a poll: their configured
// memory model (the largest TaskManager's) and what they use, aggregated
// over the TaskManagers (bytes; nil: not reported). From REST
// /taskmanagers (memoryConfiguration) and /taskmanagers/metrics.
type MemorySample struct {
	// Configured: process, Flink, heap (framework + task), managed,
	// network and metaspace memory of one TaskManager.
	Process, Flink, Heap, Managed, Network, Metaspace int64
	// The rest of its memory model (memoryConfiguration frameworkHeap,
	// taskHeap, frameworkOffHeap, taskOffHeap, jvmOverhead).
	FrameworkHeap, TaskHeap, FrameworkOffHeap, TaskOffHeap, Overhead int64
	// HeapUsedMax and HeapUsedAvg: JVM heap in use (Status.JVM.Memory.Heap.Used),
	// over TaskManagers; HeapMax the heap's limit (Heap.Max).
	HeapUsedMax, HeapUsedAvg, HeapMax *float64
	// MetaspaceUsedMax: Status.JVM.Memory.Metaspace.Used, the largest.
	MetaspaceUsedMax *float64
	// ManagedUsedMax and ManagedTotal: Status.Flink.Memory.Managed.Used
	// (the largest) and .Total.
	ManagedUsedMax, ManagedTotal *float64
	// GCTimeMsPerSecondMax: Status.JVM.GarbageCollector.All.TimeMsPerSecond,
	// the largest (Flink 1.19+).
	GCTimeMsPerSecondMax *float64
	// NetworkSegmentsTotal (the smallest TaskManager's) and
	// NetworkSegmentsUsedMax: Status.Shuffle.Netty.TotalMemorySegments and
	// .UsedMemorySegments.
	NetworkSegmentsTotal, NetworkSegmentsUsedMax *float64
}

// StateBackendType names a state backend as state.backend.type does:
// "hashmap" (state on the heap), "rocksdb" or "forst", from what Flink's
// REST API reports (the backend's class name: "HashMapStateBackend",
// "EmbeddedRocksDBStateBackend", "ForStStateBackend", the legacy
// "MemoryStateBackend", "FsStateBackend", "RocksDBStateBackend") or from a
// configuration value (state.backend.type, the legacy state.backend:
// "hashmap", "rocksdb", "forst", "jobmanager", "filesystem", or a factory's
// class name). "" when it is none of these (e.g. a custom backend).
func StateBackendType(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:] // a class name
	}
	switch {
	case n == "":
		return ""
	case strings.Contains(n, "rocksdb"):
		return "rocksdb"
	case strings.Contains(n, "forst"):
		return "forst"
	case n == "hashmap" || n == "jobmanager" || n == "filesystem" || n == "memory" ||
		n == "hashmapstatebackend" || n == "hashmapstatebackendfactory" || n == "memorystatebackend" || n == "fsstatebackend":
		return "hashmap"
	}
	return ""
}

// ConfiguredStateBackend is the state backend a Flink configuration names
// (state.backend.type, or before Flink 1.17 state.backend), as
// StateBackendType names it.
func ConfiguredStateBackend(conf map[string]string) string {
	for _, k := range []string{"state.backend.type", "state.backend"} {
		if v := strings.TrimSpace(conf[k]); v != "" {
			return StateBackendType(v)
		}
	}
	return ""
}

// FlinkMinorVersion is a Flink version as "major.minor", from what REST
// /overview reports ("1.20.1", "2.1-SNAPSHOT") or a FlinkDeployment's
// spec.flinkVersion ("v1_20", "v2_1"). "" when s is neither.
func FlinkMinorVersion(s string) string {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "v"), "V")
	t = strings.ReplaceAll(t, "_", ".")
	parts := strings.SplitN(t, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	digits := func(x string) string {
		i := 0
		for i < len(x) && x[i] >= '0' && x[i] <= '9' {
			i++
		}
		return x[:i]
	}
	major, minor := digits(parts[0]), digits(parts[1])
	if major == "" || major != parts[0] || minor == "" {
		return ""
	}
	return major + "." + minor
}

// SlotsSample is the task slots of a cluster's TaskManagers at a poll:
// REST /overview's "slots-total" and "slots-available", or the
// JobManager's taskSlotsTotal and taskSlotsAvailable gauges. On a job's own
// cluster the job holds Total − Available.
type SlotsSample struct {
	Total, Available int
}

// NewSlotsSample is the slots a collector read, or nil when they are not
// plausible: a total that is not a positive whole number, or an available
// count outside [0, total].
func NewSlotsSample(total, available float64) *SlotsSample {
	whole := func(x float64) bool { return x >= 0 && x <= math.MaxInt32 && x == math.Trunc(x) }
	if !whole(total) || !whole(available) || total == 0 || available > total {
		return nil
	}
	return &SlotsSample{Total: int(total), Available: int(available)}
}

// KafkaSample is one poll of the brokers for a consumer group.
type KafkaSample struct {
	At    time.Time
	Group string
	// GroupState is the group's state (Empty, Stable, PreparingRebalance,
	// CompletingRebalance, Dead, or "" if unknown).
	GroupState string
	Partitions []KafkaPartition
	// Missing lists topics or partitions that could not be read, with why
	// (e.g. "orders: UNKNOWN_TOPIC_OR_PARTITION").
	Missing []string
}

// KafkaPartition is one partition at a poll.
type KafkaPartition struct {
	Topic     string
	Partition int
	// End is the log end offset (high watermark); Start the log start.
	End, Start int64
	// Committed is the group's committed offset, -1 when there is none
	// (never committed, or expired). A -1 is reported, never read as zero
	// lag.
	Committed int64
}

// SanitizedTopic writes a topic name as Flink's REST metric ids do (' ',
// '.', ':' and ',' replaced by '_'), so that Kafka's names can be matched
// with the partitions Flink's metrics report.
func SanitizedTopic(topic string) string {
	b := []byte(topic)
	for i, c := range b {
		switch c {
		case ' ', '.', ':', ',':
			b[i] = '_'
		}
	}
	return string(b)
}

// CanonicalTopic writes a topic name with every byte outside [a-zA-Z0-9_]
// replaced by '_'. A Kafka topic (whose names use only [a-zA-Z0-9._-]),
// its REST spelling (SanitizedTopic: '.' replaced) and its Prometheus
// reporter spelling (everything outside [a-zA-Z0-9:_] replaced) all have
// the same canonical form, so it matches a partition owner's topic with
// the brokers' whichever collector named the owner. It is lossy:
// "orders.v1", "orders-v1" and "orders_v1" are all "orders_v1".
func CanonicalTopic(topic string) string {
	b := []byte(topic)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
