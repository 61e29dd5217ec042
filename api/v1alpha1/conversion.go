package v1alpha1

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

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
	var first time.Time
	if len(h.RecommendationRuns) > 0 {
		first = h.RecommendationRuns[0].From.Time
	}
	for _, r := range h.Recommendations {
		if !first.IsZero() && !r.At.Time.Before(first) {
			break // the runs have it
		}
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
	for i := range h.RecommendationRuns {
		run := &h.RecommendationRuns[i]
		// The run's decisions share its parallelism: one map (the model
		// never writes a history's).
		var par map[string]int
		if run.Parallelism != nil {
			par = make(map[string]int, len(run.Parallelism))
			for id, n := range run.Parallelism {
				par[id] = int(n)
			}
		}
		for j := range run.decisions() {
			rec := scaling.RecommendationRecord{At: run.at(j), Parallelism: par}
			for id, rates := range run.Arrival {
				if j < len(rates) {
					if rec.Arrival == nil {
						rec.Arrival = make(map[string]float64, len(run.Arrival))
					}
					rec.Arrival[id] = rates[j]
				}
			}
			out.Recommendations = append(out.Recommendations, rec)
		}
	}
	return out
}

// decisions is how many decisions the run holds.
func (r *RecommendationRunStatus) decisions() int { return 1 + len(r.Offsets) }

// at is the time of the run's j-th decision.
func (r *RecommendationRunStatus) at(j int) time.Time {
	if j == 0 {
		return r.From.Time
	}
	return r.From.Add(time.Duration(r.Offsets[j-1]) * time.Second)
}

// NewestRecommendation is the time of the history's newest decision and
// the parallelism it required; ok is false when it has none.
func (h *HistoryStatus) NewestRecommendation() (at time.Time, parallelism map[string]int32, ok bool) {
	switch {
	case h == nil:
		return time.Time{}, nil, false
	case len(h.RecommendationRuns) > 0:
		r := &h.RecommendationRuns[len(h.RecommendationRuns)-1]
		return r.at(r.decisions() - 1), r.Parallelism, true
	case len(h.Recommendations) > 0:
		r := &h.Recommendations[len(h.Recommendations)-1]
		return r.At.Time, r.Parallelism, true
	}
	return time.Time{}, nil, false
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
	for i := range recs {
		out.RecommendationRuns = addDecision(out.RecommendationRuns, &recs[i])
	}
	return out
}

// recommendations is h's decisions alone, in the model's form.
func (h *HistoryStatus) recommendations() []scaling.RecommendationRecord {
	if h == nil {
		return nil
	}
	return (&HistoryStatus{RecommendationRuns: h.RecommendationRuns, Recommendations: h.Recommendations}).ToHistory().Recommendations
}

// RecommendationsAfter is h's decisions newer than t, as runs that share
// nothing with h (nil when there are none).
func (h *HistoryStatus) RecommendationsAfter(t time.Time) []RecommendationRunStatus {
	if h == nil {
		return nil
	}
	if n := len(h.Recommendations); n > 0 && h.Recommendations[n-1].At.After(t) {
		return h.recommendationsAfter(t) // an older release's entries
	}
	var out []RecommendationRunStatus
	for i := range h.RecommendationRuns {
		r := &h.RecommendationRuns[i]
		for j := range r.decisions() {
			if r.at(j).After(t) {
				out = append(out, r.tail(j))
				break
			}
		}
	}
	return out
}

// recommendationsAfter is RecommendationsAfter through the model's form,
// for a history with entries of an older release.
func (h *HistoryStatus) recommendationsAfter(t time.Time) []RecommendationRunStatus {
	var newer []scaling.RecommendationRecord
	for _, r := range h.recommendations() {
		if r.At.After(t) {
			newer = append(newer, r)
		}
	}
	if len(newer) == 0 {
		return nil
	}
	return FromHistory(scaling.History{Recommendations: newer}).RecommendationRuns
}

// tail is the run of r's decisions from the j-th on, sharing nothing with
// r.
func (r *RecommendationRunStatus) tail(j int) RecommendationRunStatus {
	out := RecommendationRunStatus{From: metav1.NewTime(r.at(j)), Parallelism: maps.Clone(r.Parallelism)}
	if rest := r.decisions() - j - 1; rest > 0 {
		base := int32(0)
		if j > 0 {
			base = r.Offsets[j-1]
		}
		out.Offsets = make([]int32, rest)
		for k := range out.Offsets {
			out.Offsets[k] = r.Offsets[j+k] - base
		}
	}
	for id, rates := range r.Arrival {
		if j < len(rates) {
			if out.Arrival == nil {
				out.Arrival = make(map[string][]float64, len(r.Arrival))
			}
			out.Arrival[id] = slices.Clone(rates[j:])
		}
	}
	return out
}

// WithRecommendations is h followed by the decisions of runs newer than
// h's newest, at most MaxRecommendationHistory in all, as runs; h itself
// when runs has none newer. h is not modified: the runs it shares with
// the result are copied before they are extended or cut.
func (h *HistoryStatus) WithRecommendations(runs []RecommendationRunStatus) *HistoryStatus {
	newest, _, _ := h.NewestRecommendation()
	var add []RecommendationRunStatus
	for _, r := range runs {
		for j := range r.decisions() {
			if r.at(j).After(newest) {
				add = append(add, r.tail(j))
				break
			}
		}
	}
	if len(add) == 0 {
		return h
	}
	out := &HistoryStatus{}
	if h != nil {
		out.Rescales = h.Rescales
		if len(h.Recommendations) > 0 { // an older release's entries
			var recs []scaling.RecommendationRecord
			for _, r := range add {
				recs = append(recs, (&HistoryStatus{RecommendationRuns: []RecommendationRunStatus{r}}).recommendations()...)
			}
			out.RecommendationRuns = FromHistory(scaling.History{Recommendations: append(h.recommendations(), recs...)}).RecommendationRuns
			return out
		}
		out.RecommendationRuns = slices.Clone(h.RecommendationRuns)
	}
	// add's runs are new (tail): the first may continue h's newest run,
	// which is copied first; the others follow as they are.
	for _, r := range add {
		if n := len(out.RecommendationRuns); n > 0 && continues(&out.RecommendationRuns[n-1], &r) {
			last := &out.RecommendationRuns[n-1]
			*last = last.tail(0)
			shift := int32(r.From.Sub(last.From.Time) / time.Second)
			last.Offsets = append(last.Offsets, shift)
			for _, off := range r.Offsets {
				last.Offsets = append(last.Offsets, shift+off)
			}
			for id := range last.Arrival {
				last.Arrival[id] = append(last.Arrival[id], r.Arrival[id]...)
			}
			continue
		}
		out.RecommendationRuns = append(out.RecommendationRuns, r)
	}
	out.RecommendationRuns = bounded(out.RecommendationRuns)
	return out
}

// continues reports whether run next can be appended to run r: the same
// parallelism and sources, starting no earlier than r's newest decision,
// and every offset within an int32 of r's start.
func continues(r, next *RecommendationRunStatus) bool {
	last := next.at(next.decisions() - 1)
	if next.From.Time.Before(r.at(r.decisions()-1)) || last.Sub(r.From.Time)/time.Second > math.MaxInt32 ||
		!maps.Equal(r.Parallelism, next.Parallelism) || len(r.Arrival) != len(next.Arrival) {
		return false
	}
	for id := range r.Arrival {
		if rates, ok := next.Arrival[id]; !ok || len(rates) != next.decisions() {
			return false
		}
	}
	return true
}

// bounded is runs less their oldest decisions beyond
// MaxRecommendationHistory (a run cut is copied).
func bounded(runs []RecommendationRunStatus) []RecommendationRunStatus {
	total := 0
	for i := range runs {
		total += runs[i].decisions()
	}
	for drop := total - MaxRecommendationHistory; drop > 0; {
		if n := runs[0].decisions(); n <= drop {
			runs, drop = runs[1:], drop-n
			continue
		}
		runs[0] = runs[0].tail(drop)
		break
	}
	return runs
}

// addDecision adds r to runs (see RecommendationRunStatus). A history
// kept one entry per decision, each repeating every vertex's parallelism:
// with the default windows a job polled every 30 s keeps 71 decisions,
// which for 10 vertices were 33 kB of JSON and 82 kB in an informer's
// cache; as one run they are 1.4 kB and 2.9 kB, and decode 19 times
// faster (BenchmarkHistoryDecode).
//
// r goes to the newest run when r required the same
// parallelism and has a rate for the same sources at most
// math.MaxInt32 s after its start, else as a new run. Times are kept in
// whole seconds, as the API server keeps a metav1.Time, so that a history
// held in memory and one read back are the same.
func addDecision(runs []RecommendationRunStatus, r *scaling.RecommendationRecord) []RecommendationRunStatus {
	at := r.At.Truncate(time.Second)
	if n := len(runs); n > 0 {
		last := &runs[n-1]
		off := at.Sub(last.From.Time) / time.Second
		if off >= 0 && off <= math.MaxInt32 && !at.Before(last.at(last.decisions()-1)) &&
			sameParallelism(last.Parallelism, r.Parallelism) && sameSources(last.Arrival, r.Arrival) {
			last.Offsets = append(last.Offsets, int32(off))
			for id, rates := range last.Arrival {
				last.Arrival[id] = append(rates, r.Arrival[id])
			}
			return runs
		}
	}
	run := RecommendationRunStatus{From: metav1.NewTime(at)}
	if r.Parallelism != nil {
		run.Parallelism = make(map[string]int32, len(r.Parallelism))
		for id, n := range r.Parallelism {
			run.Parallelism[id] = int32(n)
		}
	}
	for id, v := range r.Arrival {
		if finite(v) {
			if run.Arrival == nil {
				run.Arrival = make(map[string][]float64, len(r.Arrival))
			}
			run.Arrival[id] = []float64{v}
		}
	}
	return append(runs, run)
}

// sameParallelism reports whether a run's parallelism is p.
func sameParallelism(run map[string]int32, p map[string]int) bool {
	if len(run) != len(p) || (run == nil) != (p == nil) {
		return false
	}
	for id, n := range p {
		if m, ok := run[id]; !ok || int(m) != n {
			return false
		}
	}
	return true
}

// sameSources reports whether a run's arrival rates are of the sources
// arrival has a finite rate for (JSON cannot write the others: see
// ToHistory).
func sameSources(run map[string][]float64, arrival map[string]float64) bool {
	n := 0
	for id, v := range arrival {
		if !finite(v) {
			continue
		}
		if _, ok := run[id]; !ok {
			return false
		}
		n++
	}
	return n == len(run)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

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
