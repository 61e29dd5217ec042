package scaling

import (
	"math"
	"sort"
	"time"
)

// Rescale outcomes.
const (
	OutcomeInProgress = "InProgress"
	OutcomeSucceeded  = "Succeeded"
	OutcomeFailed     = "Failed"
	OutcomeRolledBack = "RolledBack"
)

// History is what past decisions and rescales taught. The controller keeps it
// (bounded) in the policy status so that it survives restarts; the model only
// reads it.
type History struct {
	// Rescales are past rescales, oldest first.
	Rescales []RescaleRecord `json:"rescales,omitempty"`
	// Recommendations are the model's required parallelism per vertex at
	// each past decision, oldest first. The stabilization windows read them.
	Recommendations []RecommendationRecord `json:"recommendations,omitempty"`
}

// RescaleRecord is one rescale from decision to stable running.
type RescaleRecord struct {
	DecidedAt time.Time `json:"decidedAt"`
	// CompletedAt is when the job ran stably at the new parallelism again;
	// zero while in progress.
	CompletedAt time.Time `json:"completedAt,omitempty"`
	// Downtime is how long the job processed nothing (savepoint, stop,
	// restore, restart), as measured.
	Downtime Duration        `json:"downtime"`
	Outcome  string          `json:"outcome"`
	Vertices []RescaleVertex `json:"vertices,omitempty"`
	// StateSizeBytes is the job's checkpointed state when the rescale was
	// decided (restore time grows with it); zero when unknown.
	StateSizeBytes float64 `json:"stateSizeBytes,omitempty"`
	// StartedTaskManagers is true when the rescale had to start
	// TaskManagers (more of them, or a new shape), whose start-up is part of
	// the downtime.
	StartedTaskManagers bool `json:"startedTaskManagers,omitempty"`
}

// RescaleVertex is one vertex of a rescale, with the true processing rates
// measured at the old parallelism before and at the new one after.
type RescaleVertex struct {
	ID   string `json:"id"`
	From int    `json:"from"`
	To   int    `json:"to"`
	// TrueRateBefore and TrueRateAfter are whole-vertex true processing
	// rates (records/s at 100 % busy); zero when not measured.
	TrueRateBefore float64 `json:"trueRateBefore,omitempty"`
	TrueRateAfter  float64 `json:"trueRateAfter,omitempty"`
}

// RecommendationRecord is the model's required parallelism at one decision.
type RecommendationRecord struct {
	At          time.Time      `json:"at"`
	Parallelism map[string]int `json:"parallelism"`
	// Arrival is each source's arrival rate (records/s) the decision used,
	// by vertex id: the series the load's trend is fitted to.
	Arrival map[string]float64 `json:"arrival,omitempty"`
}

// Record appends a decision's required parallelism and its sources' arrival
// rates, and drops entries older than keep; the controller calls it after each Decide so that the next
// decision sees this one. A decision that did not size the job (bad or
// insufficient data) is not recorded: its "required" is only the current
// parallelism and would hold back a scale-down for a whole window. The
// newest rescale, if it succeeded before d, gets the true processing rates d
// measured at its new parallelism (TrueRateAfter, once), for the
// scalability fit. It returns the updated history and leaves h as it was.
func (h History) Record(d Decision, keep time.Duration) History {
	if !d.Sized || len(d.Vertices) == 0 {
		return h
	}
	rec := RecommendationRecord{At: d.At, Parallelism: make(map[string]int, len(d.Vertices))}
	for _, v := range d.Vertices {
		rec.Parallelism[v.ID] = v.Required
		if v.Source {
			if rec.Arrival == nil {
				rec.Arrival = map[string]float64{}
			}
			rec.Arrival[v.ID] = v.TargetRate
		}
	}
	out := History{Rescales: withRatesAfter(h.Rescales, d)}
	cutoff := d.At.Add(-keep)
	for _, r := range h.Recommendations {
		if !r.At.Before(cutoff) && r.At.Before(d.At) {
			out.Recommendations = append(out.Recommendations, r)
		}
	}
	out.Recommendations = append(out.Recommendations, rec)
	return out
}

// withRatesAfter returns rescales with the newest one completed by d's true
// rates where it succeeded before d, ran the vertex at its new parallelism,
// and had no rate after yet. The input is not modified.
func withRatesAfter(rescales []RescaleRecord, d Decision) []RescaleRecord {
	n := len(rescales)
	if n == 0 {
		return rescales
	}
	last := rescales[n-1]
	if last.Outcome != OutcomeSucceeded || !d.At.After(last.CompletedAt) {
		return rescales
	}
	by := map[string]VertexDecision{}
	for _, v := range d.Vertices {
		by[v.ID] = v
	}
	vs := make([]RescaleVertex, len(last.Vertices))
	copy(vs, last.Vertices)
	changed := false
	for i := range vs {
		if nv, ok := by[vs[i].ID]; ok && vs[i].TrueRateAfter == 0 && nv.Current == vs[i].To && nv.TrueProcessingRate > 0 {
			vs[i].TrueRateAfter = nv.TrueProcessingRate
			changed = true
		}
	}
	if !changed {
		return rescales
	}
	out := make([]RescaleRecord, n)
	copy(out, rescales)
	last.Vertices = vs
	out[n-1] = last
	return out
}

// NewRescaleRecord is the record of a rescale d decides on snapshot s, in
// progress: the vertices with their true rates before, the state it will
// restore, and whether it starts TaskManagers.
func NewRescaleRecord(d Decision, s Snapshot) RescaleRecord {
	rec := RescaleRecord{DecidedAt: d.At, Outcome: OutcomeInProgress, StartedTaskManagers: StartsTaskManagers(s, d.Current, d.Recommended)}
	if c := s.Checkpoints; c != nil && c.StateSizeBytes > 0 && !math.IsInf(float64(c.StateSizeBytes), 0) {
		rec.StateSizeBytes = float64(c.StateSizeBytes)
	}
	for _, v := range d.Vertices {
		rec.Vertices = append(rec.Vertices, RescaleVertex{ID: v.ID, From: v.Current, To: v.Recommended, TrueRateBefore: v.TrueProcessingRate})
	}
	return rec
}

// lastRescale returns the most recent rescale, if any.
func (h *History) lastRescale() (RescaleRecord, bool) {
	if len(h.Rescales) == 0 {
		return RescaleRecord{}, false
	}
	latest := h.Rescales[0]
	for _, r := range h.Rescales[1:] {
		if r.DecidedAt.After(latest.DecidedAt) {
			latest = r
		}
	}
	return latest, true
}

// measuredRestart predicts restart downtime from history: the median of the
// last five measured downtimes of successful rescales that started
// TaskManagers as this one would (any, when none did), each moved by the
// change in restore time from the state it restored to stateNow (only when
// both are known and the state changed by more than a fifth: a measured
// downtime is the best prediction of the next like it). The median ignores
// one slow outlier, the window follows drift. ok is false when none is
// measured.
func (h *History) measuredRestart(startsTMs bool, restore func(float64) time.Duration, stateNow float64) (time.Duration, bool) {
	pick := func(kind bool, anyKind bool) []time.Duration {
		var ds []time.Duration
		for i := len(h.Rescales) - 1; i >= 0 && len(ds) < 5; i-- {
			r := h.Rescales[i]
			if r.Outcome != OutcomeSucceeded || r.Downtime.Duration <= 0 || (!anyKind && r.StartedTaskManagers != kind) {
				continue
			}
			d := r.Downtime.Duration
			if then := r.StateSizeBytes; then > 0 && stateNow > 0 && math.Abs(stateNow-then) > 0.2*then {
				d = max(d/2, d+restore(stateNow)-restore(then))
			}
			ds = append(ds, d)
		}
		return ds
	}
	ds := pick(startsTMs, false)
	if len(ds) == 0 {
		ds = pick(false, true)
	}
	if len(ds) == 0 {
		return 0, false
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds)%2 == 1 {
		return ds[len(ds)/2], true
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2, true
}

// anyStarted reports whether a measured successful rescale started
// TaskManagers.
func (h *History) anyStarted() bool {
	for _, r := range h.Rescales {
		if r.Outcome == OutcomeSucceeded && r.Downtime.Duration > 0 && r.StartedTaskManagers {
			return true
		}
	}
	return false
}

// observations returns the (parallelism, true rate) points history holds for
// a vertex, from successful rescales.
func (h *History) observations(id string) []point {
	var pts []point
	for _, r := range h.Rescales {
		if r.Outcome != OutcomeSucceeded {
			continue
		}
		for _, v := range r.Vertices {
			if v.ID != id {
				continue
			}
			if v.From > 0 && v.TrueRateBefore > 0 {
				pts = append(pts, point{n: float64(v.From), x: v.TrueRateBefore})
			}
			if v.To > 0 && v.TrueRateAfter > 0 {
				pts = append(pts, point{n: float64(v.To), x: v.TrueRateAfter})
			}
		}
	}
	return pts
}
