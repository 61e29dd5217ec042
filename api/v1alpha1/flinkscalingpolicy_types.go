package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Annotations on a FlinkScalingPolicy. Like KEDA's autoscaling.keda.sh/paused,
// they let a human stop the controller without editing the spec (and without
// fighting a GitOps tool over spec.mode).
const (
	// AnnotationPaused: "true" makes the policy behave as mode Paused: the
	// controller keeps observing and reporting but neither recommends nor
	// applies a rescale.
	AnnotationPaused = "flinkscale.io/paused"
	// AnnotationPausedScaleIn: "true" blocks scale-downs only.
	AnnotationPausedScaleIn = "flinkscale.io/paused-scale-in"
	// AnnotationPausedScaleOut: "true" blocks scale-ups only.
	AnnotationPausedScaleOut = "flinkscale.io/paused-scale-out"
	// AnnotationVertexMetrics: "true" exports the policy's per-vertex
	// detail metrics (utilization, expected utilization, true processing
	// rate, target rate, backpressure) when the controller does not export
	// every policy's (flinkscale controller --vertex-detail-metrics);
	// "false" turns them off for the policy when it does.
	AnnotationVertexMetrics = "flinkscale.io/vertex-metrics"
)

// Mode says what the controller does with a decision.
// +kubebuilder:validation:Enum=Apply;DryRun;Paused
type Mode string

const (
	// ModeApply rescales the FlinkDeployment when the model says so.
	ModeApply Mode = "Apply"
	// ModeDryRun decides and reports in the status (and events) but never
	// touches the FlinkDeployment. It is the default, so that a new policy
	// can be watched before it is trusted.
	ModeDryRun Mode = "DryRun"
	// ModePaused neither decides nor applies; observing and status continue.
	ModePaused Mode = "Paused"
)

// FlinkScalingPolicy autoscales the parallelism of one Flink job (a
// FlinkDeployment of the Flink Kubernetes Operator in the same namespace).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fsp,categories=flinkscale
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.targetRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.rescalePath`,description="How a rescale happens: OperatorUpgrade, InPlace, InPlaceAndTaskManagers, TaskManagers or RecommendOnly"
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Current",type=string,JSONPath=`.status.currentParallelism`,description="Current parallelism per vertex, in topological order"
// +kubebuilder:printcolumn:name="Recommended",type=string,JSONPath=`.status.recommendedParallelism`,description="Recommended parallelism per vertex, in topological order"
// +kubebuilder:printcolumn:name="Lag",type=integer,JSONPath=`.status.lagRecords`,description="Kafka consumer lag in records, summed over sources"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FlinkScalingPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the user asks for.
	// +required
	Spec FlinkScalingPolicySpec `json:"spec"`
	// status is what the controller observed and decided.
	// +optional
	Status FlinkScalingPolicyStatus `json:"status,omitempty"`
}

// FlinkScalingPolicyList is a list of FlinkScalingPolicy.
//
// +kubebuilder:object:root=true
type FlinkScalingPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FlinkScalingPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FlinkScalingPolicy{}, &FlinkScalingPolicyList{})
}

// FlinkScalingPolicySpec is the desired autoscaling of one Flink job. Fields
// shared with scaling.Policy have its JSON names, meanings and defaults.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minParallelism) || !has(self.maxParallelism) || self.minParallelism <= self.maxParallelism",message="minParallelism must be less than or equal to maxParallelism"
type FlinkScalingPolicySpec struct {
	// targetRef names what to scale, in the policy's namespace: a FlinkDeployment,
	// a FlinkSessionJob, or the JobManager Deployment of a cluster without the
	// operator.
	// +required
	TargetRef TargetRef `json:"targetRef"`

	// mode is Apply (rescale the job), DryRun (decide and report only; the
	// default, so a new policy can be watched before it acts) or Paused
	// (neither decide nor act). The flinkscale.io/paused annotation
	// overrides it.
	// +kubebuilder:default=DryRun
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// pollingInterval is how often the controller collects metrics and
	// decides (like KEDA's pollingInterval, but a duration: "30s"). At
	// least 1s.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self) >= duration('1s')",message="must be at least 1s"
	// +optional
	PollingInterval *metav1.Duration `json:"pollingInterval,omitempty"`

	// utilization is the band of busy fraction (busyTimeMsPerSecond/1000)
	// each vertex should run in: a vertex outside [min,max] triggers a
	// rescale to target. Fractions in (0,1].
	// +kubebuilder:default={}
	// +optional
	Utilization *Utilization `json:"utilization,omitempty"`

	// metricsWindow is how much metric history a decision must cover.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	MetricsWindow *metav1.Duration `json:"metricsWindow,omitempty"`

	// minSamples is the least number of metric samples the window must hold.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinSamples *int32 `json:"minSamples,omitempty"`

	// warmUp is how long after the job becomes RUNNING its metrics are not
	// trusted (JIT, state restore, catch-up bursts).
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	WarmUp *metav1.Duration `json:"warmUp,omitempty"`

	// maxSnapshotAge is how old the newest metrics may be when deciding.
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	MaxSnapshotAge *metav1.Duration `json:"maxSnapshotAge,omitempty"`

	// cooldownPeriod is the least time between the end of one rescale and
	// the decision to start the next (unlike KEDA's, it gates every step,
	// not only scaling to zero: a Flink rescale is a restart).
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	CooldownPeriod *metav1.Duration `json:"cooldownPeriod,omitempty"`

	// catchUpDuration is the time allowed to drain the backlog (the current
	// lag plus what piles up during the restart). "0s" disables the backlog
	// terms.
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	CatchUpDuration *metav1.Duration `json:"catchUpDuration,omitempty"`

	// restartTime is the predicted downtime of a restart (beyond the
	// savepoint) until the rescale history has measured some.
	// +kubebuilder:default="90s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	RestartTime *metav1.Duration `json:"restartTime,omitempty"`

	// taskManagerStartup is how long a new TaskManager takes to start and
	// register (pod scheduling, image pull, JVM start): it is added to the
	// predicted downtime of a rescale that starts TaskManagers until the
	// rescale history has measured such restarts.
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	TaskManagerStartup *metav1.Duration `json:"taskManagerStartup,omitempty"`

	// restartCost values one restart's risk and disruption beyond its
	// downtime (records read again, a lag spike, a chance of failing) as
	// this long of the job's slots: a rescale must save more than its cost
	// (this plus its downtime) to be done. See
	// docs/model.md#cost-and-benefit.
	// +kubebuilder:default="20m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	RestartCost *metav1.Duration `json:"restartCost,omitempty"`

	// planningHorizon is the longest a plan is expected to hold: savings
	// and costs are counted over at most this long, and a scale-up sizes
	// for the load forecast no further ahead.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	PlanningHorizon *metav1.Duration `json:"planningHorizon,omitempty"`

	// minParallelism is the lower bound of every vertex's parallelism.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinParallelism *int32 `json:"minParallelism,omitempty"`

	// maxParallelism is the upper bound of every vertex's parallelism.
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxParallelism *int32 `json:"maxParallelism,omitempty"`

	// vertices overrides the bounds of single vertices, matched by id (the
	// Flink JobVertexID) or by name; an id match beats a name match.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Vertices []VertexOverride `json:"vertices,omitempty"`

	// behavior bounds the speed of scaling in each direction, like the
	// HorizontalPodAutoscaler's behavior field.
	// +kubebuilder:default={}
	// +optional
	Behavior *Behavior `json:"behavior,omitempty"`

	// triggers say where the load comes from: Kafka consumer groups (for
	// lag) and the Flink metrics source.
	// +optional
	Triggers *Triggers `json:"triggers,omitempty"`

	// resources shapes the TaskManagers and caps what the job may use.
	// +kubebuilder:default={}
	// +optional
	Resources *Resources `json:"resources,omitempty"`

	// minChange is the least relative reduction of cores that justifies a
	// scale-down restart, in [0,1). A scale-up is never skipped for being
	// small.
	// +kubebuilder:default=0.1
	// +kubebuilder:validation:XValidation:rule="self >= 0.0 && self < 1.0",message="minChange must be in [0,1)"
	// +optional
	MinChange *float64 `json:"minChange,omitempty"`

	// checkpoints says when checkpoints count as unhealthy (no scale-down
	// while they are).
	// +kubebuilder:default={}
	// +optional
	Checkpoints *CheckpointPolicy `json:"checkpoints,omitempty"`

	// memory says what becomes of the TaskManagers' memory: whether the
	// model recommends it (mode Recommend) or sets it in the rescale's
	// restart (mode Apply), with what headroom; and when it holds a rescale
	// back (MemoryPressure): a GC-bound job is not fixed by more subtasks
	// on TaskManagers of the same size.
	// +kubebuilder:default={}
	// +optional
	Memory *MemoryPolicy `json:"memory,omitempty"`

	// excludedPeriods are time windows in which no rescale starts (for
	// example a nightly batch, or business hours).
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	ExcludedPeriods []ExcludedPeriod `json:"excludedPeriods,omitempty"`

	// allowStatelessUpgrade lets the controller rescale a job whose
	// FlinkDeployment uses upgradeMode stateless (state is lost on every
	// rescale). Default false: such a job gets recommendations (as in
	// DryRun mode) and is never rescaled.
	// +kubebuilder:default=false
	// +optional
	AllowStatelessUpgrade bool `json:"allowStatelessUpgrade,omitempty"`
}

// TargetRef names the scaled object: a FlinkDeployment or FlinkSessionJob of
// the Apache Flink Kubernetes Operator, or the JobManager Deployment of a
// Flink cluster that runs without the operator (native Kubernetes or
// standalone). See docs/configuration.md, "Deployment modes".
//
// +kubebuilder:validation:XValidation:rule="self.kind in ['FlinkDeployment', 'FlinkSessionJob', 'Deployment']",message="targetRef.kind must be FlinkDeployment, FlinkSessionJob or Deployment"
// +kubebuilder:validation:XValidation:rule="!has(self.apiVersion) || (self.kind == 'Deployment' ? self.apiVersion == 'apps/v1' : self.apiVersion.startsWith('flink.apache.org/'))",message="targetRef.apiVersion must be apps/v1 for a Deployment and flink.apache.org/<version> for the operator's kinds"
// +kubebuilder:validation:XValidation:rule="self.kind == 'Deployment' || (!has(self.taskManagerDeployment) && !has(self.jobName))",message="targetRef.taskManagerDeployment and targetRef.jobName apply only to kind Deployment"
type TargetRef struct {
	// apiVersion of the target: flink.apache.org/v1beta1 for the
	// operator's kinds (the default), apps/v1 for a Deployment.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// kind of the target: FlinkDeployment (default), FlinkSessionJob, or
	// Deployment (the JobManager Deployment of a cluster without the
	// operator, reached over its REST API).
	// +kubebuilder:default=FlinkDeployment
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Kind string `json:"kind,omitempty"`
	// name of the target, in the policy's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// taskManagerDeployment names, for kind Deployment, the Deployment of a
	// standalone cluster's TaskManagers: flinkscale changes its replicas
	// through the scale subresource when a plan needs more or fewer
	// TaskManagers (in reactive mode, the only knob). Empty: the cluster
	// runs in native Kubernetes mode when the JobManager Deployment says so
	// (label type=flink-native-kubernetes), and Flink's ResourceManager
	// starts and stops TaskManager pods itself; otherwise the TaskManagers
	// are fixed and plans fit in their slots.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	TaskManagerDeployment string `json:"taskManagerDeployment,omitempty"`
	// jobName selects, for kind Deployment, the job by name on a cluster
	// that runs several (a session cluster). Empty: the cluster's only job
	// that is not finished, cancelled or failed.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	JobName string `json:"jobName,omitempty"`
}

// Target kinds (TargetRef.Kind).
const (
	KindFlinkDeployment = "FlinkDeployment"
	KindFlinkSessionJob = "FlinkSessionJob"
	KindDeployment      = "Deployment"
)

// EffectiveKind is the target's kind, FlinkDeployment when unset.
func (r TargetRef) EffectiveKind() string {
	if r.Kind == "" {
		return KindFlinkDeployment
	}
	return r.Kind
}

// Utilization is a band of busy fractions in (0,1] with min ≤ target ≤ max.
//
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.target) || self.min <= self.target",message="utilization.min must be less than or equal to utilization.target"
// +kubebuilder:validation:XValidation:rule="!has(self.target) || !has(self.max) || self.target <= self.max",message="utilization.target must be less than or equal to utilization.max"
type Utilization struct {
	// target is the busy fraction a rescale aims every vertex at.
	// +kubebuilder:default=0.7
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self <= 1.0",message="utilization.target must be in (0,1]"
	// +optional
	Target *float64 `json:"target,omitempty"`
	// min: a vertex less busy than this is underutilized (scale down).
	// +kubebuilder:default=0.4
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self <= 1.0",message="utilization.min must be in (0,1]"
	// +optional
	Min *float64 `json:"min,omitempty"`
	// max: a vertex busier than this is overloaded (scale up).
	// +kubebuilder:default=0.85
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self <= 1.0",message="utilization.max must be in (0,1]"
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// VertexOverride changes the bounds of one vertex, found by id or name.
//
// +kubebuilder:validation:XValidation:rule="has(self.id) || has(self.name)",message="a vertex override needs an id or a name"
// +kubebuilder:validation:XValidation:rule="!has(self.minParallelism) || !has(self.maxParallelism) || self.maxParallelism == 0 || self.minParallelism <= self.maxParallelism",message="vertex minParallelism must be less than or equal to maxParallelism"
type VertexOverride struct {
	// id is the Flink JobVertexID (32 hex digits).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ID string `json:"id,omitempty"`
	// name is the vertex name as the Flink web UI shows it.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Name string `json:"name,omitempty"`
	// minParallelism overrides spec.minParallelism for this vertex (0: keep).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinParallelism int32 `json:"minParallelism,omitempty"`
	// maxParallelism overrides spec.maxParallelism for this vertex (0: keep).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxParallelism int32 `json:"maxParallelism,omitempty"`
	// exclude keeps the vertex at its current parallelism. Its downstream
	// vertices are still scaled for the load it passes on.
	// +optional
	Exclude bool `json:"exclude,omitempty"`
}

// Behavior holds one rule per direction.
type Behavior struct {
	// scaleUp bounds scaling up. Defaults: no stabilization, maxFactor 10.
	// +kubebuilder:default={}
	// +optional
	ScaleUp *ScaleUpRules `json:"scaleUp,omitempty"`
	// scaleDown bounds scaling down. Defaults: 30m stabilization, maxFactor 4.
	// +kubebuilder:default={}
	// +optional
	ScaleDown *ScaleDownRules `json:"scaleDown,omitempty"`
}

// ScaleUpRules bounds scaling up.
type ScaleUpRules struct {
	// stabilizationWindow: a scale-up takes the lowest recommendation of this window ("0s": act at once).
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	StabilizationWindow *metav1.Duration `json:"stabilizationWindow,omitempty"`
	// maxFactor bounds one step: up to current×maxFactor. At least 1.
	// +kubebuilder:default=10
	// +kubebuilder:validation:XValidation:rule="self >= 1.0",message="maxFactor must be at least 1"
	// +optional
	MaxFactor *float64 `json:"maxFactor,omitempty"`
}

// ScaleDownRules bounds scaling down.
type ScaleDownRules struct {
	// stabilizationWindow: a scale-down takes the highest recommendation of this window, and only once the window is covered ("0s": act at once).
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +optional
	StabilizationWindow *metav1.Duration `json:"stabilizationWindow,omitempty"`
	// maxFactor bounds one step: down to current/maxFactor. At least 1.
	// +kubebuilder:default=4
	// +kubebuilder:validation:XValidation:rule="self >= 1.0",message="maxFactor must be at least 1"
	// +optional
	MaxFactor *float64 `json:"maxFactor,omitempty"`
}

// Resources shapes the TaskManagers and caps the job.
type Resources struct {
	// slotsPerTaskManager is a positive integer, or "auto" (the default):
	// one slot per TaskManager CPU core.
	// +kubebuilder:default=auto
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self == 'auto'",message="slotsPerTaskManager must be a positive integer or \"auto\""
	// +optional
	SlotsPerTaskManager *intstr.IntOrString `json:"slotsPerTaskManager,omitempty"`
	// maxTaskManagers caps the number of TaskManagers (0: no cap).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxTaskManagers int32 `json:"maxTaskManagers,omitempty"`
	// maxCores caps the job's TaskManager CPU cores (0: no cap).
	// +kubebuilder:validation:XValidation:rule="self >= 0.0",message="maxCores must not be negative"
	// +optional
	MaxCores float64 `json:"maxCores,omitempty"`
}

// CheckpointPolicy decides when checkpoints are unhealthy.
type CheckpointPolicy struct {
	// maxDurationRatio is the largest share of the checkpoint interval a
	// checkpoint may take before it counts as slow. Positive.
	// +kubebuilder:default=0.5
	// +kubebuilder:validation:XValidation:rule="self > 0.0",message="maxDurationRatio must be positive"
	// +optional
	MaxDurationRatio *float64 `json:"maxDurationRatio,omitempty"`
}

// MemoryMode is what the model does with TaskManager memory.
// +kubebuilder:validation:Enum=Off;Recommend;Apply
type MemoryMode string

// Memory modes.
const (
	// MemoryOff: no memory recommendation is made (every plan is still
	// checked against the TaskManagers' memory, and reduced to fit).
	MemoryOff MemoryMode = "Off"
	// MemoryRecommend: every decision carries a memory recommendation;
	// nothing but the parallelism changes.
	MemoryRecommend MemoryMode = "Recommend"
	// MemoryApply: a plan that needs memory gets it in the same restart,
	// and a FlinkDeployment's TaskManager memory is written with the plan
	// (spec.flinkConfiguration taskmanager.memory.* and
	// spec.taskManager.resource.memory).
	MemoryApply MemoryMode = "Apply"
)

// MemoryPolicy says what becomes of the TaskManagers' memory, and holds
// back rescales of a job whose TaskManagers are short of it.
type MemoryPolicy struct {
	// mode is Off, Recommend (the default: the recommendation is reported,
	// nothing changes) or Apply (a plan that needs memory gets it in the
	// same restart, a rescale that restarts the TaskManagers anyway takes
	// the recommendation along, and a GC-bound job gets its memory in a
	// restart of its own). Only a FlinkDeployment's memory is ever written.
	// Whatever the mode, no plan is applied that the TaskManagers' memory
	// cannot hold: without Apply it is reduced.
	// +kubebuilder:default=Recommend
	// +optional
	Mode MemoryMode `json:"mode,omitempty"`
	// headroom is added on top of the memory the TaskManagers were seen to
	// use (heap, metaspace, network buffers) when sizing a recommendation:
	// 0.2 is 20 %. In [0,10].
	// +kubebuilder:default=0.2
	// +kubebuilder:validation:XValidation:rule="self >= 0.0 && self <= 10.0",message="headroom must be in [0,10]"
	// +optional
	Headroom *float64 `json:"headroom,omitempty"`
	// minSaving: in mode Apply, a restart of its own only to give memory
	// back happens when the recommendation frees at least this share of
	// the TaskManagers' process memory. In [0,1); 0 turns such restarts
	// off.
	// +kubebuilder:default=0.3
	// +kubebuilder:validation:XValidation:rule="self >= 0.0 && self < 1.0",message="minSaving must be in [0,1)"
	// +optional
	MinSaving *float64 `json:"minSaving,omitempty"`
	// maxGCTimeRatio: a rescale waits while the busiest TaskManager spends
	// more than this share of its time in garbage collection, on average
	// over the metrics window (Flink 1.19+ reports it). In [0,1]; 0 turns
	// the check off.
	// +kubebuilder:default=0.3
	// +kubebuilder:validation:XValidation:rule="self >= 0.0 && self <= 1.0",message="maxGCTimeRatio must be in [0,1]"
	// +optional
	MaxGCTimeRatio *float64 `json:"maxGCTimeRatio,omitempty"`
	// maxHeapUsage: a rescale waits while the TaskManagers' heap in use
	// averages more than this share of the heap. In [0,1]; 0 (the default)
	// turns it off: heap in use includes uncollected garbage.
	// +kubebuilder:validation:XValidation:rule="self >= 0.0 && self <= 1.0",message="maxHeapUsage must be in [0,1]"
	// +optional
	MaxHeapUsage *float64 `json:"maxHeapUsage,omitempty"`
}

// ExcludedPeriod is a recurring window with no rescale: it starts at each
// time the cron schedule fires and lasts duration.
type ExcludedPeriod struct {
	// name identifies the period in reasons and events.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Name string `json:"name,omitempty"`
	// schedule is a standard 5-field cron expression (minute hour
	// day-of-month month day-of-week) or a descriptor such as @daily.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( +[^ ]+){4})$`
	// +required
	Schedule string `json:"schedule"`
	// duration is how long each window lasts.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$')",message="must be a non-negative duration such as 90s, 5m or 1h30m"
	// +required
	Duration metav1.Duration `json:"duration"`
	// timeZone is an IANA time zone name for schedule (default UTC).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// Triggers are the load sources of the job.
type Triggers struct {
	// kafka lists the Kafka consumer groups the job's sources read with.
	// Their lag feeds the catch-up term of the model.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Kafka []KafkaTrigger `json:"kafka,omitempty"`
	// flinkMetrics says where the job's Flink metrics come from (default:
	// the JobManager REST API).
	// +optional
	FlinkMetrics *FlinkMetricsSource `json:"flinkMetrics,omitempty"`
}

// KafkaTrigger is one Kafka consumer group, as in KEDA's kafka scaler.
type KafkaTrigger struct {
	// name identifies the trigger in the status and events.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Name string `json:"name,omitempty"`
	// bootstrapServers are host:port pairs of Kafka brokers.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=atomic
	// +required
	BootstrapServers []string `json:"bootstrapServers"`
	// consumerGroup is the group whose committed offsets measure the lag.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +required
	ConsumerGroup string `json:"consumerGroup"`
	// topics limits the lag to these topics (default: every topic the group
	// has offsets for).
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=249
	// +listType=atomic
	// +optional
	Topics []string `json:"topics,omitempty"`
	// authenticationRef names a Secret in the policy's namespace with the
	// SASL/TLS settings, under the keys sasl.mechanism (PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512), sasl.username, sasl.password,
	// tls.enabled, tls.ca.crt (or ca.crt), tls.crt, tls.key,
	// tls.server-name, tls.insecure-skip-verify and request.timeout (see
	// docs/metrics.md).
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
}

// AuthenticationRef names the object holding credentials.
type AuthenticationRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// kind of the object; only Secret for now.
	// +kubebuilder:default=Secret
	// +kubebuilder:validation:Enum=Secret
	// +optional
	Kind string `json:"kind,omitempty"`
}

// FlinkMetricsSource picks one source of Flink metrics; at most one is set.
// None set means the JobManager REST API with its defaults.
//
// +kubebuilder:validation:XValidation:rule="[has(self.rest), has(self.prometheus), has(self.promQL)].filter(x, x).size() <= 1",message="set at most one of rest, prometheus and promQL"
type FlinkMetricsSource struct {
	// rest reads the JobManager REST API (/jobs/:id/vertices/...).
	// +optional
	REST *FlinkRESTSource `json:"rest,omitempty"`
	// prometheus scrapes the Prometheus reporter of the Flink pods
	// (metrics.reporter.prom) directly.
	// +optional
	Prometheus *PrometheusReporterSource `json:"prometheus,omitempty"`
	// promQL queries a Prometheus-compatible server that scrapes the job.
	// +optional
	PromQL *PromQLSource `json:"promQL,omitempty"`
}

// FlinkRESTSource is the JobManager REST API.
type FlinkRESTSource struct {
	// url of the REST API (default: the FlinkDeployment's
	// <name>-rest.<namespace> service, port 8081).
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	URL string `json:"url,omitempty"`
	// authenticationRef names a Secret with REST credentials or TLS
	// material (keys: username, password, ca, cert, key).
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
}

// PrometheusReporterSource is Flink's Prometheus reporter on each pod.
type PrometheusReporterSource struct {
	// port the reporter listens on (metrics.reporter.prom.port).
	// +kubebuilder:default=9249
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// PromQLSource is a Prometheus-compatible query API.
type PromQLSource struct {
	// url of the server (the API base, e.g. http://prometheus:9090).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +required
	URL string `json:"url"`
	// authenticationRef names a Secret with credentials (keys: bearerToken,
	// or username and password; ca for TLS).
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
}
