package sim

import (
	"time"

	"github.com/flinkscale/flinkscale/scaling"
)

// View is a read-only copy of a simulated cluster at one instant: everything
// the REST API and the Prometheus reporter render, with values as Flink
// computes them. Renderers never reach into the live job.
type View struct {
	Now          time.Time
	FlinkVersion string // "1.18", "1.20", "2.1"
	// FlinkCommit is reported by /overview.
	FlinkCommit string
	Scheduler   string // "default" or "adaptive"

	Job          JobView
	TaskManagers []TaskManagerView
	// JobManagerConfig is /jobmanager/config (key → value).
	JobManagerConfig map[string]string
	// JobManagerHost is the JobManager's host label in Prometheus output.
	JobManagerHost string
}

// JobView is the (single, application-mode) job.
type JobView struct {
	ID   string // 32 hex
	Name string
	// State is Flink's JobStatus: INITIALIZING, CREATED, RUNNING, FAILING,
	// FAILED, CANCELLING, CANCELED, FINISHED, RESTARTING, SUSPENDED,
	// RECONCILING.
	State string
	// Timestamps maps a JobStatus to the epoch ms it was entered.
	Timestamps     map[string]int64
	StartTime      int64 // epoch ms
	EndTime        int64 // epoch ms, -1 while running
	MaxParallelism int
	Vertices       []VertexView // topological order
	Checkpoints    CheckpointsView
	// Config is /jobs/:jobid/config's execution-config.
	JobParallelism int
	// NumRestarts and NumRescales are the JobManager job gauges.
	NumRestarts, NumRescales int
	// FailureCause is the root exception of a FAILED job when the
	// simulator knows it ("class: message"), e.g. a
	// NoResourceAvailableException after a wait for slots, or of the last
	// failed attempt of a job that keeps RESTARTING (an IOException:
	// Insufficient number of network buffers).
	FailureCause string
}

// VertexView is one job vertex.
type VertexView struct {
	ID   string
	Name string
	// OperatorName is the head operator's name as metric scopes use it, e.g.
	// "Source: Kafka Source" (REST ids replace ' ', '.', ':' and ',' with '_').
	OperatorName       string
	Parallelism        int
	MaxParallelism     int
	SlotSharingGroupID string // 32 hex
	Inputs             []EdgeView
	// Status is the ExecutionState of the vertex (RUNNING, CANCELED, …).
	Status   string
	IsSource bool
	Subtasks []SubtaskView
	// StartTime of the vertex's current attempt, epoch ms.
	StartTime int64
}

// EdgeView is an input edge in the job plan.
type EdgeView struct {
	ID   string // upstream vertex id
	Ship string // FORWARD, HASH, REBALANCE, RESCALE, BROADCAST
}

// SubtaskView holds one subtask's metrics, derived as Flink derives them.
// Time gauges are over a 60 s window (TimerGauge), meters average 60 s,
// counters count since the attempt started.
type SubtaskView struct {
	Index         int
	Attempt       int
	TaskManagerID string
	Host          string // "10.244.1.17" style; Prometheus sanitizes it

	BusyTimeMsPerSecond              float64 // 1000 - min(idle+bp, 1000); NaN if not measured
	IdleTimeMsPerSecond              float64
	SoftBackPressuredTimeMsPerSecond float64
	HardBackPressuredTimeMsPerSecond float64
	// BackPressuredTimeMsPerSecond = soft + hard.
	BackPressuredTimeMsPerSecond float64
	AccumulatedBusyTimeMs        float64
	AccumulatedIdleTimeMs        float64
	AccumulatedBackPressuredMs   float64

	// Task-level counters and meters. For a FLIP-27 source the task-level
	// NumRecordsIn is 0; the source operator's own counters are below.
	NumRecordsIn, NumRecordsOut                   float64
	NumRecordsInPerSecond, NumRecordsOutPerSecond float64

	// Source operator only (IsSource): the operator-scoped counters and
	// meters, pendingRecords (nil until registered: Flink registers it after
	// the first fetch), and the partitions this reader owns.
	SourceNumRecordsIn, SourceNumRecordsOut                   float64
	SourceNumRecordsInPerSecond, SourceNumRecordsOutPerSecond float64
	PendingRecords                                            *float64
	Partitions                                                []PartitionView
}

// PartitionView is a Kafka partition a source reader owns, as the
// KafkaSourceReader.topic.<t>.partition.<p> metric group reports it.
type PartitionView struct {
	Topic     string
	Partition int
	// CurrentOffset is the next offset the reader will read; CommittedOffset
	// the last offset committed to the group on checkpoint completion (-1
	// until the first commit).
	CurrentOffset   int64
	CommittedOffset int64
}

// CheckpointsView is /jobs/:jobid/checkpoints.
type CheckpointsView struct {
	Restored, Total, InProgress, Completed, Failed int
	// History is the most recent checkpoints, newest first (Flink keeps 10
	// by default: web.checkpoints.history).
	History []CheckpointStat
	// LatestCompleted, LatestSavepoint, LatestFailed are nil when none.
	LatestCompleted, LatestSavepoint, LatestFailed *CheckpointStat
	// Restored is the checkpoint or savepoint the job started from.
	LatestRestored *RestoredCheckpoint
}

// CheckpointStat is one checkpoint (or savepoint).
type CheckpointStat struct {
	ID                 int64
	Status             string // COMPLETED, FAILED, IN_PROGRESS
	IsSavepoint        bool
	TriggerTimestamp   int64 // epoch ms
	LatestAckTimestamp int64
	EndToEndDurationMs int64
	StateSizeBytes     int64
	CheckpointedSize   int64
	AlignmentBuffered  int64
	ProcessedData      int64
	PersistedData      int64
	NumSubtasks        int
	NumAcknowledged    int
	CheckpointType     string // CHECKPOINT, SAVEPOINT, SYNC_SAVEPOINT
	ExternalPath       string // completed only
	FailureTimestamp   int64  // failed only
	FailureMessage     string // failed only
}

// RestoredCheckpoint is latest.restored.
type RestoredCheckpoint struct {
	ID               int64
	RestoreTimestamp int64
	IsSavepoint      bool
	ExternalPath     string
}

// TaskManagerView is one TaskManager of /taskmanagers.
type TaskManagerView struct {
	ID                     string
	Path                   string // "pekko.tcp://flink@10.244.1.17:6122/user/rpc/taskmanager_0"
	DataPort, JMXPort      int
	TimeSinceLastHeartbeat int64 // epoch ms of the last heartbeat
	SlotsNumber, FreeSlots int
	CPUCores               float64
	PhysicalMemory         int64
	FreeMemory             int64
	ManagedMemory          int64
	Host                   string
	// SlotJobIDs is the job holding each slot in use, on a TaskManager
	// jobs share (a Pool); nil: the view's job holds them.
	SlotJobIDs []string
	// Memory is the TaskManager's memory model (its process size is
	// PhysicalMemory), and the rest what it uses now (memory.go): heap,
	// managed memory and metaspace in bytes, GC time in ms per second,
	// network segments in use (of Memory.NetworkBytes / 32 KiB).
	Memory              scaling.TaskManagerMemory
	HeapUsed            int64
	ManagedUsed         int64
	MetaspaceUsed       int64
	GCTimeMsPerSecond   float64
	NetworkSegmentsUsed int64
}
