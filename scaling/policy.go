package scaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Policy is what the user asked for. Its JSON field names are those of the
// FlinkScalingPolicy spec, so a policy file and the CRD read the same. Start
// from DefaultPolicy and change what differs; ReadPolicy does that for JSON,
// so a field left out keeps its default and an explicit zero stays zero.
type Policy struct {
	// Utilization is the band of busy fraction each vertex should run in.
	Utilization Utilization `json:"utilization"`
	// MetricsWindow is how much history a snapshot must cover.
	MetricsWindow Duration `json:"metricsWindow"`
	// MinSamples is the least number of samples a window must hold.
	MinSamples int `json:"minSamples,omitempty"`
	// WarmUp is how long after the job becomes RUNNING its metrics are not
	// trusted (JIT, state restore, catch-up bursts).
	WarmUp Duration `json:"warmUp"`
	// MaxSnapshotAge is how old a snapshot may be when deciding.
	MaxSnapshotAge Duration `json:"maxSnapshotAge"`
	// CooldownPeriod is the least time between the end of one rescale and
	// the decision to start the next.
	CooldownPeriod Duration `json:"cooldownPeriod"`
	// CatchUpDuration is the time allowed to drain the backlog (the current
	// lag plus what piles up during the restart). Zero disables the
	// backlog terms.
	CatchUpDuration Duration `json:"catchUpDuration"`
	// RestartTime is the predicted downtime of a restart (beyond the
	// savepoint) until history has measured some.
	RestartTime Duration `json:"restartTime"`
	// TaskManagerStartup is how long a new TaskManager takes to start and
	// register (pod scheduling, image pull, JVM start), added to a restart
	// that starts TaskManagers until history has measured such restarts.
	TaskManagerStartup Duration `json:"taskManagerStartup"`
	// RestartCost values one restart's risk and disruption beyond its
	// measured downtime (re-read records, a lag spike, a chance of failing)
	// as this long of the job's slots: a rescale must save more than that,
	// plus its downtime, to be worth doing. See docs/model.md.
	RestartCost Duration `json:"restartCost"`
	// PlanningHorizon is the longest a plan is expected to hold: savings and
	// costs are counted over at most this long, and a scale-up sizes for the
	// load forecast no further ahead.
	PlanningHorizon Duration `json:"planningHorizon"`
	// MinParallelism and MaxParallelism bound every vertex.
	MinParallelism int `json:"minParallelism"`
	MaxParallelism int `json:"maxParallelism"`
	// Vertices holds per-vertex overrides, matched by id or name.
	Vertices []VertexOverride `json:"vertices,omitempty"`
	// Behavior bounds the speed of scaling in each direction.
	Behavior Behavior `json:"behavior"`
	// Resources shapes TaskManagers and caps what a job may use.
	Resources Resources `json:"resources"`
	// MinChange is the least relative reduction of cores that justifies a
	// scale-down restart (a scale-up is never skipped for being small).
	MinChange float64 `json:"minChange"`
	// Checkpoints says when checkpoints count as unhealthy.
	Checkpoints CheckpointPolicy `json:"checkpoints"`
	// Memory says when the TaskManagers' memory holds a rescale back.
	Memory MemoryPolicy `json:"memory"`
}

// MemoryPolicy holds back rescales of a job whose TaskManagers are short of
// memory: more subtasks on TaskManagers of the same size do not fix a
// GC-bound job, and fewer put more state on each.
type MemoryPolicy struct {
	// Mode says what becomes of the TaskManager memory recommendation:
	// Off (none is made), Recommend (the default: every report carries it,
	// nothing changes) or Apply (a plan that needs memory gets it in the
	// same restart, a rescale that restarts the TaskManagers anyway takes
	// the recommendation along, and a GC-bound job gets its memory in a
	// restart of its own). Whatever the mode, no plan is applied that the
	// TaskManagers' memory cannot hold: without Apply it is reduced.
	Mode MemoryMode `json:"mode,omitempty"`
	// Headroom is added on top of the memory the TaskManagers were seen to
	// use (heap, metaspace) when sizing a recommendation: 0.2 is 20 %.
	Headroom float64 `json:"headroom,omitempty"`
	// MinSaving: in Apply mode, a restart of its own only to give back
	// memory happens when the recommendation frees at least this share of
	// the TaskManagers' process memory. 0 turns such restarts off.
	MinSaving float64 `json:"minSaving,omitempty"`
	// MaxGCTimeRatio: a rescale waits while the busiest TaskManager spends
	// more than this share of its time in garbage collection, on average
	// over the window (Status.JVM.GarbageCollector.All.TimeMsPerSecond /
	// 1000). In (0,1]; 0 turns the check off.
	MaxGCTimeRatio float64 `json:"maxGCTimeRatio,omitempty"`
	// MaxHeapUsage: a rescale waits while the TaskManagers' heap in use,
	// on average, exceeds this share of the heap. In (0,1]; 0 (the
	// default) turns it off: heap in use includes garbage not yet
	// collected, so alone it says little.
	MaxHeapUsage float64 `json:"maxHeapUsage,omitempty"`
}

// MemoryMode is what the model does with memory recommendations.
type MemoryMode string

// Memory modes.
const (
	MemoryOff       MemoryMode = "Off"
	MemoryRecommend MemoryMode = "Recommend"
	MemoryApply     MemoryMode = "Apply"
)

// Utilization is a band of busy fractions in (0,1].
type Utilization struct {
	Target float64 `json:"target"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// VertexOverride changes the bounds of one vertex, found by ID or Name.
type VertexOverride struct {
	ID             string `json:"id,omitempty"`
	Name           string `json:"name,omitempty"`
	MinParallelism int    `json:"minParallelism,omitempty"`
	MaxParallelism int    `json:"maxParallelism,omitempty"`
	// Exclude keeps the vertex at its current parallelism. Its downstream
	// vertices are still scaled for the load it passes on.
	Exclude bool `json:"exclude,omitempty"`
}

// Behavior holds one rule per direction, like the HPA's behavior field.
type Behavior struct {
	ScaleUp   ScalingRules `json:"scaleUp"`
	ScaleDown ScalingRules `json:"scaleDown"`
}

// ScalingRules bounds one direction of scaling.
type ScalingRules struct {
	// StabilizationWindow: a scale-down takes the highest recommendation of
	// this window, and only once the window is covered; a scale-up takes the
	// lowest (zero: act at once).
	StabilizationWindow Duration `json:"stabilizationWindow"`
	// MaxFactor bounds one step: up to current×MaxFactor when scaling up,
	// down to current/MaxFactor when scaling down. Must be ≥ 1.
	MaxFactor float64 `json:"maxFactor"`
}

// Resources shapes the TaskManagers and caps the job.
type Resources struct {
	// SlotsPerTaskManager: zero ("auto") means one slot per CPU core.
	SlotsPerTaskManager SlotCount `json:"slotsPerTaskManager"`
	// MaxTaskManagers and MaxCores cap the job; zero means no cap.
	MaxTaskManagers int     `json:"maxTaskManagers,omitempty"`
	MaxCores        float64 `json:"maxCores,omitempty"`
}

// CheckpointPolicy decides when checkpoints are unhealthy.
type CheckpointPolicy struct {
	// MaxDurationRatio is the largest share of the checkpoint interval a
	// checkpoint may take before it counts as slow.
	MaxDurationRatio float64 `json:"maxDurationRatio"`
}

// DefaultPolicy is the policy a FlinkDeployment gets from the opt-in
// annotation alone. The numbers are chosen against the Flink operator's
// autoscaler defaults: a 0.7 target with a narrower band (fewer restarts for
// the same headroom), a 5 minute window (the operator's 15 minute one reacts
// slowly to steps), a 30 minute scale-down stabilization window (HPA-style,
// instead of the operator's fixed 1 hour delay).
func DefaultPolicy() Policy {
	return Policy{
		Utilization:        Utilization{Target: 0.7, Min: 0.4, Max: 0.85},
		MetricsWindow:      D(5 * time.Minute),
		MinSamples:         3,
		WarmUp:             D(2 * time.Minute),
		MaxSnapshotAge:     D(2 * time.Minute),
		CooldownPeriod:     D(5 * time.Minute),
		CatchUpDuration:    D(15 * time.Minute),
		RestartTime:        D(90 * time.Second),
		TaskManagerStartup: D(time.Minute),
		RestartCost:        D(20 * time.Minute),
		PlanningHorizon:    D(time.Hour),
		MinParallelism:     1,
		MaxParallelism:     1000,
		Behavior: Behavior{
			ScaleUp:   ScalingRules{MaxFactor: 10},
			ScaleDown: ScalingRules{StabilizationWindow: D(30 * time.Minute), MaxFactor: 4},
		},
		MinChange:   0.1,
		Checkpoints: CheckpointPolicy{MaxDurationRatio: 0.5},
		Memory:      MemoryPolicy{Mode: MemoryRecommend, Headroom: 0.2, MinSaving: 0.3, MaxGCTimeRatio: 0.3},
	}
}

// Validate checks the policy and returns every problem at once.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	u := p.Utilization
	for _, f := range []struct {
		name string
		v    float64
	}{{"target", u.Target}, {"min", u.Min}, {"max", u.Max}} {
		if !(f.v > 0 && f.v <= 1) {
			bad("utilization.%s must be in (0,1], got %g", f.name, f.v)
		}
	}
	if !(u.Min <= u.Target && u.Target <= u.Max) {
		bad("utilization must satisfy min ≤ target ≤ max, got %g ≤ %g ≤ %g", u.Min, u.Target, u.Max)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"metricsWindow", p.MetricsWindow}, {"warmUp", p.WarmUp}, {"maxSnapshotAge", p.MaxSnapshotAge},
		{"cooldownPeriod", p.CooldownPeriod}, {"catchUpDuration", p.CatchUpDuration}, {"restartTime", p.RestartTime},
		{"taskManagerStartup", p.TaskManagerStartup}, {"restartCost", p.RestartCost}, {"planningHorizon", p.PlanningHorizon},
		{"behavior.scaleUp.stabilizationWindow", p.Behavior.ScaleUp.StabilizationWindow},
		{"behavior.scaleDown.stabilizationWindow", p.Behavior.ScaleDown.StabilizationWindow},
	} {
		if d.v.Duration < 0 {
			bad("%s must not be negative, got %s", d.name, d.v)
		}
	}
	if p.MinSamples < 1 {
		bad("minSamples must be ≥ 1, got %d", p.MinSamples)
	}
	if p.MinParallelism < 1 || p.MaxParallelism < p.MinParallelism {
		bad("parallelism bounds must satisfy 1 ≤ minParallelism ≤ maxParallelism, got %d and %d", p.MinParallelism, p.MaxParallelism)
	}
	for i, o := range p.Vertices {
		if o.ID == "" && o.Name == "" {
			bad("vertices[%d] needs an id or a name", i)
		}
		if o.MinParallelism < 0 || o.MaxParallelism < 0 || (o.MaxParallelism > 0 && o.MinParallelism > o.MaxParallelism) {
			bad("vertices[%d] bounds must satisfy 0 ≤ minParallelism ≤ maxParallelism, got %d and %d", i, o.MinParallelism, o.MaxParallelism)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"behavior.scaleUp.maxFactor", p.Behavior.ScaleUp.MaxFactor}, {"behavior.scaleDown.maxFactor", p.Behavior.ScaleDown.MaxFactor}} {
		if !(f.v >= 1) || math.IsInf(f.v, 0) {
			bad("%s must be a finite number ≥ 1, got %g", f.name, f.v)
		}
	}
	if p.Resources.SlotsPerTaskManager < 0 {
		bad("resources.slotsPerTaskManager must be positive or auto, got %d", p.Resources.SlotsPerTaskManager)
	}
	if p.Resources.MaxTaskManagers < 0 || !(p.Resources.MaxCores >= 0) || math.IsInf(p.Resources.MaxCores, 0) {
		bad("resources.maxTaskManagers and maxCores must not be negative")
	}
	if !(p.MinChange >= 0 && p.MinChange < 1) {
		bad("minChange must be in [0,1), got %g", p.MinChange)
	}
	if !(p.Checkpoints.MaxDurationRatio > 0) || math.IsInf(p.Checkpoints.MaxDurationRatio, 0) {
		bad("checkpoints.maxDurationRatio must be positive, got %g", p.Checkpoints.MaxDurationRatio)
	}
	if !(p.Memory.MaxGCTimeRatio >= 0 && p.Memory.MaxGCTimeRatio <= 1) {
		bad("memory.maxGCTimeRatio must be in [0,1] (0: off), got %g", p.Memory.MaxGCTimeRatio)
	}
	if !(p.Memory.MaxHeapUsage >= 0 && p.Memory.MaxHeapUsage <= 1) {
		bad("memory.maxHeapUsage must be in [0,1] (0: off), got %g", p.Memory.MaxHeapUsage)
	}
	switch p.Memory.Mode {
	case "", MemoryOff, MemoryRecommend, MemoryApply:
	default:
		bad("memory.mode must be Off, Recommend or Apply, got %q", p.Memory.Mode)
	}
	if !(p.Memory.Headroom >= 0 && p.Memory.Headroom <= 10) {
		bad("memory.headroom must be in [0,10], got %g", p.Memory.Headroom)
	}
	if !(p.Memory.MinSaving >= 0 && p.Memory.MinSaving < 1) {
		bad("memory.minSaving must be in [0,1) (0: off), got %g", p.Memory.MinSaving)
	}
	return errors.Join(errs...)
}

// ReadPolicy decodes a policy file over DefaultPolicy (so absent fields keep
// their defaults; unknown fields are errors) and validates it.
func ReadPolicy(r io.Reader) (Policy, error) {
	p := DefaultPolicy()
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("decoding policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("invalid policy: %w", err)
	}
	return p, nil
}

// override returns the override that applies to a vertex, if any. An ID match
// beats a name match.
func (p *Policy) override(v *Vertex) (VertexOverride, bool) {
	var byName *VertexOverride
	for i := range p.Vertices {
		o := &p.Vertices[i]
		if o.ID != "" && o.ID == v.ID {
			return *o, true
		}
		if o.ID == "" && o.Name != "" && o.Name == v.Name && byName == nil {
			byName = o
		}
	}
	if byName != nil {
		return *byName, true
	}
	return VertexOverride{}, false
}

// HistoryKeep is how long History.Record must keep recommendations at the
// given polling interval: the longer stabilization window plus one metrics
// window (a scale-down looks that far back to tell a settled recommendation
// from one made while the load changed), or the trend window if longer,
// plus one polling interval.
func (p Policy) HistoryKeep(pollingInterval time.Duration) time.Duration {
	return max(p.Behavior.ScaleDown.StabilizationWindow.Duration+p.MetricsWindow.Duration,
		p.Behavior.ScaleUp.StabilizationWindow.Duration+p.MetricsWindow.Duration, trendWindow(&p)) + pollingInterval
}
