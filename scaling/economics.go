package scaling

import (
	"fmt"
	"math"
	"time"
)

// Economics is the cost–benefit behind a decision, in slot-hours: what a
// plan holds, how long it is expected to hold, what the restart costs and
// what it saves. docs/model.md ("Cost and benefit") gives the objective.
type Economics struct {
	// Horizon is the planning horizon the plan is counted over.
	Horizon Duration `json:"horizon"`
	// Lookahead is how far ahead of now the recommended plan was sized
	// (zero: for the load now).
	Lookahead Duration `json:"lookahead,omitempty"`
	// HeldSlots and PlanSlots are the slots of whole TaskManagers held now
	// and after the plan, as Flink will hold them (an in-place scale-down
	// frees only TaskManagers left without a slot in use).
	HeldSlots int `json:"heldSlots"`
	PlanSlots int `json:"planSlots"`
	// HoldsFor is how long the plan is expected to last before the
	// forecast load needs another rescale, at most the horizon.
	HoldsFor Duration `json:"holdsFor"`
	// SavedSlotHours is the slots freed times HoldsFor (negative: added).
	SavedSlotHours float64 `json:"savedSlotHours"`
	// RestartSlotHours is the restart's cost: the slots held through the
	// predicted downtime plus the policy's restartCost of them.
	RestartSlotHours float64 `json:"restartSlotHours"`
	// MinStepSlots is, while the load falls, the smallest scale-down step
	// that pays for its restart before the next one (zero otherwise).
	MinStepSlots float64 `json:"minStepSlots,omitempty"`
	// Trends are the sources' fitted arrival trends.
	Trends []SourceTrend `json:"trends,omitempty"`
}

// SourceTrend is one source's arrival trend.
type SourceTrend struct {
	Vertex string `json:"vertex"`
	// RatePerSecond is the arrival rate now; SlopePerMinute its change per
	// minute and StdErrPerMinute the slope's standard error.
	RatePerSecond   float64  `json:"ratePerSecond"`
	SlopePerMinute  float64  `json:"slopePerMinute"`
	StdErrPerMinute float64  `json:"stdErrPerMinute"`
	Points          int      `json:"points"`
	Span            Duration `json:"span"`
	// Significant: the slope is far enough from zero, in both halves of the
	// window with one sign, to plan with.
	Significant bool `json:"significant"`
}

// fitTrends fits each source's arrival trend to history.
func (m *model) fitTrends() {
	m.trends = map[*vertex]trend{}
	w := trendWindow(m.p)
	for _, x := range m.j.vertices {
		if !x.isSource() {
			continue
		}
		tr := fitTrend(m.h.arrivalSeries(x.v.ID, m.now, w, x.target), m.p.MetricsWindow.Duration)
		m.trends[x] = tr
		if tr.significant {
			dir := "rising"
			if tr.slope < 0 {
				dir = "falling"
			}
			x.reason(ReasonTrendForecast, "arrivals %s %.3g rec/s per minute (±%.2g) over the last %s",
				dir, 60*tr.slope, 60*tr.se, tr.span.Round(time.Second))
		}
	}
}

// trending reports whether any source's load has a significant trend in the
// given direction (+1 rising, −1 falling).
func (m *model) trending(dir float64) bool {
	for _, tr := range m.trends {
		if tr.significant && tr.slope*dir > 0 {
			return true
		}
	}
	return false
}

// targetsAt is every vertex's target rate t seconds from now under the
// sources' trends, carried downstream through the edges' ratios.
func (m *model) targetsAt(t float64) map[*vertex]float64 {
	out := make(map[*vertex]float64, len(m.j.vertices))
	for _, x := range m.j.vertices {
		if x.isSource() {
			out[x] = m.trends[x].at(x.target, t)
			continue
		}
		sum := 0.0
		for _, e := range x.ins {
			sum += out[e.from] * e.ratio
		}
		out[x] = sum
	}
	return out
}

// heldSlots is the slots of the whole TaskManagers the job holds now.
func (m *model) heldSlots() int {
	return m.d.Current.TaskManagers * m.j.slots
}

// planTaskManagers is how many TaskManagers Flink will hold after plan: in
// place (same shape, adaptive scheduler), a scale-down releases only
// TaskManagers left without a slot in use, and Flink spreads the slots it
// keeps over the TaskManagers it has (on real Flink 1.20.3 a job going from
// 8 slots on 2 TaskManagers of 4 to 3 slots kept both), so a TaskManager
// goes only when fewer slots than TaskManagers remain.
func (m *model) planTaskManagers(pl Plan) int {
	cur := m.d.Current
	if InPlace(*m.j.s, cur, pl) {
		return max(pl.TaskManagers, min(cur.TaskManagers, pl.Slots))
	}
	return pl.TaskManagers
}

// startsTaskManagers reports whether a plan starts TaskManagers.
func (m *model) startsTaskManagers(pl Plan) bool {
	return StartsTaskManagers(*m.j.s, m.d.Current, pl)
}

// InPlace reports whether going from plan cur to plan next happens in place:
// the job rescales in place (Snapshot.RescaleInPlace) and the TaskManager
// shape stays.
func InPlace(s Snapshot, cur, next Plan) bool {
	return s.RescaleInPlace && next.Memory == nil && next.SlotsPerTaskManager == cur.SlotsPerTaskManager &&
		math.Abs(next.CPUPerTaskManager-cur.CPUPerTaskManager) <= 1e-9
}

// StartsTaskManagers reports whether going from plan cur to plan next
// starts TaskManagers, whose start-up is then part of the downtime: every
// rescale that is not in place (a savepoint upgrade redeploys the cluster),
// and one in place that needs more of them.
func StartsTaskManagers(s Snapshot, cur, next Plan) bool {
	return !InPlace(s, cur, next) || next.TaskManagers > cur.TaskManagers
}

// restartSlotSeconds is what a restart costs, in slot-seconds: the slots
// held through the downtime, plus the policy's restartCost of them (the
// risk and disruption a restart brings beyond its downtime).
func (m *model) restartSlotSeconds(slots int, downtime time.Duration) float64 {
	return float64(slots) * (downtime + m.p.RestartCost.Duration).Seconds()
}

// holdsFor is how long a parallelism assignment lasts under the forecast:
// the first time, scanning the horizon, that some vertex would run above the
// maximum utilization. The full horizon when none would.
func (m *model) holdsFor(par map[string]int) time.Duration {
	h := m.p.PlanningHorizon.Duration
	if !m.trending(1) || h <= 0 {
		return h
	}
	const steps = 24
	for i := 1; i <= steps; i++ {
		t := h.Seconds() * float64(i) / steps
		tg := m.targetsAt(t)
		for _, x := range m.j.vertices {
			if !x.measurable || x.excluded {
				continue
			}
			if x.capAt(par[x.v.ID], m.p.Utilization.Max)*(1+rel) < tg[x] {
				// It lasts until the previous point of the scan.
				return h * time.Duration(i-1) / steps
			}
		}
	}
	return h
}

// wholeSlots is the slots of the whole TaskManagers an assignment needs.
func (m *model) wholeSlots(par map[string]int) int {
	spt := slotsPerTaskManager(m.p, m.j.cpu)
	return (m.j.slotsFor(par) + spt - 1) / spt * spt
}

// sizeAhead sizes a job whose load rises for the load forecast ahead, when
// something is overloaded. It weighs plans sized for the load up to the
// horizon ahead, each by what it costs per second of its life beyond what
// the load needs: the slots it holds over the slots the forecast load needs
// on average while it lasts, plus its restart spread over how long it
// lasts. A steep ramp gets a plan that lasts, a gentle one or a flat load
// the smallest that fits.
func (m *model) sizeAhead() {
	h := m.p.PlanningHorizon.Duration
	if h <= 0 || !m.trending(1) || !m.anyTrigger(ReasonOverloaded, ReasonCheckpointPressure) {
		return
	}
	util := m.p.Utilization.Target
	// What the forecast load needs, on a grid over the horizon.
	const grid = 24
	need := make([]float64, grid+1)
	for i := range need {
		tg := m.targetsAt(h.Seconds() * float64(i) / grid)
		par := make(map[string]int, len(m.j.vertices))
		for _, x := range m.j.vertices {
			q := m.required[x]
			if x.measurable && !x.excluded {
				q = x.requiredFor(tg[x], util)
			}
			par[x.v.ID] = q
		}
		need[i] = float64(m.wholeSlots(par))
	}
	avgNeed := func(life time.Duration) float64 {
		sum, n := 0.0, 0
		for i := range need {
			if time.Duration(float64(h)*float64(i)/grid) <= life {
				sum += need[i]
				n++
			}
		}
		return sum / float64(n)
	}
	best, bestCost, bestT := m.required, math.Inf(1), time.Duration(0)
	const steps = 12
	for i := 0; i <= steps; i++ {
		t := time.Duration(float64(h) * float64(i) / steps)
		tg := m.targetsAt(t.Seconds())
		par := make(map[string]int, len(m.j.vertices))
		req := make(map[*vertex]int, len(m.j.vertices))
		for _, x := range m.j.vertices {
			q := m.required[x]
			if x.measurable && !x.excluded {
				q = max(q, x.requiredFor(tg[x], util))
			}
			req[x] = q
			par[x.v.ID] = q
		}
		slots := m.wholeSlots(par)
		life := max(m.holdsFor(par), m.p.MetricsWindow.Duration)
		cost := float64(slots) - avgNeed(life) + m.restartSlotSeconds(slots, m.downtime)/life.Seconds()
		if cost < bestCost*(1-1e-9) {
			best, bestCost, bestT = req, cost, t
		}
	}
	if bestT > 0 {
		m.required = best
		m.lookahead = bestT
		m.trigger = append(m.trigger, Reason{Code: ReasonTrendForecast, Message: fmt.Sprintf(
			"the load rises: sized for the load forecast %s ahead, the plan whose idle slots plus restart, spread over how long it lasts, cost least",
			bestT.Round(time.Second))})
	}
}

func (m *model) anyTrigger(codes ...ReasonCode) bool {
	for _, r := range m.trigger {
		for _, c := range codes {
			if r.Code == c {
				return true
			}
		}
	}
	return false
}

// economics fills the decision's cost–benefit for the recommended plan and,
// for a plan that only scales down, says whether it pays: the slots it
// frees (as Flink will hold them) times how long it holds must exceed its
// restart's cost, and while the load falls each step must be large enough
// that the restarts it takes cost no more than the slots waiting would hold
// (the economic order quantity: √(2·R·r), for a restart cost R in
// slot-seconds and a fall of r slots per second). It returns a reason to
// hold, or nil.
func (m *model) economics(up bool) *Reason {
	d, p := m.d, m.p
	e := &Economics{Horizon: p.PlanningHorizon, Lookahead: D(m.lookahead), HeldSlots: m.heldSlots()}
	for _, x := range m.j.vertices {
		if tr, ok := m.trends[x]; ok && tr.points > 0 {
			e.Trends = append(e.Trends, SourceTrend{Vertex: x.v.ID, RatePerSecond: x.target, SlopePerMinute: 60 * tr.slope,
				StdErrPerMinute: 60 * tr.se, Points: tr.points, Span: D(tr.span), Significant: tr.significant})
		}
	}
	d.Economics = e
	planTMs := m.planTaskManagers(d.Recommended)
	e.PlanSlots = planTMs * d.Recommended.SlotsPerTaskManager
	e.HoldsFor = D(m.holdsFor(d.Recommended.Parallelism))
	saved := e.HeldSlots - e.PlanSlots
	e.SavedSlotHours = float64(saved) * e.HoldsFor.Hours()
	restart := m.restartSlotSeconds(e.HeldSlots, m.downtime)
	e.RestartSlotHours = restart / 3600
	if up {
		return nil
	}
	if saved <= 0 {
		why := "frees no TaskManager"
		if planTMs > d.Recommended.TaskManagers {
			why = fmt.Sprintf("frees no TaskManager: in place, Flink keeps the slots spread over all %d TaskManagers", planTMs)
		}
		return &Reason{Code: ReasonGainBelowCost, Message: fmt.Sprintf("scaling down %s (%d→%d slots in use)", why, d.Current.Slots, d.Recommended.Slots)}
	}
	if m.trending(-1) {
		// The fall in slots per second: the plan's slots shrink with the
		// load, in proportion, at the steepest source's relative rate.
		fall := 0.0
		for x, tr := range m.trends {
			if tr.significant && tr.slope < 0 && x.target > 0 {
				fall = math.Max(fall, -tr.slope/x.target)
			}
		}
		r := fall * float64(e.PlanSlots)
		e.MinStepSlots = math.Sqrt(2 * restart * r)
		if float64(saved) < e.MinStepSlots*(1-1e-9) {
			return &Reason{Code: ReasonLoadFalling, Message: fmt.Sprintf(
				"the load falls %.2g%% per minute: a step of %d slots would be followed by the next before it paid for its restart; scaling down waits for a step of %.1f slots (√(2 × %.3g slot-hours restart × %.2g slots/hour)) or for the fall to flatten",
				100*60*fall, saved, e.MinStepSlots, restart/3600, 3600*r)}
		}
	}
	if r := m.waitForOneStep(e, restart); r != nil {
		return r
	}
	if e.SavedSlotHours < e.RestartSlotHours {
		return &Reason{Code: ReasonGainBelowCost, Message: fmt.Sprintf(
			"scaling down frees %d slots for %s (%.3g slot-hours), less than the restart costs: %d slots × (%s downtime + %s restart cost) = %.3g slot-hours",
			saved, e.HoldsFor.Round(time.Minute), e.SavedSlotHours, e.HeldSlots, m.downtime.Round(time.Second), p.RestartCost, e.RestartSlotHours)}
	}
	return nil
}

// waitForOneStep holds a scale-down that stops above what the job needs
// now only because the stabilization window still holds higher
// recommendations: once they leave the window, a second scale-down would
// follow. Stepping now saves the slots it frees until then; waiting saves a
// restart. It waits when the restart costs more.
func (m *model) waitForOneStep(e *Economics, restart float64) *Reason {
	w := m.p.Behavior.ScaleDown.StabilizationWindow.Duration
	low := make(map[string]int, len(m.j.vertices))
	var clears time.Duration
	for _, x := range m.j.vertices {
		id := x.v.ID
		rec := m.d.Recommended.Parallelism[id]
		low[id] = rec
		req := max(m.required[x], x.lower)
		if rec <= req || rec >= x.p {
			continue
		}
		low[id] = req
		// The window still holds a recommendation above req until the
		// last of them is older than w.
		for _, r := range m.h.Recommendations {
			if q, ok := r.Parallelism[id]; ok && q > req && !r.At.After(m.now) {
				clears = max(clears, r.At.Add(w).Sub(m.now))
			}
		}
	}
	if clears <= 0 || clears > m.p.PlanningHorizon.Duration {
		return nil
	}
	lowPlan := m.j.makePlan(low, m.d.Recommended.SlotsPerTaskManager, m.d.Recommended.CPUPerTaskManager)
	lowSlots := m.planTaskManagers(lowPlan) * lowPlan.SlotsPerTaskManager
	if lowSlots >= e.PlanSlots {
		return nil
	}
	now := float64(e.HeldSlots-e.PlanSlots) * clears.Seconds()
	if now >= restart {
		return nil
	}
	return &Reason{Code: ReasonScaleDownStabilizing, Message: fmt.Sprintf(
		"scaling down now to %d slots and again to %d when higher recommendations leave the window in %s would take two restarts; going once then saves %.3g slot-hours less than the second restart costs (%.3g): it waits",
		e.PlanSlots, lowSlots, clears.Round(time.Second), now/3600, restart/3600)}
}

// costBenefit is the CostBenefit reason of a Scale decision.
func (m *model) costBenefit() Reason {
	e := m.d.Economics
	if e.HeldSlots > e.PlanSlots {
		return Reason{Code: ReasonCostBenefit, Message: fmt.Sprintf(
			"frees %d slots for %s: %.3g slot-hours saved against a restart costing %.3g",
			e.HeldSlots-e.PlanSlots, e.HoldsFor.Round(time.Minute), e.SavedSlotHours, e.RestartSlotHours)}
	}
	return Reason{Code: ReasonCostBenefit, Message: fmt.Sprintf(
		"%d→%d slots, expected to hold %s; the restart costs %.3g slot-hours, not acting costs lag",
		e.HeldSlots, e.PlanSlots, e.HoldsFor.Round(time.Minute), e.RestartSlotHours)}
}
