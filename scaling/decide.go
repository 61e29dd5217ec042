package scaling

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Decide is the model: from a snapshot of the job, the policy, the history of
// past decisions and rescales, and the current time, it returns what to do
// and why. It is pure: same inputs, same decision; it never modifies its
// arguments.
func Decide(s Snapshot, p Policy, h History, now time.Time) Decision {
	d := Decision{At: now, Action: ActionHold, CheckpointsHealthy: true}
	if err := p.Validate(); err != nil {
		return d.hold([]Reason{{Code: ReasonInvalidPolicy, Message: err.Error()}})
	}
	if s.TaskManagers.FixedSlots && s.TaskManagers.Slots > 0 {
		// The cluster's TaskManagers keep their shape: plan in them.
		p.Resources.SlotsPerTaskManager = SlotCount(s.TaskManagers.Slots)
	}
	j, rs := observe(&s, &p, now)
	if len(rs) > 0 {
		d.Vertices = unreadVertices(&s)
		return d.hold(rs)
	}
	m := &model{j: j, p: &p, h: &h, now: now, d: &d}
	return m.run()
}

// model carries one decision through its stages.
type model struct {
	j   *job
	p   *Policy
	h   *History
	now time.Time
	d   *Decision

	downtime time.Duration
	required map[*vertex]int
	limit    map[*vertex]ReasonCode
	rec      map[string]int
	ceiling  map[string]int
	trigger  []Reason

	// trends are the sources' fitted arrival trends; lookahead how far
	// ahead the plan was sized.
	trends    map[*vertex]trend
	lookahead time.Duration
	// notes are job-level reasons every sized decision carries.
	notes []Reason
}

func (m *model) run() Decision {
	j, p, d := m.j, m.p, m.d
	if r := j.learnSlots(); r != nil {
		m.notes = append(m.notes, *r)
	}
	d.Current = j.currentPlan()
	d.CheckpointsHealthy = !j.ckptSlow && !j.ckptFailing
	// Sized for a restart that starts TaskManagers (most scale-ups do);
	// the plan's own restart is predicted once it is known.
	m.downtime = m.predictDowntime(j.s.RescaleInPlace, true)
	d.PredictedDowntime = D(m.downtime)
	m.lagBias()

	j.measure(m.h)
	if rs := j.targets(p.CatchUpDuration.Duration, m.downtime); len(rs) > 0 {
		d.Vertices = m.vertexDecisions(nil)
		return d.hold(rs)
	}
	m.fitTrends()
	j.bounds(p)
	m.size()
	d.Sized = true
	m.findTriggers()
	m.sizeAhead()
	m.lag()
	d.Bottleneck = m.bottleneck()

	if len(m.trigger) == 0 {
		d.Recommended = d.Current
		d.Vertices = m.vertexDecisions(d.Current.Parallelism)
		if !m.anyMeasurable() {
			d.Sized = false
			return d.hold([]Reason{{Code: ReasonCapacityUnmeasured, Message: "no vertex's capacity could be measured: nothing to size on"}})
		}
		return m.memoryOnly(append([]Reason{{Code: ReasonWithinBand, Message: m.bandSentence()}}, m.notes...))
	}
	m.stabilize()
	m.forwardGroups()
	pl, quotaReasons, ok := m.plan()
	if ok {
		var memReasons []Reason
		pl, memReasons, ok = m.fitMemory(pl)
		quotaReasons = append(quotaReasons, memReasons...)
	}
	d.Recommended = pl
	d.Vertices = m.vertexDecisions(pl.Parallelism)
	if m.changes(pl) {
		m.downtime = m.predictDowntime(InPlace(*j.s, d.Current, pl), m.startsTaskManagers(pl))
		d.PredictedDowntime = D(m.downtime)
	}
	m.predictCatchUp()
	reasons := append(append(append([]Reason{}, m.trigger...), quotaReasons...), m.notes...)
	if !ok {
		return d.hold(reasons)
	}
	return m.gate(reasons)
}

// predictDowntime predicts a restart's downtime. From history: the median
// of the last measured downtimes of rescales like this one (that started
// TaskManagers, or not), each moved by the change in restore time since
// (state restored at the rate checkpoints write it). Without history, the
// parts: the savepoint (about one checkpoint's duration; none in place), the
// policy's restart time, restoring the state (as long as checkpointing it
// took), and TaskManager start-up when the restart starts TaskManagers.
func (m *model) predictDowntime(inPlace, startsTMs bool) time.Duration {
	restore := m.restoreTime
	if r, ok := m.h.measuredRestart(startsTMs, restore, m.stateBytes()); ok {
		return r + boolDur(startsTMs && !m.h.anyStarted(), m.p.TaskManagerStartup.Duration)
	}
	d := m.p.RestartTime.Duration + restore(m.stateBytes())
	if !inPlace {
		d += m.j.ckptDuration
	}
	return d + boolDur(startsTMs, m.p.TaskManagerStartup.Duration)
}

func boolDur(b bool, d time.Duration) time.Duration {
	if b {
		return d
	}
	return 0
}

func (m *model) stateBytes() float64 {
	if c := m.j.s.Checkpoints; c != nil {
		return float64(c.StateSizeBytes)
	}
	return 0
}

// restoreTime is how long restoring state of the given size takes, at the
// rate the job's checkpoints write its state (state size over checkpoint
// duration); zero when either is unknown.
func (m *model) restoreTime(bytes float64) time.Duration {
	st := m.stateBytes()
	if bytes <= 0 || st <= 0 || m.j.ckptDuration <= 0 {
		return 0
	}
	return time.Duration(bytes / st * float64(m.j.ckptDuration))
}

// changes reports whether a plan differs from the job as it runs.
func (m *model) changes(pl Plan) bool {
	for _, x := range m.j.vertices {
		if pl.Parallelism[x.v.ID] != x.p {
			return true
		}
	}
	return pl.SlotsPerTaskManager != m.j.slots
}

// size computes each vertex's required parallelism.
func (m *model) size() {
	m.required = map[*vertex]int{}
	m.limit = map[*vertex]ReasonCode{}
	for _, x := range m.j.vertices {
		q, lim := x.required(m.p.Utilization.Target)
		m.required[x], m.limit[x] = q, lim
		if lim != "" {
			x.reason(lim, "needs more capacity than p=%d, the most its %s allows, provides", q, limitNoun(lim))
		}
		if x.excluded {
			x.reason(ReasonExcluded, "excluded by the policy: stays at p=%d", x.p)
		}
		if x.broadcastOnly() && !x.excluded {
			x.reason(ReasonExcluded, "every input is a broadcast: each subtask processes every record, so no parallelism changes its load; stays at p=%d", x.p)
		}
	}
}

// findTriggers marks the vertices outside the utilization band. A vertex is
// overloaded when its true rate is below what the target rate needs at the
// maximum utilization, or below the target rate plus the lag catch-up;
// underutilized when it is above what the target needs at the minimum
// utilization and above the target plus the whole catch-up (restart
// included, so that a scale-down pays for its own restart), and a smaller
// parallelism would do. Slow checkpoints with a vertex above pressureAt
// also trigger.
func (m *model) findTriggers() {
	u := m.p.Utilization
	for _, x := range m.j.vertices {
		if x.excluded || x.broadcastOnly() {
			continue
		}
		if !x.measurable {
			if x.target == 0 && x.catchUp == 0 && m.required[x] < x.p {
				m.trigger = append(m.trigger, Reason{Code: ReasonUnderutilized, Vertex: x.v.ID, Message: fmt.Sprintf(
					"no records arrive and none are waiting: p=%d has nothing to do", x.p)})
			}
			continue
		}
		tpr := x.capacityAt(x.p)
		switch {
		case !x.meets(x.p, u.Max, x.target, x.lagCatchUp):
			m.trigger = append(m.trigger, Reason{Code: ReasonOverloaded, Vertex: x.v.ID, Message: fmt.Sprintf(
				"needs %.0f rec/s (%.0f%% utilized at p=%d; max %.0f%%) but processes at most %.0f rec/s",
				x.need(u.Max, x.lagCatchUp), 100*x.utilizationAt(x.p), x.p, 100*u.Max, tpr)})
		case x.capAt(x.p, u.Min) > x.target*(1+rel) && tpr > (x.target+x.catchUp)*(1+rel) && m.required[x] < x.p:
			// (A vertex already at its lower bound cannot go lower: it
			// triggers nothing.)
			m.trigger = append(m.trigger, Reason{Code: ReasonUnderutilized, Vertex: x.v.ID, Message: fmt.Sprintf(
				"%.0f%% utilized at p=%d (min %.0f%%): processes up to %.0f rec/s for a target of %.0f rec/s",
				100*x.utilizationAt(x.p), x.p, 100*u.Min, tpr, x.target)})
		case m.j.ckptSlow && x.utilizationAt(x.p) > pressureAt(u)*(1+rel):
			m.trigger = append(m.trigger, Reason{Code: ReasonCheckpointPressure, Vertex: x.v.ID, Message: fmt.Sprintf(
				"checkpoints take %s and the vertex is %.0f%% utilized (above %.0f%%, halfway from the %.0f%% target to the %.0f%% maximum)",
				m.j.ckptDuration.Round(time.Millisecond), 100*x.utilizationAt(x.p), 100*pressureAt(u), 100*u.Target, 100*u.Max)})
		}
	}
}

// pressureAt is the utilization above which slow checkpoints trigger a
// rescale: halfway between the target and the maximum, so that a job sized
// at the target (which every rescale does) does not trigger again at once
// while its checkpoints stay slow.
func pressureAt(u Utilization) float64 { return (u.Target + u.Max) / 2 }

// stabilize turns required parallelism into recommended parallelism: up at
// once (or the lowest of the scale-up window), down only when the window is
// covered and then to its highest recommendation, each step bounded by the
// behavior's max factor, and never down while checkpoints are unhealthy.
func (m *model) stabilize() {
	m.rec, m.ceiling = map[string]int{}, map[string]int{}
	up, down := m.p.Behavior.ScaleUp, m.p.Behavior.ScaleDown
	for _, x := range m.j.vertices {
		id, cur, req := x.v.ID, x.p, m.required[x]
		// The step bound never keeps a vertex below its lower bound.
		upBound := max(cur+1, x.lower, int(math.Floor(float64(cur)*up.MaxFactor+1e-9)))
		m.ceiling[id] = min(x.upper, upBound)
		if x.excluded {
			m.ceiling[id] = cur
		}
		rec := cur
		switch {
		case req > cur:
			rec = req
			if w := up.StabilizationWindow.Duration; w > 0 {
				lowest, _ := m.windowExtreme(id, w, false)
				rec = max(cur, min(rec, lowest))
			}
			if rec > upBound {
				rec = x.trimToEfficient(upBound, cur+1)
				x.reason(ReasonMaxFactorLimited, "needs p=%d but one step may only go to %d (×%g)", req, rec, up.MaxFactor)
			}
		case req < cur:
			w := down.StabilizationWindow.Duration
			highest, covered := m.windowExtreme(id, w, true)
			if !covered {
				x.reason(ReasonScaleDownStabilizing, "needs only p=%d; scale-down waits until the recommendation has held for %s", req, w)
				break
			}
			if highest > req && highest < cur && m.settling(id, w, cur) {
				x.reason(ReasonScaleDownStabilizing, "needs only p=%d; the window still holds p=%d from decisions whose metrics straddled a change of load: the scale-down waits up to %s to go there in one step",
					req, highest, m.p.MetricsWindow.Duration)
				break
			}
			rec = min(cur, max(req, highest))
			// The step bound never keeps a vertex above its upper bound.
			if floor := min(x.upper, int(math.Ceil(float64(cur)/down.MaxFactor-1e-9))); rec < floor {
				rec = floor
				x.reason(ReasonMaxFactorLimited, "needs p=%d but one step may only go down to %d (÷%g)", req, rec, down.MaxFactor)
			}
			if hold := min(cur, x.upper); rec < hold && !m.d.CheckpointsHealthy {
				rec = hold
				x.reason(ReasonCheckpointsUnhealthy, "stays at p=%d: no scale-down while checkpoints are slow or failing", hold)
			}
		}
		m.rec[id] = rec
	}
}

// settling reports whether a scale-down that became possible only now (one
// metrics window ago the stabilization window still held a recommendation
// of cur or more) would stop at a recommendation made while the metrics
// window straddled a change of load. Such recommendations sit between the
// old and the new level and leave the stabilization window one metrics
// window later: waiting that long saves a second restart. A scale-down that
// was already possible a metrics window ago (a load falling for a while)
// goes ahead.
func (m *model) settling(id string, w time.Duration, cur int) bool {
	mw := m.p.MetricsWindow.Duration
	if mw <= 0 {
		return false
	}
	end := m.now.Add(-mw)
	start := end.Add(-w)
	covered, ext, found := false, 0, false
	for _, r := range m.h.Recommendations {
		q, ok := r.Parallelism[id]
		if !ok || r.At.After(end) {
			continue
		}
		if !r.At.After(start) {
			covered = true
			continue
		}
		if !found || q > ext {
			ext, found = q, true
		}
	}
	return covered && found && ext >= cur
}

// windowExtreme returns the highest (or lowest) past recommendation for a
// vertex within the window before now, including the current one, and
// whether history covers the whole window (a record at or before its start).
func (m *model) windowExtreme(id string, w time.Duration, highest bool) (int, bool) {
	start := m.now.Add(-w)
	covered := w == 0
	ext, found := 0, false
	for _, r := range m.h.Recommendations {
		q, ok := r.Parallelism[id]
		if !ok || r.At.After(m.now) {
			continue
		}
		if !r.At.After(start) {
			covered = true
			continue
		}
		if !found || (highest && q > ext) || (!highest && q < ext) {
			ext, found = q, true
		}
	}
	if !found {
		return m.required[m.j.byID[id]], covered
	}
	req := m.required[m.j.byID[id]]
	if highest {
		return max(ext, req), covered
	}
	return min(ext, req), covered
}

// forwardGroups gives vertices joined by FORWARD edges one parallelism (the
// largest they recommend, within the smallest of their upper bounds): a
// forward edge connects subtask i to subtask i.
func (m *model) forwardGroups() {
	parent := map[*vertex]*vertex{}
	var find func(*vertex) *vertex
	find = func(x *vertex) *vertex {
		if parent[x] == nil || parent[x] == x {
			return x
		}
		r := find(parent[x])
		parent[x] = r
		return r
	}
	for _, x := range m.j.vertices {
		for _, e := range x.ins {
			if e.ship == ShipForward {
				parent[find(x)] = find(e.from)
			}
		}
	}
	members := map[*vertex][]*vertex{}
	for _, x := range m.j.vertices {
		members[find(x)] = append(members[find(x)], x)
	}
	for _, g := range members {
		if len(g) < 2 {
			continue
		}
		want, ceil := 0, math.MaxInt
		for _, x := range g {
			want = max(want, m.rec[x.v.ID])
			ceil = min(ceil, m.ceiling[x.v.ID])
		}
		want = min(want, ceil)
		for _, x := range g {
			if m.rec[x.v.ID] != want {
				x.reason(ReasonForwardGroup, "joined by FORWARD edges to vertices that need p=%d", want)
			}
			m.rec[x.v.ID] = want
			m.ceiling[x.v.ID] = want // fill must keep the group equal
		}
	}
}

// plan turns the recommendation into a resource plan: quotas first (the least
// utilized give way), then free slots of the last TaskManager to the most
// utilized. ok is false when the quota cannot be met.
func (m *model) plan() (Plan, []Reason, bool) {
	j, p := m.j, m.p
	spt := slotsPerTaskManager(p, j.cpu)
	par := make(map[string]int, len(m.rec))
	for id, q := range m.rec {
		par[id] = q
	}
	var rs []Reason
	if j.s.Reactive {
		// Reactive mode: every vertex runs at the slots of the TaskManagers
		// (with one slot-sharing group, at most its max parallelism), so
		// the plan is the widest need rounded up to whole TaskManagers.
		return m.reactivePlan(spt)
	}
	budget, code, why := slotBudget(p, spt, j.cpu), ReasonQuotaLimited, ""
	if budget >= 0 {
		why = fmt.Sprintf("the quota (max %d TaskManagers, %g cores) allows %d slots", p.Resources.MaxTaskManagers, p.Resources.MaxCores, budget)
	}
	if c, ok := m.clusterCapacity(); ok && (budget < 0 || c < budget) {
		budget, code = c, ReasonClusterCapacity
		why = fmt.Sprintf("the cluster's TaskManagers cannot grow: the job can hold %d slots (the %d it uses and %d free of the cluster's %d)",
			c, m.d.Current.Slots, j.s.TaskManagers.SlotsAvailable, j.s.TaskManagers.SlotsTotal)
	}
	if budget >= 0 && j.slotsFor(par) > budget {
		narrowed, ok := j.fitQuota(par, budget)
		if !ok {
			rs = append(rs, Reason{Code: ReasonQuotaUnsatisfiable, Message: fmt.Sprintf(
				"%s but the job needs %d even at its lower bounds", why, j.slotsFor(par))})
			return j.makePlan(par, spt, j.cpu), rs, false
		}
		rs = append(rs, Reason{Code: code, Message: why + "; the least utilized vertices gave way"})
		for _, x := range j.vertices {
			if narrowed[x.v.ID] {
				x.reason(code, "held to p=%d by %s", par[x.v.ID], map[ReasonCode]string{ReasonQuotaLimited: "the quota", ReasonClusterCapacity: "the cluster's free slots"}[code])
				m.ceiling[x.v.ID] = par[x.v.ID]
				if par[x.v.ID] < m.rec[x.v.ID] {
					m.limit[x] = code
				}
			}
		}
	}
	// Free slots of the last TaskManager go to the most utilized vertices,
	// but only where the vertex stays at least halfway from the minimum
	// utilization to the target (so noise cannot make it look wasteful
	// and start a scale-down at the same load), never while the load falls
	// (it would soon be wasteful), and never when the slots the job uses
	// cannot be counted.
	slots := j.slotsFor(par)
	free := (slots+spt-1)/spt*spt - slots
	if budget >= 0 {
		free = max(0, min(free, budget-slots)) // a cluster's free slots need not fill a TaskManager
	}
	if !j.s.SlotSharingUnknown && !m.trending(-1) {
		floor := (p.Utilization.Min + p.Utilization.Target) / 2
		for id := range j.fillFreeSlots(par, m.ceiling, free, floor) {
			x := j.byID[id]
			x.reason(ReasonFreeSlots, "raised to p=%d with slots of the last TaskManager that would stay free", par[id])
		}
	}
	return j.makePlan(par, spt, j.cpu), rs, true
}

// gate decides between Scale and Hold once the plan is known.
func (m *model) gate(reasons []Reason) Decision {
	d := m.d
	changed, up := false, false
	for _, v := range d.Vertices {
		changed = changed || v.Recommended != v.Current
		up = up || v.Recommended > v.Current
	}
	// A restart must fix what triggered it: the rest of the plan rides on
	// it. When no vertex outside the band would move in the direction it
	// needs (a scale-down still stabilizing, a bound), nothing is gained.
	if changed && !m.addressed() {
		changed = false
	}
	if !changed {
		var why []Reason
		for _, v := range d.Vertices {
			for _, r := range v.Reasons {
				switch r.Code {
				case ReasonScaleDownStabilizing, ReasonCheckpointsUnhealthy, ReasonPartitionLimited,
					ReasonMaxParallelismLimited, ReasonPolicyLimited, ReasonScalabilityLimited, ReasonQuotaLimited, ReasonClusterCapacity,
					ReasonNetworkMemoryLimited, ReasonHeapMemoryLimited:
					why = append(why, r)
				}
			}
		}
		why = append(why, Reason{Code: ReasonNoChange, Message: "no vertex outside the band would change"})
		return m.memoryOnly(append(reasons, why...))
	}
	if m.memoryPressure() != nil {
		d.Recommended = d.Current
		d.Vertices = m.vertexDecisions(d.Current.Parallelism)
		return m.memoryOnly(reasons)
	}
	if r := m.economics(up); r != nil {
		d.Recommended = d.Current
		d.Vertices = m.vertexDecisions(d.Current.Parallelism)
		return d.hold(append(reasons, *r))
	}
	if !up {
		tms := m.planTaskManagers(d.Recommended)
		saved := d.Current.Cores - float64(tms)*d.Recommended.CPUPerTaskManager
		if saved < m.p.MinChange*d.Current.Cores-1e-9 {
			plan := d.Recommended
			d.Recommended = d.Current
			d.Vertices = m.vertexDecisions(d.Current.Parallelism)
			return d.hold(append(reasons, Reason{Code: ReasonGainBelowCost, Message: fmt.Sprintf(
				"scaling down to %d TaskManagers would save %.3g of %.3g cores, less than minChange (%.0f%%)",
				plan.TaskManagers, saved, d.Current.Cores, 100*m.p.MinChange)}))
		}
	}
	reasons = append(reasons, m.costBenefit())
	return m.commit(reasons)
}

// commit turns a decision to restart into Scale, unless a rescale is in
// progress or the cooldown lasts.
func (m *model) commit(reasons []Reason) Decision {
	d := m.d
	for _, r := range m.h.Rescales {
		if r.Outcome == OutcomeInProgress {
			return d.hold(append(reasons, Reason{Code: ReasonRescaleInProgress, Message: fmt.Sprintf(
				"the rescale decided at %s has not completed", r.DecidedAt.Format(time.RFC3339))}))
		}
	}
	if last, ok := m.h.lastRescale(); ok {
		end := last.CompletedAt
		if end.IsZero() {
			end = last.DecidedAt
		}
		if until := end.Add(m.p.CooldownPeriod.Duration); m.now.Before(until) {
			return d.hold(append(reasons, Reason{Code: ReasonCooldown, Message: fmt.Sprintf(
				"the last rescale ended at %s; cooldown lasts until %s", end.Format(time.RFC3339), until.Format(time.RFC3339))}))
		}
	}
	d.Action = ActionScale
	d.Reasons = reasons
	d.Summary = m.scaleSentence()
	return *d
}

// addressed reports whether the plan moves some triggering vertex the way
// its trigger asks: up when overloaded or under checkpoint pressure, down
// when underutilized.
func (m *model) addressed() bool {
	by := map[string]VertexDecision{}
	for _, v := range m.d.Vertices {
		by[v.ID] = v
	}
	for _, r := range m.trigger {
		v, ok := by[r.Vertex]
		if !ok {
			continue
		}
		switch r.Code {
		case ReasonOverloaded, ReasonCheckpointPressure:
			if v.Recommended > v.Current {
				return true
			}
		case ReasonUnderutilized:
			if v.Recommended < v.Current {
				return true
			}
		}
	}
	return false
}

// lag fills the job's lag in records and in seconds of arrivals.
func (m *model) lag() {
	for _, x := range m.j.vertices {
		if !x.isSource() || !x.hasLag {
			continue
		}
		m.d.LagRecords += x.lag
		if x.target > 0 {
			m.d.LagSeconds = math.Max(m.d.LagSeconds, x.lag/x.target)
		}
	}
}

// predictCatchUp is how long the backlog takes to drain after the restart:
// the slowest vertex's backlog over its spare capacity at the recommended
// parallelism.
func (m *model) predictCatchUp() {
	worst := 0.0
	for _, x := range m.j.vertices {
		if x.backlog <= 0 || !x.measurable {
			continue
		}
		spare := x.capacityAt(m.d.Recommended.Parallelism[x.v.ID]) - x.target
		if spare <= 0 {
			worst = math.Inf(1)
			break
		}
		worst = math.Max(worst, x.backlog/spare)
	}
	if math.IsInf(worst, 1) {
		m.d.LagGrows = true
		return
	}
	m.d.PredictedCatchUp = D(time.Duration(worst * float64(time.Second)))
}

// bottleneck is the vertex that limits the job: the first busy vertex
// downstream of a backpressured one, or else the most utilized vertex.
func (m *model) bottleneck() string {
	var best *vertex
	bestScore := -1.0
	for _, x := range m.j.vertices {
		if x.bpMax < backpressuredAt {
			continue
		}
		// Walk downstream to the first vertices that are not backpressured.
		seen := map[*vertex]bool{}
		queue := []*vertex{x}
		for len(queue) > 0 {
			y := queue[0]
			queue = queue[1:]
			for _, e := range y.outs {
				z := e.to
				if seen[z] {
					continue
				}
				seen[z] = true
				if z.bpMax >= backpressuredAt {
					queue = append(queue, z)
				} else if z.busyMax > bestScore {
					best, bestScore = z, z.busyMax
				}
			}
		}
		x.reason(ReasonBackpressured, "backpressured %.0f ms/s: it waits on its downstream, it is not the bottleneck", 1000*x.bpMax)
	}
	if best == nil {
		for _, x := range m.j.vertices {
			if u := x.utilizationAt(x.p); x.measurable && u > bestScore {
				best, bestScore = x, u
			}
		}
	}
	if best == nil {
		return ""
	}
	best.reason(ReasonBottleneck, "the bottleneck: busy %.0f ms/s on its busiest subtask", 1000*best.busyMax)
	return best.v.ID
}

// vertexDecisions reports every vertex, with the given recommended
// parallelism (nil: current).
func (m *model) vertexDecisions(rec map[string]int) []VertexDecision {
	out := make([]VertexDecision, 0, len(m.j.vertices))
	for _, x := range m.j.vertices {
		q := x.p
		if r, ok := rec[x.v.ID]; ok {
			q = r
		}
		req := x.p
		if r, ok := m.required[x]; ok {
			req = r
		}
		vd := VertexDecision{
			ID: x.v.ID, Name: x.v.Name, Current: x.p, Required: req, Recommended: q, Source: x.isSource(),
			BusyTimeMsPerSecond: 1000 * x.busyMax, BackPressuredMsPerSecond: 1000 * x.bpMax,
			TargetRate: x.target, CatchUpRate: x.catchUp,
			Bottleneck: x.v.ID == m.d.Bottleneck, Limit: m.limit[x], Reasons: x.reasons,
		}
		if x.busyAvg > 0 {
			vd.Skew = x.busyMax / x.busyAvg
		}
		if x.measurable {
			vd.TrueProcessingRate = x.capacityAt(x.p)
			vd.ExpectedProcessingRate = x.capacityAt(q)
			vd.UtilizationNow = x.utilizationAt(x.p)
			vd.UtilizationAfter = x.utilizationAt(q)
		}
		switch sp := x.spread.(type) {
		case keyGroups:
			vd.KeyGroups = sp.maxP
		case uniformPartitions, *weightedPartitions:
			vd.Partitions = x.v.Partitions
		}
		if x.isSource() && x.hasLag {
			vd.LagRecords = x.lag
			if x.target > 0 {
				vd.LagSeconds = x.lag / x.target
			}
		}
		vd.Explanation = m.explain(x, &vd)
		out = append(out, vd)
	}
	return out
}

func limitNoun(c ReasonCode) string {
	switch c {
	case ReasonPartitionLimited:
		return "partition count"
	case ReasonMaxParallelismLimited:
		return "max parallelism (key groups)"
	case ReasonScalabilityLimited:
		return "scalability curve"
	default:
		return "policy bound"
	}
}

// memoryNoun names the memory a memory limit code is about ("" for other
// codes).
func memoryNoun(c ReasonCode) string {
	switch c {
	case ReasonNetworkMemoryLimited:
		return "network memory"
	case ReasonHeapMemoryLimited:
		return "heap"
	case ReasonManagedMemoryLimited:
		return "managed memory"
	}
	return ""
}

// explain writes one sentence with the numbers behind a vertex's decision.
func (m *model) explain(x *vertex, vd *VertexDecision) string {
	var b strings.Builder
	if !x.measurable {
		fmt.Fprintf(&b, "p=%d → %d: capacity not measured (busy %.0f ms/s, backpressured %.0f ms/s, %.0f rec/s in)",
			vd.Current, vd.Recommended, vd.BusyTimeMsPerSecond, vd.BackPressuredMsPerSecond, x.in)
		return b.String()
	}
	fmt.Fprintf(&b, "busy %.0f ms/s at p=%d while taking %.0f rec/s → true rate %.0f rec/s",
		vd.BusyTimeMsPerSecond, vd.Current, x.in, vd.TrueProcessingRate)
	if vd.Skew > 1.2 {
		fmt.Fprintf(&b, " (busiest subtask %.1f× the average)", vd.Skew)
	}
	u := m.p.Utilization.Target
	fmt.Fprintf(&b, "; target %.0f rec/s at %.0f%%", vd.TargetRate, 100*u)
	if vd.CatchUpRate > 0 {
		// need = max(target/u, target + catchUp): say which binds.
		if vd.TargetRate+vd.CatchUpRate > vd.TargetRate/u {
			fmt.Fprintf(&b, ", and %.0f + %.0f rec/s catch-up at full speed", vd.TargetRate, vd.CatchUpRate)
		} else {
			fmt.Fprintf(&b, " (its headroom drains the %.0f rec/s catch-up)", vd.CatchUpRate)
		}
	}
	fmt.Fprintf(&b, " needs p=%d", vd.Required)
	switch {
	case vd.Partitions > 0:
		fmt.Fprintf(&b, " of %d partitions", vd.Partitions)
	case vd.KeyGroups > 0:
		fmt.Fprintf(&b, " over %d key groups", vd.KeyGroups)
	}
	if vd.Recommended != vd.Current {
		fmt.Fprintf(&b, " → p=%d, %.0f%% utilized after", vd.Recommended, 100*vd.UtilizationAfter)
		if n := memoryNoun(vd.Limit); n != "" && vd.Recommended != vd.Required {
			fmt.Fprintf(&b, " (held by the TaskManagers' %s)", n)
		}
	} else {
		fmt.Fprintf(&b, "; stays at p=%d, %.0f%% utilized", vd.Current, 100*vd.UtilizationNow)
	}
	return b.String()
}

func (m *model) anyMeasurable() bool {
	for _, x := range m.j.vertices {
		if x.measurable && !x.excluded {
			return true
		}
	}
	return false
}

func (m *model) bandSentence() string {
	u := m.p.Utilization
	lo, hi := math.Inf(1), 0.0
	for _, x := range m.j.vertices {
		if x.measurable && !x.excluded {
			ut := x.utilizationAt(x.p)
			lo, hi = math.Min(lo, ut), math.Max(hi, ut)
		}
	}
	return fmt.Sprintf("every vertex is within its band: utilization %.0f%%–%.0f%% against [%.0f%%, %.0f%%]",
		100*lo, 100*hi, 100*u.Min, 100*u.Max)
}

func (m *model) scaleSentence() string {
	d := m.d
	var changed []string
	for _, v := range d.Vertices {
		if v.Recommended != v.Current {
			changed = append(changed, fmt.Sprintf("%s %d→%d", nameOr(v), v.Current, v.Recommended))
		}
	}
	sort.Strings(changed)
	s := fmt.Sprintf("rescale %s; %d→%d TaskManagers (%.3g→%.3g cores); predicted downtime %s",
		strings.Join(changed, ", "), d.Current.TaskManagers, d.Recommended.TaskManagers,
		d.Current.Cores, d.Recommended.Cores, d.PredictedDowntime.Round(time.Second))
	switch c := d.PredictedCatchUp.Duration; {
	case d.LagGrows:
		s += ", but the lag will not drain at this parallelism"
	case c > 0:
		s += fmt.Sprintf(", backlog drains %s after the restart", c.Round(time.Second))
	}
	return s
}

func nameOr(v VertexDecision) string {
	if v.Name != "" {
		return v.Name
	}
	return v.ID
}

// hold finishes a Hold decision.
func (d *Decision) hold(rs []Reason) Decision {
	d.Action = ActionHold
	d.Reasons = rs
	if len(d.Recommended.Parallelism) == 0 {
		d.Recommended = d.Current
	}
	msgs := make([]string, 0, len(rs))
	for _, r := range rs {
		msgs = append(msgs, r.String())
		if len(msgs) == 3 && len(rs) > 3 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(rs)-3))
			break
		}
	}
	d.Summary = strings.Join(msgs, "; ")
	return *d
}

// unreadVertices reports the vertices of a snapshot that could not be used,
// with their current parallelism only.
func unreadVertices(s *Snapshot) []VertexDecision {
	out := make([]VertexDecision, 0, len(s.Vertices))
	for _, v := range s.Vertices {
		out = append(out, VertexDecision{ID: v.ID, Name: v.Name, Current: v.Parallelism, Required: v.Parallelism,
			Recommended: v.Parallelism, Explanation: "not sized: the snapshot cannot be trusted"})
	}
	return out
}

// lagBias takes the known bias off lag read from committed offsets: Flink
// commits a source's offsets when a checkpoint completes, at the position
// of its barrier, so they trail the readers by what was read since: on
// average half a checkpoint interval plus a checkpoint's duration of
// consumption. Lag from Flink's pendingRecords (the readers' position) is
// the backlog itself.
func (m *model) lagBias() {
	c := m.j.s.Checkpoints
	for _, x := range m.j.vertices {
		if !x.isSource() || !x.hasLag || x.v.LagSource != LagFromCommittedOffsets {
			continue
		}
		if c == nil || c.IntervalMs <= 0 {
			x.reason(ReasonLagFromCommittedOffsets, "lag %.0f records from committed offsets, which trail the readers by up to a checkpoint interval; without checkpoint timings it is taken as it is", x.lag)
			continue
		}
		trail := (float64(c.IntervalMs)/2 + float64(c.DurationMs)) / 1000
		bias := math.Min(x.lag, x.in*trail)
		x.reason(ReasonLagFromCommittedOffsets, "lag %.0f records from committed offsets; %.0f of them (%.0f rec/s read for %.0f s: half the %s checkpoint interval plus a checkpoint) are records read since the last checkpoint, not backlog",
			x.lag, bias, x.in, trail, time.Duration(float64(c.IntervalMs)*float64(time.Millisecond)).Round(time.Second))
		x.lag -= bias
	}
}
