package scaling

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// SnapshotVersion is written into every snapshot so that old files stay
// readable when the format grows.
const SnapshotVersion = "flinkscale.io/snapshot/v1"

// Ship strategies as Flink's job plan names them.
const (
	ShipForward   = "FORWARD"
	ShipHash      = "HASH"
	ShipRebalance = "REBALANCE"
	ShipRescale   = "RESCALE"
	ShipBroadcast = "BROADCAST"
)

// Where a source's lag was read (Vertex.LagSource).
const (
	LagFromPendingRecords   = "pendingRecords"
	LagFromCommittedOffsets = "committedOffsets"
)

// Snapshot is what was observed of one job over the metrics window. Rates are
// averages over the window; busy and backpressure times are per-subtask
// statistics, averaged over the window. It is the model's only view of the
// world and a public format: collectors write it, `recommend --snapshot`
// replays it. See docs/snapshot.md.
type Snapshot struct {
	Version string `json:"version,omitempty"`
	JobID   string `json:"jobId,omitempty"`
	JobName string `json:"jobName,omitempty"`
	// JobState is Flink's job status; anything but RUNNING holds.
	JobState string `json:"jobState"`
	// RunningSince is when the job last became RUNNING: a restart or a
	// failover moves it, and samples from before it plus the warm-up are
	// not trusted.
	RunningSince time.Time `json:"runningSince"`
	// WindowStart and WindowEnd bound the samples that were averaged.
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
	// Samples is how many metric samples the window holds.
	Samples int `json:"samples"`
	// UpgradeMode is the FlinkDeployment's job.upgradeMode (savepoint,
	// last-state or stateless). It decides how Kafka partitions are
	// reassigned after a restart: restored from state, or assigned afresh.
	UpgradeMode string `json:"upgradeMode,omitempty"`

	// SlotSharingUnknown is true when Flink did not report the vertices'
	// slot-sharing groups (the REST API has slotSharingGroupId only from
	// Flink 1.20): an empty SlotSharingGroup then means "not reported", not
	// "default", and the slots a plan needs cannot be computed exactly.
	SlotSharingUnknown bool `json:"slotSharingUnknown,omitempty"`
	// RescaleInPlace is true when a rescale that keeps the TaskManager shape
	// happens in place: the adaptive scheduler on Flink ≥ 1.18 takes new
	// resource requirements without a savepoint, and Flink releases only the
	// TaskManagers left without a slot in use.
	RescaleInPlace bool `json:"rescaleInPlace,omitempty"`
	// Reactive is true when the job runs in Flink's reactive mode: every
	// vertex runs at the cluster's slots (at most its max parallelism), and
	// the number of TaskManagers is the only knob.
	Reactive bool `json:"reactive,omitempty"`
	// FlinkVersion is the Flink version the job runs ("1.20", "2.1";
	// spec.flinkVersion or REST /overview), for the network buffer rules
	// (NetworkConfig.Version), which real Flink 1.20 and 2.x follow alike.
	FlinkVersion string `json:"flinkVersion,omitempty"`
	// StateBackend is state.backend.type: "hashmap" (state on the heap),
	// "rocksdb" or "forst" (state off the heap, managed memory as cache).
	// Empty: unknown, and the heap and managed memory checks are off.
	StateBackend string `json:"stateBackend,omitempty"`

	Vertices     []Vertex     `json:"vertices"`
	Checkpoints  *Checkpoints `json:"checkpoints,omitempty"`
	TaskManagers TaskManagers `json:"taskManagers"`
}

// Vertex is one job vertex (a chain of operators that runs as one task).
type Vertex struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Parallelism is the number of subtasks running now.
	Parallelism int `json:"parallelism"`
	// MaxParallelism is the number of key groups; no vertex may run more
	// subtasks than this.
	MaxParallelism   int     `json:"maxParallelism"`
	SlotSharingGroup string  `json:"slotSharingGroup,omitempty"`
	Inputs           []Input `json:"inputs,omitempty"`

	// BusyTimeMsPerSecond and BackPressuredTimeMsPerSecond are Flink's task
	// metrics aggregated over subtasks (avg and max), in ms per second.
	BusyTimeMsPerSecond          *Stat `json:"busyTimeMsPerSecond,omitempty"`
	BackPressuredTimeMsPerSecond *Stat `json:"backPressuredTimeMsPerSecond,omitempty"`
	// NumRecordsInPerSecond and NumRecordsOutPerSecond are summed over
	// subtasks. For a source, "in" is what the source operator read.
	NumRecordsInPerSecond  *Float `json:"numRecordsInPerSecond,omitempty"`
	NumRecordsOutPerSecond *Float `json:"numRecordsOutPerSecond,omitempty"`

	// Source-only fields, measured from the Kafka brokers where possible.

	// Partitions is the number of partitions the source reads, over all its
	// topics. Zero means the source is not partitioned (or not Kafka).
	Partitions int `json:"partitions,omitempty"`
	// LagRecords is the source's backlog summed over partitions: records
	// appended to its partitions that its readers have not read yet.
	LagRecords *Float `json:"lagRecords,omitempty"`
	// LagSource says where LagRecords was read: "pendingRecords" (Flink's
	// own metric, from the readers' current positions: the true backlog) or
	// "committedOffsets" (end offsets less the group's committed offsets at
	// the brokers, which Flink commits only when a checkpoint completes: up
	// to a checkpoint interval of consumption behind the readers). Empty:
	// unknown, treated as the readers' position.
	LagSource string `json:"lagSource,omitempty"`
	// LagRatePerSecond is how fast the lag grew (negative: shrank) over the
	// window.
	LagRatePerSecond *Float `json:"lagRatePerSecond,omitempty"`
	// ArrivalRatePerSecond is the rate at which records were appended to the
	// source's partitions (broker end-offset growth): the true demand, which
	// Flink's own metrics cannot see while the source is backpressured.
	ArrivalRatePerSecond *Float `json:"arrivalRatePerSecond,omitempty"`
	// PartitionRates optionally breaks the arrival rate down per partition,
	// with the subtask that reads each partition now when known.
	PartitionRates []PartitionRate `json:"partitionRates,omitempty"`
}

// Input is an edge from an upstream vertex.
type Input struct {
	ID           string `json:"id"`
	ShipStrategy string `json:"shipStrategy"`
}

// Stat is an aggregate over a vertex's subtasks.
type Stat struct {
	Avg *Float `json:"avg,omitempty"`
	Max *Float `json:"max,omitempty"`
}

// PartitionRate is one Kafka partition's arrival rate and backlog.
type PartitionRate struct {
	Topic                string `json:"topic"`
	Partition            int    `json:"partition"`
	ArrivalRatePerSecond Float  `json:"arrivalRatePerSecond"`
	LagRecords           *Float `json:"lagRecords,omitempty"`
	// Subtask is the index of the source subtask that reads the partition
	// now, or nil when unknown.
	Subtask *int `json:"subtask,omitempty"`
}

// Checkpoints summarizes the job's recent checkpoints.
type Checkpoints struct {
	// IntervalMs is execution.checkpointing.interval.
	IntervalMs Float `json:"intervalMs"`
	// DurationMs is the recent end-to-end duration (the window's average or
	// latest completed checkpoint). A savepoint takes about as long.
	DurationMs Float `json:"durationMs"`
	// TimeoutMs is execution.checkpointing.timeout; optional.
	TimeoutMs Float `json:"timeoutMs,omitempty"`
	// RecentFailures counts checkpoints that failed within the window.
	RecentFailures int `json:"recentFailures"`
	// StateSizeBytes is the full state size of the latest checkpoint.
	StateSizeBytes Float `json:"stateSizeBytes,omitempty"`
}

// TaskManagers describes the TaskManagers the job runs on now.
type TaskManagers struct {
	// CPU is the CPU cores of one TaskManager (spec.taskManager.resource.cpu).
	CPU Float `json:"cpu"`
	// Slots is taskmanager.numberOfTaskSlots.
	Slots int `json:"slots"`
	// Replicas is the number of TaskManagers running.
	Replicas int `json:"replicas"`
	// SlotsTotal and SlotsAvailable are the task slots Flink's resource
	// manager reports for the cluster's TaskManagers (REST /overview
	// "slots-total" and "slots-available"; the JobManager's taskSlotsTotal
	// and taskSlotsAvailable gauges). On a job's own cluster the job holds
	// SlotsTotal − SlotsAvailable. SlotsTotal 0: not reported.
	SlotsTotal     int `json:"slotsTotal,omitempty"`
	SlotsAvailable int `json:"slotsAvailable,omitempty"`
	// FixedSlots is true when the slots per TaskManager are the cluster's
	// and a rescale cannot change them (a session cluster, a cluster
	// without the operator): plans keep Slots.
	FixedSlots bool `json:"fixedSlots,omitempty"`
	// FixedTaskManagers is true when the cluster's TaskManagers cannot
	// grow for the job (a standalone session cluster, a standalone cluster
	// whose TaskManagers flinkscale does not scale): a plan holds at most
	// the slots the job uses now plus SlotsAvailable.
	FixedTaskManagers bool `json:"fixedTaskManagers,omitempty"`
	// Memory is the TaskManagers' memory over the window (nil: not
	// reported). See Memory.
	Memory *Memory `json:"memory,omitempty"`
	// Shared is true when the cluster runs other jobs too (a session
	// cluster): Replicas and SlotsTotal − SlotsAvailable are the cluster's,
	// and the job's share is counted from its own parallelism.
	Shared bool `json:"shared,omitempty"`
	// Network is the TaskManagers' network buffer settings (nil: Flink's
	// defaults).
	Network *NetworkSettings `json:"network,omitempty"`
}

// NetworkSettings are the flinkConfiguration keys that decide how many
// network buffers a job needs; zero fields take Flink's defaults.
type NetworkSettings struct {
	// SegmentSizeBytes: taskmanager.memory.segment-size (32 KiB).
	SegmentSizeBytes int64 `json:"segmentSizeBytes,omitempty"`
	// BuffersPerChannel: taskmanager.network.memory.buffers-per-channel (2).
	BuffersPerChannel int `json:"buffersPerChannel,omitempty"`
	// FloatingBuffersPerGate:
	// taskmanager.network.memory.floating-buffers-per-gate (8).
	FloatingBuffersPerGate int `json:"floatingBuffersPerGate,omitempty"`
	// MaxOverdraftBuffersPerGate:
	// taskmanager.network.memory.max-overdraft-buffers-per-gate (5).
	MaxOverdraftBuffersPerGate int `json:"maxOverdraftBuffersPerGate,omitempty"`
	// RequiredPerGateMax:
	// taskmanager.network.memory.read-buffer.required-per-gate.max (unset).
	RequiredPerGateMax int `json:"requiredPerGateMax,omitempty"`
}

// Memory is the TaskManagers' memory over the window, in bytes: the memory
// model one TaskManager is configured with (REST /taskmanagers
// memoryConfiguration: process, total Flink, heap = framework + task heap,
// managed, network and metaspace), and what the TaskManagers use (REST
// /taskmanagers/metrics, aggregated over TaskManagers and the window).
// Absent figures were not reported.
type Memory struct {
	ProcessBytes   Float `json:"processBytes,omitempty"`
	FlinkBytes     Float `json:"flinkBytes,omitempty"`
	HeapBytes      Float `json:"heapBytes,omitempty"`
	ManagedBytes   Float `json:"managedBytes,omitempty"`
	NetworkBytes   Float `json:"networkBytes,omitempty"`
	MetaspaceBytes Float `json:"metaspaceBytes,omitempty"`
	// The rest of the memory model (memoryConfiguration frameworkHeap,
	// taskHeap, frameworkOffHeap, taskOffHeap, jvmOverhead): with them a
	// recommendation keeps what it does not size.
	FrameworkHeapBytes    Float `json:"frameworkHeapBytes,omitempty"`
	TaskHeapBytes         Float `json:"taskHeapBytes,omitempty"`
	FrameworkOffHeapBytes Float `json:"frameworkOffHeapBytes,omitempty"`
	TaskOffHeapBytes      Float `json:"taskOffHeapBytes,omitempty"`
	OverheadBytes         Float `json:"overheadBytes,omitempty"`
	// HeapUsedBytes: Status.JVM.Memory.Heap.Used, the window's average of
	// the TaskManagers' average (avg) and its largest value on any
	// TaskManager (max); HeapMaxBytes the heap's limit (Heap.Max).
	HeapUsedBytes *Stat  `json:"heapUsedBytes,omitempty"`
	HeapMaxBytes  *Float `json:"heapMaxBytes,omitempty"`
	// MetaspaceUsedBytes: Status.JVM.Memory.Metaspace.Used, the largest.
	MetaspaceUsedBytes *Float `json:"metaspaceUsedBytes,omitempty"`
	// ManagedUsedBytes and ManagedTotalBytes: Status.Flink.Memory.Managed.*.
	ManagedUsedBytes  *Float `json:"managedUsedBytes,omitempty"`
	ManagedTotalBytes *Float `json:"managedTotalBytes,omitempty"`
	// GCTimeMsPerSecond: Status.JVM.GarbageCollector.All.TimeMsPerSecond of
	// the busiest TaskManager, averaged (avg) and at its worst (max) over
	// the window (Flink 1.19+).
	GCTimeMsPerSecond *Stat `json:"gcTimeMsPerSecond,omitempty"`
	// NetworkSegmentsTotal and NetworkSegmentsUsed:
	// Status.Shuffle.Netty.TotalMemorySegments (the smallest TaskManager's)
	// and UsedMemorySegments (the largest, over the window).
	NetworkSegmentsTotal *Float `json:"networkSegmentsTotal,omitempty"`
	NetworkSegmentsUsed  *Float `json:"networkSegmentsUsed,omitempty"`
}

// ReadSnapshot decodes a snapshot and rejects unknown fields, so that a typo
// in a hand-written snapshot is an error instead of a silently missing
// metric.
func ReadSnapshot(r io.Reader) (Snapshot, error) {
	var s Snapshot
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Snapshot{}, fmt.Errorf("decoding snapshot: %w", err)
	}
	if dec.More() {
		return Snapshot{}, fmt.Errorf("decoding snapshot: trailing data after the JSON object")
	}
	if s.Version != "" && s.Version != SnapshotVersion {
		return Snapshot{}, fmt.Errorf("decoding snapshot: version %q is not supported (this build reads %q)", s.Version, SnapshotVersion)
	}
	return s, nil
}

// IsSource reports whether the vertex has no inputs.
func (v *Vertex) IsSource() bool { return len(v.Inputs) == 0 }

// Keyed reports whether any input of the vertex is partitioned by key.
func (v *Vertex) Keyed() bool {
	for _, in := range v.Inputs {
		if in.ShipStrategy == ShipHash {
			return true
		}
	}
	return false
}
