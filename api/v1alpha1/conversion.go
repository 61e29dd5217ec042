package v1alpha1

import (
	"errors"
	"fmt"
	"maps"
	"math"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flinkscale/flinkscale/scaling"
)

// ScalingPolicy returns the model's policy for this spec: scaling.DefaultPolicy
// with every field the spec sets applied, validated with
// scaling.Policy.Validate (whose error it returns, wrapped). Fields the model
// does not read (targetRef, mode, pollingInterval, triggers, excludedPeriods,
// allowStatelessUpgrade) are the controller's.
func (s *FlinkScalingPolicySpec) ScalingPolicy() (scaling.Policy, error) {
	p := scaling.DefaultPolicy()
	if u := s.Utilization; u != nil {
		setF(&p.Utilization.Target, u.Target)
		setF(&p.Utilization.Min, u.Min)
		setF(&p.Utilization.Max, u.Max)
	}
	setD(&p.MetricsWindow, s.MetricsWindow)
	if s.MinSamples != nil {
		p.MinSamples = int(*s.MinSamples)
	}
	setD(&p.WarmUp, s.WarmUp)
	setD(&p.MaxSnapshotAge, s.MaxSnapshotAge)
	setD(&p.CooldownPeriod, s.CooldownPeriod)
	setD(&p.CatchUpDuration, s.CatchUpDuration)
	setD(&p.RestartTime, s.RestartTime)
	setD(&p.TaskManagerStartup, s.TaskManagerStartup)
	setD(&p.RestartCost, s.RestartCost)
	setD(&p.PlanningHorizon, s.PlanningHorizon)
	if s.MinParallelism != nil {
		p.MinParallelism = int(*s.MinParallelism)
	}
	if s.MaxParallelism != nil {
		p.MaxParallelism = int(*s.MaxParallelism)
	}
	for _, o := range s.Vertices {
		p.Vertices = append(p.Vertices, scaling.VertexOverride{
			ID:             o.ID,
			Name:           o.Name,
			MinParallelism: int(o.MinParallelism),
			MaxParallelism: int(o.MaxParallelism),
			Exclude:        o.Exclude,
		})
	}
	if b := s.Behavior; b != nil {
		if r := b.ScaleUp; r != nil {
			setD(&p.Behavior.ScaleUp.StabilizationWindow, r.StabilizationWindow)
			setF(&p.Behavior.ScaleUp.MaxFactor, r.MaxFactor)
		}
		if r := b.ScaleDown; r != nil {
			setD(&p.Behavior.ScaleDown.StabilizationWindow, r.StabilizationWindow)
			setF(&p.Behavior.ScaleDown.MaxFactor, r.MaxFactor)
		}
	}
	var errs []error
	if r := s.Resources; r != nil {
		if r.SlotsPerTaskManager != nil {
			n, err := slotCount(*r.SlotsPerTaskManager)
			if err != nil {
				errs = append(errs, err)
			}
			p.Resources.SlotsPerTaskManager = n
		}
		p.Resources.MaxTaskManagers = int(r.MaxTaskManagers)
		p.Resources.MaxCores = r.MaxCores
	}
	setF(&p.MinChange, s.MinChange)
	if c := s.Checkpoints; c != nil {
		setF(&p.Checkpoints.MaxDurationRatio, c.MaxDurationRatio)
	}
	if m := s.Memory; m != nil {
		if m.Mode != "" {
			p.Memory.Mode = scaling.MemoryMode(m.Mode)
		}
		setF(&p.Memory.Headroom, m.Headroom)
		setF(&p.Memory.MinSaving, m.MinSaving)
		setF(&p.Memory.MaxGCTimeRatio, m.MaxGCTimeRatio)
		setF(&p.Memory.MaxHeapUsage, m.MaxHeapUsage)
	}
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return scaling.Policy{}, fmt.Errorf("invalid policy: %w", joinErrs(errs))
	}
	return p, nil
}

func setF(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

func setD(dst *scaling.Duration, v *metav1.Duration) {
	if v != nil {
		*dst = scaling.D(v.Duration)
	}
}

// slotCount reads slotsPerTaskManager: "auto" is 0, otherwise a positive int.
func slotCount(v intstr.IntOrString) (scaling.SlotCount, error) {
	if v.Type == intstr.String {
		if v.StrVal == "auto" {
			return 0, nil
		}
		return 0, fmt.Errorf("resources.slotsPerTaskManager must be a positive integer or \"auto\", got %q", v.StrVal)
	}
	if v.IntVal < 1 {
		return 0, fmt.Errorf("resources.slotsPerTaskManager must be a positive integer or \"auto\", got %d", v.IntVal)
	}
	return scaling.SlotCount(v.IntVal), nil
}

// ToHistory returns the scaling.History the status keeps (an empty one for
// nil). FromHistory(ToHistory(h)) is h and back, except that times are
// stored by the API server at second precision (metav1.Time) and that
// FromHistory drops non-finite numbers (JSON cannot write them): a NaN or
// infinite arrival rate is left out, a state size becomes 0 (unknown).
func (h *HistoryStatus) ToHistory() scaling.History {
	var out scaling.History
	if h == nil {
		return out
	}
	for _, r := range h.Rescales {
		rec := scaling.RescaleRecord{
			DecidedAt:           r.DecidedAt.Time,
			Downtime:            scaling.D(r.Downtime.Duration),
			Outcome:             r.Outcome,
			StateSizeBytes:      r.StateSizeBytes,
			StartedTaskManagers: r.StartedTaskManagers,
		}
		if r.CompletedAt != nil {
			rec.CompletedAt = r.CompletedAt.Time
		}
		for _, v := range r.Vertices {
			rec.Vertices = append(rec.Vertices, scaling.RescaleVertex{
				ID: v.ID, From: int(v.From), To: int(v.To),
				TrueRateBefore: v.TrueRateBefore, TrueRateAfter: v.TrueRateAfter,
			})
		}
		out.Rescales = append(out.Rescales, rec)
	}
	for _, r := range h.Recommendations {
		rec := scaling.RecommendationRecord{At: r.At.Time}
		if r.Parallelism != nil {
			rec.Parallelism = make(map[string]int, len(r.Parallelism))
			for id, n := range r.Parallelism {
				rec.Parallelism[id] = int(n)
			}
		}
		if len(r.Arrival) > 0 {
			rec.Arrival = maps.Clone(r.Arrival)
		}
		out.Recommendations = append(out.Recommendations, rec)
	}
	return out
}

// FromHistory returns the status form of h, keeping only the newest
// MaxRescaleHistory rescales and MaxRecommendationHistory recommendations
// (both are oldest first). It returns nil for an empty history. Numbers JSON
// cannot write (NaN, ±Inf) are not kept: see ToHistory.
func FromHistory(h scaling.History) *HistoryStatus {
	if len(h.Rescales) == 0 && len(h.Recommendations) == 0 {
		return nil
	}
	out := &HistoryStatus{}
	rescales := h.Rescales
	if len(rescales) > MaxRescaleHistory {
		rescales = rescales[len(rescales)-MaxRescaleHistory:]
	}
	for _, r := range rescales {
		rec := RescaleRecordStatus{
			DecidedAt:           metav1.NewTime(r.DecidedAt),
			Downtime:            metav1.Duration{Duration: r.Downtime.Duration},
			Outcome:             r.Outcome,
			StateSizeBytes:      finiteOrZero(r.StateSizeBytes),
			StartedTaskManagers: r.StartedTaskManagers,
		}
		if !r.CompletedAt.IsZero() {
			t := metav1.NewTime(r.CompletedAt)
			rec.CompletedAt = &t
		}
		for _, v := range r.Vertices {
			rec.Vertices = append(rec.Vertices, RescaleVertexStatus{
				ID: v.ID, From: int32(v.From), To: int32(v.To),
				TrueRateBefore: v.TrueRateBefore, TrueRateAfter: v.TrueRateAfter,
			})
		}
		out.Rescales = append(out.Rescales, rec)
	}
	recs := h.Recommendations
	if len(recs) > MaxRecommendationHistory {
		recs = recs[len(recs)-MaxRecommendationHistory:]
	}
	for _, r := range recs {
		rec := RecommendationStatus{At: metav1.NewTime(r.At)}
		if r.Parallelism != nil {
			rec.Parallelism = make(map[string]int32, len(r.Parallelism))
			for id, n := range r.Parallelism {
				rec.Parallelism[id] = int32(n)
			}
		}
		for id, v := range r.Arrival {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue // JSON has no such number: it would fail the whole status write
			}
			if rec.Arrival == nil {
				rec.Arrival = make(map[string]float64, len(r.Arrival))
			}
			rec.Arrival[id] = v
		}
		out.Recommendations = append(out.Recommendations, rec)
	}
	return out
}

// finiteOrZero is v, or 0 (unknown) for NaN and ±Inf, which JSON cannot
// write.
func finiteOrZero(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
