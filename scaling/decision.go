package scaling

import (
	"fmt"
	"strings"
	"time"
)

// Action is what a decision tells the controller to do.
type Action string

const (
	// ActionScale: rescale the job to the recommended plan now.
	ActionScale Action = "Scale"
	// ActionHold: change nothing; the reasons say why.
	ActionHold Action = "Hold"
)

// ReasonCode is a machine-readable reason. Codes are stable: dashboards,
// alerts and scripts match on them.
type ReasonCode string

// Reasons a decision holds because of its input.
const (
	ReasonInvalidPolicy    ReasonCode = "InvalidPolicy"
	ReasonInvalidSnapshot  ReasonCode = "InvalidSnapshot"
	ReasonJobNotRunning    ReasonCode = "JobNotRunning"
	ReasonMissingMetrics   ReasonCode = "MissingMetrics"
	ReasonNonFiniteMetric  ReasonCode = "NonFiniteMetric"
	ReasonMetricOutOfRange ReasonCode = "MetricOutOfRange"
	ReasonTooFewSamples    ReasonCode = "TooFewSamples"
	ReasonWindowTooShort   ReasonCode = "WindowTooShort"
	ReasonStaleSnapshot    ReasonCode = "StaleSnapshot"
	ReasonWarmingUp        ReasonCode = "WarmingUp"
	ReasonNoThroughput     ReasonCode = "NoThroughput"
)

// Reasons a decision holds by choice.
const (
	ReasonRescaleInProgress    ReasonCode = "RescaleInProgress"
	ReasonCooldown             ReasonCode = "Cooldown"
	ReasonWithinBand           ReasonCode = "WithinBand"
	ReasonScaleDownStabilizing ReasonCode = "ScaleDownStabilizing"
	ReasonCheckpointsUnhealthy ReasonCode = "CheckpointsUnhealthy"
	// ReasonMemoryPressure: the TaskManagers spend too much time in GC (or
	// hold too much heap) for a rescale to help; they need memory.
	ReasonMemoryPressure     ReasonCode = "MemoryPressure"
	ReasonGainBelowCost      ReasonCode = "GainBelowCost"
	ReasonNoChange           ReasonCode = "NoChange"
	ReasonQuotaUnsatisfiable ReasonCode = "QuotaUnsatisfiable"
)

// Memory reasons.
const (
	// ReasonNetworkMemoryLimited: the plan was reduced (or held) because
	// the TaskManagers' network memory cannot hold the buffers it needs.
	ReasonNetworkMemoryLimited ReasonCode = "NetworkMemoryLimited"
	// ReasonHeapMemoryLimited: a scale-down was reduced (or held) because
	// the state it packs onto each TaskManager's heap would not fit.
	ReasonHeapMemoryLimited ReasonCode = "HeapMemoryLimited"
	// ReasonManagedMemoryLimited: the plan keeps the slots per TaskManager,
	// because more slots would split the managed memory (RocksDB's cache)
	// into smaller shares.
	ReasonManagedMemoryLimited ReasonCode = "ManagedMemoryLimited"
	// ReasonMemoryTuning: the plan sets the TaskManagers' memory (policy
	// memory mode Apply): what it needs, and the recommendation.
	ReasonMemoryTuning ReasonCode = "MemoryTuning"
)

// Reasons that trigger a rescale.
const (
	ReasonOverloaded         ReasonCode = "Overloaded"
	ReasonUnderutilized      ReasonCode = "Underutilized"
	ReasonCheckpointPressure ReasonCode = "CheckpointPressure"
)

// Reasons that describe a vertex or a limit that binds.
const (
	ReasonBottleneck            ReasonCode = "Bottleneck"
	ReasonBackpressured         ReasonCode = "Backpressured"
	ReasonCapacityUnmeasured    ReasonCode = "CapacityUnmeasured"
	ReasonExcluded              ReasonCode = "Excluded"
	ReasonPartitionLimited      ReasonCode = "PartitionLimited"
	ReasonMaxParallelismLimited ReasonCode = "MaxParallelismLimited"
	ReasonPolicyLimited         ReasonCode = "PolicyLimited"
	ReasonMaxFactorLimited      ReasonCode = "MaxFactorLimited"
	ReasonScalabilityLimited    ReasonCode = "ScalabilityLimited"
	ReasonQuotaLimited          ReasonCode = "QuotaLimited"
	// ReasonClusterCapacity: the cluster's TaskManagers cannot grow (a
	// standalone or shared session cluster) and the plan was fitted to the
	// slots the job can hold there.
	ReasonClusterCapacity ReasonCode = "ClusterCapacity"
	// ReasonReactiveMode: Flink's reactive mode runs every vertex at the
	// cluster's slots (up to its max parallelism); the plan is uniform.
	ReasonReactiveMode      ReasonCode = "ReactiveMode"
	ReasonForwardGroup      ReasonCode = "ForwardGroup"
	ReasonFittedScalability ReasonCode = "FittedScalability"
	ReasonFreeSlots         ReasonCode = "FreeSlots"
	// ReasonTrendForecast: the load has a trend and the plan was sized for
	// the load it forecasts.
	ReasonTrendForecast ReasonCode = "TrendForecast"
	// ReasonCostBenefit: what the rescale saves against what it costs.
	ReasonCostBenefit ReasonCode = "CostBenefit"
	// ReasonSlotSharingUnknown: Flink did not report slot-sharing groups;
	// slots are estimated from what it holds.
	ReasonSlotSharingUnknown ReasonCode = "SlotSharingUnknown"
	// ReasonLagFromCommittedOffsets: a source's lag came from committed
	// offsets, which trail its readers; the model took off their bias.
	ReasonLagFromCommittedOffsets ReasonCode = "LagFromCommittedOffsets"
)

// ReasonLoadFalling: a scale-down waits while the load falls, because a
// step that small would be followed by another before it paid for itself.
const ReasonLoadFalling ReasonCode = "LoadFalling"

// Reason is a code, the vertex it concerns (empty for the job) and a sentence
// with the numbers.
type Reason struct {
	Code    ReasonCode `json:"code"`
	Vertex  string     `json:"vertex,omitempty"`
	Message string     `json:"message"`
}

func (r Reason) String() string {
	if r.Vertex != "" {
		return fmt.Sprintf("%s (%s): %s", r.Code, r.Vertex, r.Message)
	}
	return fmt.Sprintf("%s: %s", r.Code, r.Message)
}

// Decision is the model's answer.
type Decision struct {
	At     time.Time `json:"at"`
	Action Action    `json:"action"`
	// Summary is one sentence for humans.
	Summary string   `json:"summary"`
	Reasons []Reason `json:"reasons"`
	// Vertices is empty when the snapshot could not be read at all.
	Vertices []VertexDecision `json:"vertices,omitempty"`
	// Bottleneck is the id of the vertex that limits the job now.
	Bottleneck string `json:"bottleneck,omitempty"`
	// Current and Recommended are the job's resource plans before and after.
	Current     Plan `json:"current"`
	Recommended Plan `json:"recommended"`
	// LagRecords and LagSeconds are summed / worst over Kafka sources.
	LagRecords float64 `json:"lagRecords"`
	LagSeconds float64 `json:"lagSeconds"`
	// PredictedDowntime is the savepoint plus restart time a rescale costs.
	PredictedDowntime Duration `json:"predictedDowntime"`
	// PredictedCatchUp is how long after the restart the backlog takes to
	// drain at the recommended parallelism (zero: no backlog).
	PredictedCatchUp Duration `json:"predictedCatchUp"`
	// LagGrows is true when some vertex would still have less capacity than
	// its target rate at the recommended parallelism (a limit binds).
	LagGrows bool `json:"lagGrows,omitempty"`
	// CheckpointsHealthy is false when checkpoints are slow or failing.
	CheckpointsHealthy bool `json:"checkpointsHealthy"`
	// Economics is the cost–benefit behind a sized decision, in slot-hours
	// (nil when the model did not size the job).
	Economics *Economics `json:"economics,omitempty"`
	// Memory is the TaskManager memory recommendation and the network
	// buffers of the recommended plan (nil: the TaskManagers' memory was
	// not reported, or the policy's memory mode is Off).
	Memory *MemoryRecommendation `json:"memory,omitempty"`
	// Sized is true when the model trusted the snapshot and sized every
	// vertex; false on a hold for bad or insufficient data, whose
	// per-vertex numbers are then only the current parallelism.
	Sized bool `json:"sized"`
}

// VertexDecision is the model's view of one vertex.
type VertexDecision struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Current is the parallelism now; Required is what the model needs for
	// the target utilization (before stabilization, step bounds and quotas;
	// history records it); Recommended is what the plan applies.
	Current     int `json:"current"`
	Required    int `json:"required"`
	Recommended int `json:"recommended"`
	// Source is true for a vertex without inputs; its TargetRate is the
	// load arriving for the job, which history keeps for the trend.
	Source bool `json:"source,omitempty"`

	BusyTimeMsPerSecond      float64 `json:"busyTimeMsPerSecond"`
	BackPressuredMsPerSecond float64 `json:"backPressuredTimeMsPerSecond"`
	// Skew is the busiest subtask's busy time over the average.
	Skew float64 `json:"skew"`
	// TrueProcessingRate is the vertex's capacity now in records/s at 100 %
	// busy (DS2); TargetRate is the rate it must sustain; CatchUpRate the
	// extra rate to drain the backlog (lag plus restart) in time.
	TrueProcessingRate float64 `json:"trueProcessingRate"`
	TargetRate         float64 `json:"targetRate"`
	CatchUpRate        float64 `json:"catchUpRate"`
	// UtilizationNow is the busiest subtask's busy fraction if the vertex
	// received its target rate at its current parallelism; UtilizationAfter
	// the same at the recommended parallelism.
	UtilizationNow   float64 `json:"utilizationNow"`
	UtilizationAfter float64 `json:"utilizationAfter"`
	// ExpectedProcessingRate is the predicted true processing rate at the
	// recommended parallelism.
	ExpectedProcessingRate float64 `json:"expectedProcessingRate"`
	// Partitions and KeyGroups are the units the vertex's work is spread in
	// (zero when not aligned).
	Partitions int `json:"partitions,omitempty"`
	KeyGroups  int `json:"keyGroups,omitempty"`
	// LagRecords and LagSeconds for Kafka sources.
	LagRecords float64 `json:"lagRecords,omitempty"`
	LagSeconds float64 `json:"lagSeconds,omitempty"`

	Bottleneck bool `json:"bottleneck,omitempty"`
	// Limit is the code of the bound that stopped the vertex from getting
	// what it needs, if any.
	Limit ReasonCode `json:"limit,omitempty"`
	// Reasons explain this vertex; Explanation is one sentence with the
	// numbers.
	Reasons     []Reason `json:"reasons,omitempty"`
	Explanation string   `json:"explanation"`
}

// Plan is a job's resource shape.
type Plan struct {
	// Parallelism per vertex id.
	Parallelism map[string]int `json:"parallelism"`
	// DefaultParallelism is the largest vertex parallelism (what
	// parallelism.default / job.parallelism should say).
	DefaultParallelism  int     `json:"defaultParallelism"`
	Slots               int     `json:"slots"`
	SlotsPerTaskManager int     `json:"slotsPerTaskManager"`
	TaskManagers        int     `json:"taskManagers"`
	CPUPerTaskManager   float64 `json:"cpuPerTaskManager"`
	Cores               float64 `json:"cores"`
	// Memory is the TaskManager memory the plan sets in the same restart
	// (nil: unchanged). See TaskManagerMemory.FlinkConfiguration.
	Memory *TaskManagerMemory `json:"memory,omitempty"`
}

// HoldForMissing turns d into a hold because the data behind it is
// incomplete (what, one entry each, e.g. from metrics.Window.Snapshot):
// never rescale on partial data, even when the model could size the job from
// what there is. The hold is not Sized, so History.Record skips it.
func (d Decision) HoldForMissing(what []string) Decision {
	if len(what) == 0 {
		return d
	}
	msg := "metrics are incomplete: " + strings.Join(what, "; ")
	d.Action = ActionHold
	d.Sized = false
	d.Reasons = append([]Reason{{Code: ReasonMissingMetrics, Message: msg}}, d.Reasons...)
	d.Summary = "Hold: " + msg
	d.Recommended = d.Current
	vs := make([]VertexDecision, len(d.Vertices))
	copy(vs, d.Vertices)
	for i := range vs {
		vs[i].Recommended = vs[i].Current
	}
	d.Vertices = vs
	return d
}
