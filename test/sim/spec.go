// Package sim simulates Apache Flink jobs reading Kafka topics, faithfully
// enough that flinkscale's collectors, model and controller can be measured
// on it: a fluid model of a job graph per tick (bounded buffers,
// backpressure, Flink's own metric derivations), sources reading real Kafka
// partitions in a kfake cluster, checkpoints, savepoints and restarts, behind
// Flink's REST API and Prometheus reporter formats (subpackages flinkrest and
// promreporter).
//
// Time is injected: a job only moves when Advance is called, so a 24-hour
// scenario runs in seconds in-process, and a real-time driver serves the same
// job over HTTP for end-to-end tests and the demo.
package sim

import "time"

// JobSpec describes one simulated Flink job: its graph, its topics, and how
// its checkpoints and restarts behave.
type JobSpec struct {
	// Name is the Flink job name.
	Name string `json:"name"`
	// FlinkVersion selects the REST shapes served: "1.18", "1.20" or "2.1".
	FlinkVersion string `json:"flinkVersion"`
	// Scheduler is "default" or "adaptive" (jobmanager.scheduler); only the
	// adaptive scheduler accepts resource-requirement updates.
	Scheduler string `json:"scheduler,omitempty"`
	// SchedulerMode "reactive" runs the job in Flink's reactive mode
	// (scheduler-mode: reactive): the adaptive scheduler, every vertex's
	// upper bound its max parallelism, so the parallelism follows the
	// TaskManagers of the job's Pool (reactive mode runs on standalone
	// clusters only: Submit needs UsePool), and resource-requirement
	// updates rejected. Empty: no mode.
	SchedulerMode string `json:"schedulerMode,omitempty"`
	// ConsumerGroup is the Kafka consumer group the sources commit to.
	ConsumerGroup string          `json:"consumerGroup"`
	Topics        []TopicSpec     `json:"topics"`
	Vertices      []VertexSpec    `json:"vertices"`
	TaskManager   TaskManagerSpec `json:"taskManager"`
	Checkpoints   CheckpointSpec  `json:"checkpoints"`
	Restart       RestartSpec     `json:"restart"`
	// BufferSeconds sizes each input channel's buffer: it holds this many
	// seconds of the downstream vertex's capacity (Flink's network buffers
	// hold a fraction of a second to a few seconds of records). Default 1.
	BufferSeconds float64 `json:"bufferSeconds,omitempty"`
	// RecordBytes, when set, sizes the buffers as Flink's network stack
	// does at its defaults instead of by BufferSeconds: in bytes, each
	// record taking RecordBytes on the wire (serialized, with Flink's
	// framing), so a job of small records holds many seconds of them in
	// flight before it backpressures (see networkBuffers).
	RecordBytes float64 `json:"recordBytes,omitempty"`
	// StateBackend is state.backend.type: "hashmap" (Flink's default: the
	// state lives on the TaskManagers' heap), "rocksdb" or "forst" (off the
	// heap, managed memory as cache). It shapes the TaskManagers' memory
	// metrics (memory.go).
	StateBackend string `json:"stateBackend,omitempty"`
}

// SchedulerModeReactive is JobSpec.SchedulerMode for reactive mode.
const SchedulerModeReactive = "reactive"

// TopicSpec is a Kafka topic read by the job's sources.
type TopicSpec struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	// Skew gives each partition a share of the topic's arrival rate: a Zipf
	// exponent (0: equal shares; 1: partition k gets a share ∝ 1/(k+1)).
	Skew float64 `json:"skew,omitempty"`
	// Weights, when set, gives each partition's relative share explicitly
	// (len = Partitions) and overrides Skew.
	Weights []float64 `json:"weights,omitempty"`
}

// VertexSpec is one job vertex (a chain of operators running as one task).
type VertexSpec struct {
	// Name is Flink's vertex name, e.g. "Source: Kafka Source -> Map". The
	// vertex id is derived from it (32 hex characters) unless ID is set.
	Name string `json:"name"`
	ID   string `json:"id,omitempty"`
	// Parallelism at the job's first submission.
	Parallelism int `json:"parallelism"`
	// MaxParallelism: key groups; 0 means Flink's default rule for the
	// first parallelism.
	MaxParallelism int `json:"maxParallelism,omitempty"`
	// Capacity is what one subtask processes per second at 100 % busy with a
	// whole CPU core. Where TaskManagers have fewer cores than slots, every
	// subtask's capacity shrinks by cpu/slots (CPU contention).
	Capacity float64 `json:"capacity"`
	// Selectivity is records out per record in (1 for a map, < 1 for a
	// filter or a window, 0 for a sink).
	Selectivity float64 `json:"selectivity"`
	// Inputs are the upstream vertices, by name, with the ship strategy
	// (FORWARD, REBALANCE, HASH, RESCALE, BROADCAST). None for a source.
	Inputs []EdgeSpec `json:"inputs,omitempty"`
	// SlotSharingGroup: vertices of a group share slots; empty is "default".
	SlotSharingGroup string `json:"slotSharingGroup,omitempty"`
	// USL makes the vertex scale worse than linearly: per-subtask capacity
	// at parallelism N is Capacity / (1 + Sigma(N−1) + Kappa·N(N−1)).
	USL USLSpec `json:"usl,omitempty"`
	// Topics a source reads (names of TopicSpec). Empty for other vertices.
	Topics []string `json:"topics,omitempty"`
	// KeySkew is the Zipf exponent of the key distribution over key groups
	// for a keyed vertex (0: uniform); the hot key groups are shuffled by a
	// hash of the vertex id, so they fall in any subtask's range.
	KeySkew float64 `json:"keySkew,omitempty"`
	// StateBytes is the vertex's state size; it grows checkpoint durations.
	StateBytes float64 `json:"stateBytes,omitempty"`
}

// EdgeSpec is an input edge.
type EdgeSpec struct {
	From string `json:"from"`
	Ship string `json:"ship"`
}

// USLSpec holds Universal Scalability Law coefficients.
type USLSpec struct {
	Sigma float64 `json:"sigma,omitempty"`
	Kappa float64 `json:"kappa,omitempty"`
}

// TaskManagerSpec shapes the TaskManagers.
type TaskManagerSpec struct {
	CPU   float64 `json:"cpu"`
	Slots int     `json:"slots"`
	// MemoryBytes of one TaskManager process (reported by /taskmanagers).
	MemoryBytes float64 `json:"memoryBytes,omitempty"`
	// FlinkConfiguration holds the TaskManagers' memory and network keys
	// (taskmanager.memory.*, taskmanager.network.memory.*): the memory
	// model is derived from them and MemoryBytes as Flink derives it
	// (scaling.DeriveTaskManagerMemory). Empty: Flink's defaults.
	FlinkConfiguration map[string]string `json:"flinkConfiguration,omitempty"`
}

// CheckpointSpec says how checkpoints behave. A checkpoint's duration is
// Base + state size / Throughput, plus the alignment delay backpressure adds
// (AlignmentFactor × the most backpressured fraction × Interval).
type CheckpointSpec struct {
	Interval        time.Duration `json:"interval"`
	Timeout         time.Duration `json:"timeout"`
	Base            time.Duration `json:"base"`
	Throughput      float64       `json:"throughputBytesPerSecond"`
	AlignmentFactor float64       `json:"alignmentFactor,omitempty"`
}

// RestartSpec times a restart: the job is down for Time, plus
// TaskManagerStartup when TaskManagers start (a redeployment, or a rescale
// that needs more), plus the state restored at RestoreBytesPerSecond.
type RestartSpec struct {
	Time               time.Duration `json:"time"`
	TaskManagerStartup time.Duration `json:"taskManagerStartup"`
	// RestoreBytesPerSecond, when set, adds Σ StateBytes / it to every
	// restart that restores state.
	RestoreBytesPerSecond float64 `json:"restoreBytesPerSecond,omitempty"`
}
