package scaling

import (
	"fmt"
	"math"
	"sort"
)

// defaultGroup is the slot-sharing group of vertices that name none: Flink
// puts them all in "default".
const defaultGroup = "default"

func groupOf(x *vertex) string {
	if g := x.v.SlotSharingGroup; g != "" {
		return g
	}
	return defaultGroup
}

// slotsFor is the number of task slots a parallelism assignment needs: with
// slot sharing, one slot holds a subtask of every vertex of its group, so a
// group needs as many slots as its widest vertex, and the job the sum over
// groups.
func (j *job) slotsFor(par map[string]int) int {
	raw := j.sharedSlots(par)
	if j.slotScale > 1 {
		return int(math.Ceil(float64(raw)*j.slotScale - 1e-9))
	}
	return raw
}

// sharedSlots counts slots by the slot-sharing groups the snapshot names.
func (j *job) sharedSlots(par map[string]int) int {
	widest := map[string]int{}
	for _, x := range j.vertices {
		g := groupOf(x)
		widest[g] = max(widest[g], par[x.v.ID])
	}
	total := 0
	for _, w := range widest {
		total += w
	}
	return total
}

// groupWidth is the widest parallelism among the vertices of a group.
func (j *job) groupWidth(par map[string]int, g string) int {
	w := 0
	for _, x := range j.vertices {
		if groupOf(x) == g {
			w = max(w, par[x.v.ID])
		}
	}
	return w
}

// makePlan turns a parallelism assignment into a resource plan.
func (j *job) makePlan(par map[string]int, slotsPerTM int, cpu float64) Plan {
	pl := Plan{Parallelism: par, SlotsPerTaskManager: slotsPerTM, CPUPerTaskManager: cpu}
	for _, p := range par {
		pl.DefaultParallelism = max(pl.DefaultParallelism, p)
	}
	pl.Slots = j.slotsFor(par)
	pl.TaskManagers = (pl.Slots + slotsPerTM - 1) / slotsPerTM
	pl.Cores = float64(pl.TaskManagers) * cpu
	return pl
}

// currentPlan is the job as it runs now.
func (j *job) currentPlan() Plan {
	par := make(map[string]int, len(j.vertices))
	for _, x := range j.vertices {
		par[x.v.ID] = x.p
	}
	pl := j.makePlan(par, j.slots, j.cpu)
	if j.s.TaskManagers.Shared {
		// The cluster's TaskManagers serve other jobs too: the job's
		// share is the TaskManagers its slots fill.
		return pl
	}
	pl.TaskManagers = j.s.TaskManagers.Replicas
	pl.Cores = float64(pl.TaskManagers) * j.cpu
	return pl
}

// slotsPerTaskManager is the policy's fixed value, or one slot per whole CPU
// core of the TaskManager (at least one).
func slotsPerTaskManager(p *Policy, cpu float64) int {
	if n := int(p.Resources.SlotsPerTaskManager); n > 0 {
		return n
	}
	return max(1, int(math.Floor(cpu+1e-9)))
}

// slotBudget is the most slots the policy's quotas allow, or -1 for none.
func slotBudget(p *Policy, slotsPerTM int, cpu float64) int {
	budget := -1
	limit := func(tms int) {
		if b := tms * slotsPerTM; budget < 0 || b < budget {
			budget = b
		}
	}
	if p.Resources.MaxTaskManagers > 0 {
		limit(p.Resources.MaxTaskManagers)
	}
	if p.Resources.MaxCores > 0 {
		limit(int(math.Floor(p.Resources.MaxCores/cpu + 1e-9)))
	}
	return budget
}

// fitQuota narrows slot-sharing groups one slot at a time until the
// assignment fits the budget, each time narrowing the group whose widest
// vertices would be least utilized after the step, so that bottlenecks keep
// their capacity longest. It returns the vertices it narrowed, and false when
// lower bounds or excluded vertices make the budget unreachable.
func (j *job) fitQuota(par map[string]int, budget int) (map[string]bool, bool) {
	narrowed := map[string]bool{}
	for j.slotsFor(par) > budget {
		bestGroup, bestHurt := "", math.Inf(1)
		for _, g := range j.groups() {
			w := j.groupWidth(par, g)
			hurt, ok := 0.0, w > 1
			for _, x := range j.vertices {
				if !ok || groupOf(x) != g || par[x.v.ID] != w {
					continue
				}
				if x.excluded || w-1 < x.lower {
					ok = false
					break
				}
				hurt = math.Max(hurt, x.utilizationAt(w-1))
			}
			if ok && hurt < bestHurt {
				bestGroup, bestHurt = g, hurt
			}
		}
		if bestGroup == "" {
			return narrowed, false
		}
		w := j.groupWidth(par, bestGroup)
		for _, x := range j.vertices {
			if groupOf(x) == bestGroup && par[x.v.ID] == w {
				par[x.v.ID] = w - 1
				narrowed[x.v.ID] = true
			}
		}
	}
	return narrowed, true
}

// groups lists the slot-sharing groups in a stable order.
func (j *job) groups() []string {
	set := map[string]bool{}
	for _, x := range j.vertices {
		set[groupOf(x)] = true
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// fillFreeSlots hands the slots left free in the last TaskManager, which are
// paid for anyway, to the most utilized vertices: each step raises one vertex
// to its next parallelism with more capacity, if the step fits in the free
// slots, stays within the vertex's ceiling and keeps it at or above the
// minimum utilization (so the next decision does not see it as wasteful).
func (j *job) fillFreeSlots(par map[string]int, ceiling map[string]int, free int, minUtil float64) map[string]bool {
	filled := map[string]bool{}
	width := map[string]int{}
	for _, x := range j.vertices {
		width[groupOf(x)] = max(width[groupOf(x)], par[x.v.ID])
	}
	for {
		var best *vertex
		bestNext, bestCost, bestUtil := 0, 0, -1.0
		for _, x := range j.vertices {
			id := x.v.ID
			if x.excluded || !x.measurable {
				continue
			}
			cur := par[id]
			next := x.nextBetter(cur, ceiling[id])
			if next == 0 || x.utilizationAt(next) < minUtil {
				continue
			}
			cost := max(0, next-width[groupOf(x)])
			if cost > free {
				continue
			}
			if u := x.utilizationAt(cur); u > bestUtil {
				best, bestNext, bestCost, bestUtil = x, next, cost, u
			}
		}
		if best == nil {
			return filled
		}
		par[best.v.ID] = bestNext
		width[groupOf(best)] = max(width[groupOf(best)], bestNext)
		free -= bestCost
		filled[best.v.ID] = true
	}
}

// nextBetter is the smallest parallelism above q, up to ceiling, with more
// capacity than q, or 0 if there is none. It looks no further than twice q
// (plus a few), which bounds the cost when a hot partition caps the capacity.
func (x *vertex) nextBetter(q, ceiling int) int {
	c := x.capacityAt(q)
	for n := q + 1; n <= min(ceiling, 2*q+8); n++ {
		if x.capacityAt(n) > c*(1+rel) {
			return n
		}
	}
	return 0
}

// learnSlots handles a job whose slot-sharing groups Flink did not report
// (before 1.20): counted as one group, its plans would need only their
// widest vertex's parallelism in slots, while the job may hold more. When
// Flink reports the slots its TaskManagers hold, every plan's slots are
// scaled by what the job holds over what one group would need; otherwise the
// estimate stays one group, and the reason says that savings may be
// overstated.
func (j *job) learnSlots() *Reason {
	if !j.s.SlotSharingUnknown {
		return nil
	}
	now := map[string]int{}
	for _, x := range j.vertices {
		now[x.v.ID] = x.p
	}
	one := j.sharedSlots(now)
	tm := j.s.TaskManagers
	held := tm.SlotsTotal - tm.SlotsAvailable
	if tm.SlotsTotal <= 0 || held <= 0 || tm.SlotsAvailable < 0 || tm.Shared {
		return &Reason{Code: ReasonSlotSharingUnknown, Message: fmt.Sprintf(
			"Flink reports no slot-sharing groups (before 1.20) and no slot counts: plans are counted as one group (%d slots now), so the slots a scale-down frees may be fewer", one)}
	}
	if held > one {
		j.slotScale = float64(held) / float64(one)
	}
	return &Reason{Code: ReasonSlotSharingUnknown, Message: fmt.Sprintf(
		"Flink reports no slot-sharing groups (before 1.20): the job holds %d slots where one group would need %d; plans are counted at %.3g× their widest vertex, and free slots are not filled",
		held, one, max(1, j.slotScale))}
}

// reactivePlan is the plan of a job in Flink's reactive mode, where the
// TaskManagers are the only knob: the adaptive scheduler divides the slots
// evenly over the slot-sharing groups and runs every vertex at its group's
// share, up to its max parallelism. The plan gives each group the widest
// recommendation of any vertex that can use it, rounded up to whole
// TaskManagers, within the quota and the cluster's capacity.
func (m *model) reactivePlan(spt int) (Plan, []Reason, bool) {
	j, p := m.j, m.p
	groups := len(j.groups())
	width := 1
	for _, x := range j.vertices {
		width = max(width, min(m.rec[x.v.ID], max(1, x.maxP)))
	}
	// Each group needs a slot at least.
	least := (groups + spt - 1) / spt
	tms := max(least, (groups*width+spt-1)/spt)
	var rs []Reason
	budget := slotBudget(p, spt, j.cpu)
	if c, ok := m.clusterCapacity(); ok && (budget < 0 || c < budget) {
		budget = c
	}
	if budget >= 0 && budget < least*spt {
		return j.makePlan(m.rec, spt, j.cpu), append(rs, Reason{Code: ReasonQuotaUnsatisfiable, Message: fmt.Sprintf(
			"reactive mode needs whole TaskManagers of %d slots, a slot for each of %d slot-sharing groups; the quota and the cluster allow %d", spt, groups, budget)}), false
	}
	if budget >= 0 && tms*spt > budget {
		tms = budget / spt
		rs = append(rs, Reason{Code: ReasonQuotaLimited, Message: fmt.Sprintf(
			"the quota and the cluster allow %d slots: %d TaskManagers of %d", budget, tms, spt)})
	}
	// The policy's bounds cap the share: the TaskManagers are rounded
	// down to stay within the smallest upper bound a policy sets.
	bound := 0
	for _, x := range j.vertices {
		b := p.MaxParallelism
		if o, ok := p.override(x.v); ok && o.MaxParallelism > 0 {
			b = o.MaxParallelism
		}
		if b > 0 && (bound == 0 || b < bound) {
			bound = b
		}
	}
	if bound > 0 && tms*spt/groups > bound {
		if least*spt/groups > bound {
			return j.makePlan(m.rec, spt, j.cpu), append(rs, Reason{Code: ReasonReactiveMode, Message: fmt.Sprintf(
				"reactive mode runs every vertex at its group's slots, and one TaskManager's %d slots already exceed the policy's max parallelism %d", spt, bound)}), false
		}
		tms = max(least, bound*groups/spt)
		rs = append(rs, Reason{Code: ReasonPolicyLimited, Message: fmt.Sprintf(
			"reactive mode: %d TaskManagers keep every vertex within the policy's max parallelism %d", tms, bound)})
	}
	share := max(1, tms*spt/groups)
	par := make(map[string]int, len(j.vertices))
	for _, x := range j.vertices {
		q := share
		if x.maxP > 0 {
			q = min(q, x.maxP)
		}
		par[x.v.ID] = q
		if q != m.rec[x.v.ID] {
			x.reason(ReasonReactiveMode, "runs at p=%d: reactive mode gives every vertex its group's %d slots (recommended alone: %d)", q, share, m.rec[x.v.ID])
		}
	}
	rs = append(rs, Reason{Code: ReasonReactiveMode, Message: fmt.Sprintf(
		"reactive mode: %d TaskManagers of %d slots, every vertex at up to %d", tms, spt, share)})
	// Reactive mode takes every slot of the TaskManagers, whatever the
	// slot-sharing groups would need.
	pl := j.makePlan(par, spt, j.cpu)
	pl.Slots, pl.TaskManagers = tms*spt, tms
	pl.Cores = float64(tms) * j.cpu
	return pl, rs, true
}

// clusterCapacity is the most slots the job can hold on a cluster whose
// TaskManagers cannot grow for it: those it uses now plus those free.
func (m *model) clusterCapacity() (int, bool) {
	tm := m.j.s.TaskManagers
	if !tm.FixedTaskManagers || tm.SlotsTotal <= 0 {
		return 0, false
	}
	return m.d.Current.Slots + max(0, tm.SlotsAvailable), true
}
