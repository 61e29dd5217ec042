package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a FlinkScalingPolicy (metav1.Condition.Type).
const (
	// ConditionReady: the target exists, the policy is valid and metrics
	// are being collected.
	ConditionReady = "Ready"
	// ConditionScaling: a rescale is in progress (status.rescale is set).
	ConditionScaling = "Scaling"
	// ConditionLimited: the recommendation is capped by a bound (policy,
	// partitions, max parallelism, quota), so the job may still lag.
	ConditionLimited = "Limited"
	// ConditionStalled: the controller cannot make progress (target
	// missing, metrics unreachable, rescale failed or rolled back).
	ConditionStalled = "Stalled"
)

// Condition reasons (metav1.Condition.Reason). Decision reasons are
// scaling.ReasonCode values and may be used as condition reasons as well.
const (
	ReasonReady            = "Ready"
	ReasonTargetNotFound   = "TargetNotFound"
	ReasonInvalidPolicy    = "InvalidPolicy"
	ReasonMetricsError     = "MetricsError"
	ReasonPaused           = "Paused"
	ReasonDryRun           = "DryRun"
	ReasonRescaling        = "Rescaling"
	ReasonRescaleSucceeded = "RescaleSucceeded"
	ReasonRescaleFailed    = "RescaleFailed"
	ReasonRolledBack       = "RolledBack"
	ReasonIdle             = "Idle"
	ReasonNotLimited       = "NotLimited"
	ReasonLimited          = "Limited"
	ReasonProgressing      = "Progressing"
	ReasonInvalidTarget    = "InvalidTarget"
	ReasonExcludedPeriod   = "ExcludedPeriod"
	ReasonBackoff          = "Backoff"
	ReasonApplyFailed      = "ApplyFailed"
	ReasonTimedOut         = "TimedOut"
	ReasonPausedDirection  = "PausedDirection"
	// ReasonRecommendOnly: nothing can rescale the target safely (the
	// default scheduler without the operator, Flink before 1.18): the
	// policy recommends, as in DryRun, and says why.
	ReasonRecommendOnly = "RecommendOnly"
)

// Rescale paths (status.rescalePath).
const (
	PathOperatorUpgrade        = "OperatorUpgrade"
	PathInPlace                = "InPlace"
	PathInPlaceAndTaskManagers = "InPlaceAndTaskManagers"
	PathTaskManagers           = "TaskManagers"
	PathRecommendOnly          = "RecommendOnly"
)

// Bounds of the status history.
const (
	// MaxRescaleHistory is the most rescales status.history keeps.
	MaxRescaleHistory = 20
	// MaxRecommendationHistory is the most recommendations status.history
	// keeps (a 30m stabilization window at a 30s polling interval needs 60).
	MaxRecommendationHistory = 120
)

// FlinkScalingPolicyStatus is what the controller observed and decided.
type FlinkScalingPolicyStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Ready, Scaling, Limited and Stalled.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// currentParallelism summarizes the current parallelism per vertex in
	// topological order, e.g. "4/8/8" (the Current printer column).
	// +optional
	CurrentParallelism string `json:"currentParallelism,omitempty"`
	// recommendedParallelism summarizes the last recommendation the same
	// way (the Recommended printer column).
	// +optional
	RecommendedParallelism string `json:"recommendedParallelism,omitempty"`
	// lagRecords is the Kafka consumer lag in records, summed over sources.
	// +optional
	LagRecords int64 `json:"lagRecords,omitempty"`

	// rescalePath is how a rescale of the target happens now:
	// OperatorUpgrade (the operator stops the job with a savepoint and
	// restarts it), InPlace (the adaptive scheduler takes new resource
	// requirements, through the operator or Flink's REST API),
	// InPlaceAndTaskManagers (in place, with the TaskManager Deployment
	// scaled to the plan), TaskManagers (reactive mode: the TaskManager
	// Deployment's replicas are the only knob) or RecommendOnly (nothing
	// can rescale the job safely: recommendations only, and the Scaling
	// condition says why).
	// +kubebuilder:validation:Enum=OperatorUpgrade;InPlace;InPlaceAndTaskManagers;TaskManagers;RecommendOnly
	// +optional
	RescalePath string `json:"rescalePath,omitempty"`
	// rescalePathReason says why the path is what it is, e.g. "the job runs
	// the default scheduler and no operator can restart it".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	RescalePathReason string `json:"rescalePathReason,omitempty"`

	// vertices are the job's vertices with their current and recommended
	// parallelism, in topological order.
	// +kubebuilder:validation:MaxItems=200
	// +listType=atomic
	// +optional
	Vertices []VertexStatus `json:"vertices,omitempty"`

	// lastDecision is the model's most recent decision.
	// +optional
	LastDecision *DecisionStatus `json:"lastDecision,omitempty"`

	// rescale is the rescale in progress, if any.
	// +optional
	Rescale *RescaleStatus `json:"rescale,omitempty"`

	// history is what past decisions and rescales taught the model, bounded.
	// It lives in the status so that it survives controller restarts.
	// +optional
	History *HistoryStatus `json:"history,omitempty"`
}

// VertexStatus is one vertex's parallelism.
type VertexStatus struct {
	// id is the Flink JobVertexID.
	ID string `json:"id"`
	// name is the vertex name.
	// +optional
	Name string `json:"name,omitempty"`
	// current is the parallelism now.
	Current int32 `json:"current"`
	// recommended is what the last decision recommends.
	// +optional
	Recommended int32 `json:"recommended,omitempty"`
}

// DecisionStatus is a summary of one scaling.Decision.
type DecisionStatus struct {
	// time of the decision.
	Time metav1.Time `json:"time"`
	// action is Scale or Hold.
	// +kubebuilder:validation:Enum=Scale;Hold
	Action string `json:"action"`
	// summary is one sentence for humans.
	// +optional
	Summary string `json:"summary,omitempty"`
	// reasons explain the decision (machine-readable codes, see
	// scaling.ReasonCode).
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Reasons []ReasonStatus `json:"reasons,omitempty"`
	// memory is the TaskManager memory recommendation of the decision
	// (absent: the TaskManagers' memory was not reported, or the policy's
	// memory mode is Off).
	// +optional
	Memory *MemoryDecisionStatus `json:"memory,omitempty"`
}

// MemoryDecisionStatus is a decision's TaskManager memory recommendation
// in brief (scaling.MemoryRecommendation), in bytes.
type MemoryDecisionStatus struct {
	// currentProcessBytes is one TaskManager's process memory now.
	CurrentProcessBytes int64 `json:"currentProcessBytes"`
	// recommendedProcessBytes is the process memory recommended for the
	// recommended plan.
	RecommendedProcessBytes int64 `json:"recommendedProcessBytes"`
	// currentNetworkBytes is one TaskManager's network memory now.
	// +optional
	CurrentNetworkBytes int64 `json:"currentNetworkBytes,omitempty"`
	// recommendedNetworkBytes is the network memory recommended.
	// +optional
	RecommendedNetworkBytes int64 `json:"recommendedNetworkBytes,omitempty"`
	// applied is true when the recommended plan sets the recommended memory
	// in its restart (memory mode Apply).
	// +optional
	Applied bool `json:"applied,omitempty"`
	// savingBytes is the process memory the recommendation frees over the
	// recommended plan's TaskManagers (negative: it adds memory).
	// +optional
	SavingBytes int64 `json:"savingBytes,omitempty"`
}

// ReasonStatus is one scaling.Reason.
type ReasonStatus struct {
	// code is a stable machine-readable reason (scaling.ReasonCode).
	Code string `json:"code"`
	// vertex the reason concerns; empty for the whole job.
	// +optional
	Vertex string `json:"vertex,omitempty"`
	// message is a sentence with the numbers.
	// +optional
	Message string `json:"message,omitempty"`
}

// RescalePhase is the step of a rescale in progress.
// +kubebuilder:validation:Enum=Savepointing;Restarting;Stabilizing
type RescalePhase string

// Rescale phases.
const (
	// RescaleSavepointing: the job is taking a savepoint (or is being
	// suspended with one) before the new parallelism is applied.
	RescaleSavepointing RescalePhase = "Savepointing"
	// RescaleRestarting: the job is restarting at the new parallelism.
	RescaleRestarting RescalePhase = "Restarting"
	// RescaleStabilizing: the job runs again; the controller waits for it to
	// run stably before measuring downtime and rates.
	RescaleStabilizing RescalePhase = "Stabilizing"
)

// RescaleStatus is a rescale in progress.
type RescaleStatus struct {
	// phase is Savepointing, Restarting or Stabilizing.
	Phase RescalePhase `json:"phase"`
	// startTime is when the rescale was decided and applied.
	StartTime metav1.Time `json:"startTime"`
	// appliedParallelism is the parallelism per vertex id the rescale
	// applied to the FlinkDeployment.
	// +optional
	AppliedParallelism map[string]int32 `json:"appliedParallelism,omitempty"`
	// applied are the FlinkDeployment fields the rescale wrote.
	// +optional
	Applied *ManagedFields `json:"applied,omitempty"`
	// previous are the same fields before the rescale: a failed or rolled
	// back rescale writes them back, so the deployment's spec says again
	// what the job runs.
	// +optional
	Previous *ManagedFields `json:"previous,omitempty"`
	// fromJobID is the Flink job id before the rescale (a restart changes
	// it; an in-place rescale does not).
	// +optional
	FromJobID string `json:"fromJobID,omitempty"`
	// targetGeneration is the FlinkDeployment's metadata.generation after
	// the rescale was applied; the operator has acted on it once its
	// status.observedGeneration reaches it.
	// +optional
	TargetGeneration int64 `json:"targetGeneration,omitempty"`
	// message says what the controller is waiting for.
	// +optional
	Message string `json:"message,omitempty"`
}

// ManagedFields are the FlinkDeployment fields flinkscale manages (and owns
// with its server-side apply field manager). Empty or zero means absent.
type ManagedFields struct {
	// overrides is flinkConfiguration pipeline.jobvertex-parallelism-overrides.
	// +optional
	Overrides string `json:"overrides,omitempty"`
	// slots is flinkConfiguration taskmanager.numberOfTaskSlots.
	// +optional
	Slots string `json:"slots,omitempty"`
	// parallelism is spec.job.parallelism.
	// +optional
	Parallelism int32 `json:"parallelism,omitempty"`
	// taskManagerReplicas is spec.taskManager.replicas (standalone mode).
	// +optional
	TaskManagerReplicas int32 `json:"taskManagerReplicas,omitempty"`
	// memoryConfiguration are the flinkConfiguration keys of the
	// TaskManagers' memory model (taskmanager.memory.*) and their values;
	// a key not listed is absent.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	MemoryConfiguration map[string]string `json:"memoryConfiguration,omitempty"`
	// taskManagerMemory is spec.taskManager.resource.memory.
	// +optional
	TaskManagerMemory string `json:"taskManagerMemory,omitempty"`
}

// HistoryStatus is a bounded scaling.History (see ToHistory and
// FromHistory).
type HistoryStatus struct {
	// rescales are past rescales, oldest first.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	Rescales []RescaleRecordStatus `json:"rescales,omitempty"`
	// recommendationRuns are the model's past decisions, oldest first: its
	// required parallelism per vertex, which the stabilization windows
	// read, and the sources' arrival rates, which the load's trend is
	// fitted to. Consecutive decisions that required the same parallelism
	// form one run. At most 120 decisions are kept in all.
	// +kubebuilder:validation:MaxItems=120
	// +listType=atomic
	// +optional
	RecommendationRuns []RecommendationRunStatus `json:"recommendationRuns,omitempty"`
	// recommendations are past decisions one entry each, as flinkscale
	// wrote them before recommendationRuns: read (older than the first
	// run), never written; the next status write replaces them with runs.
	// +kubebuilder:validation:MaxItems=120
	// +listType=atomic
	// +optional
	Recommendations []RecommendationStatus `json:"recommendations,omitempty"`
}

// RecommendationRunStatus is a run of consecutive decisions that required
// the same parallelism and read the same sources' arrival rates: a steady
// job's decisions, one per poll, are one run, with a time and an arrival
// rate per decision.
type RecommendationRunStatus struct {
	// from is the time of the run's first decision.
	From metav1.Time `json:"from"`
	// offsets are the times of the run's later decisions, in whole seconds
	// after from, in order.
	// +kubebuilder:validation:MaxItems=119
	// +listType=atomic
	// +optional
	Offsets []int32 `json:"offsets,omitempty"`
	// parallelism is the required parallelism per vertex id, at every
	// decision of the run.
	Parallelism map[string]int32 `json:"parallelism"`
	// arrival is each source's arrival rate (records/s) at each decision
	// of the run, per source vertex id: one rate per decision, in order
	// (from, then offsets).
	// +optional
	Arrival map[string][]float64 `json:"arrival,omitempty"`
}

// RescaleRecordStatus is one past rescale (scaling.RescaleRecord).
type RescaleRecordStatus struct {
	// decidedAt is when the rescale was decided.
	DecidedAt metav1.Time `json:"decidedAt"`
	// completedAt is when the job ran stably at the new parallelism again;
	// absent while in progress.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// downtime is how long the job processed nothing, as measured.
	// +optional
	Downtime metav1.Duration `json:"downtime,omitempty"`
	// outcome is InProgress, Succeeded, Failed or RolledBack.
	// +kubebuilder:validation:Enum=InProgress;Succeeded;Failed;RolledBack
	Outcome string `json:"outcome"`
	// vertices are the rescaled vertices, before and after.
	// +kubebuilder:validation:MaxItems=200
	// +listType=atomic
	// +optional
	Vertices []RescaleVertexStatus `json:"vertices,omitempty"`
	// stateSizeBytes is the job's checkpointed state size in bytes when the
	// rescale was decided (restore time grows with it); 0 when unknown.
	// +optional
	StateSizeBytes float64 `json:"stateSizeBytes,omitempty"`
	// startedTaskManagers is true when the rescale had to start
	// TaskManagers (more of them, or a new shape), whose start-up is part
	// of the downtime.
	// +optional
	StartedTaskManagers bool `json:"startedTaskManagers,omitempty"`
}

// RescaleVertexStatus is one vertex of a past rescale, with the true
// processing rates measured before (at from) and after (at to).
type RescaleVertexStatus struct {
	// id is the Flink JobVertexID.
	ID string `json:"id"`
	// from is the parallelism before.
	From int32 `json:"from"`
	// to is the parallelism after.
	To int32 `json:"to"`
	// trueRateBefore is the whole-vertex true processing rate (records/s
	// at 100 % busy) before; 0 when not measured.
	// +optional
	TrueRateBefore float64 `json:"trueRateBefore,omitempty"`
	// trueRateAfter is the whole-vertex true processing rate (records/s at
	// 100 % busy) measured after the rescale, at to; 0 when not measured.
	// +optional
	TrueRateAfter float64 `json:"trueRateAfter,omitempty"`
}

// RecommendationStatus is the model's required parallelism at one decision.
type RecommendationStatus struct {
	// at is the time of the decision.
	At metav1.Time `json:"at"`
	// parallelism is the required parallelism per vertex id.
	Parallelism map[string]int32 `json:"parallelism"`
	// arrival is each source's arrival rate (records/s) the decision used,
	// per source vertex id: the series the load's trend is fitted to.
	// +optional
	Arrival map[string]float64 `json:"arrival,omitempty"`
}
