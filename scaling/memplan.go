package scaling

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Memory-aware plans. Every plan is checked against the TaskManagers'
// memory before it is applied:
//
//   - network: the buffers the worst TaskManager's subtasks need
//     (NetworkNeed) within its network segments, or Flink refuses to deploy
//     the job ("Insufficient number of network buffers");
//   - heap: with state on the heap (hashmap), a scale-down packs more state
//     onto each TaskManager; what is in use plus the state it gains must
//     stay within the heap less the policy's headroom;
//   - managed: with RocksDB or ForSt, more slots per TaskManager split the
//     managed memory (their cache and write buffers) into smaller shares.
//
// A plan that does not fit gets the memory it needs in the same restart
// when the policy's memory mode is Apply and the TaskManagers' memory can
// change (a job's own cluster under the operator); otherwise it is reduced
// until it fits, toward the current parallelism, and says so.
//
// MemoryRecommendation sizes every part from what the TaskManagers use,
// as the operator's memory tuning does: heap and metaspace at their peak
// use plus headroom (the heap also gains the state a scale-down packs onto
// it), managed memory 0 when nothing uses it and its per-slot share for
// RocksDB, network at the most the plan's buffer pools can use, the rest
// kept.

// MemoryRecommendation is the TaskManager memory a plan needs and the
// model recommends.
type MemoryRecommendation struct {
	// Current is the TaskManagers' memory now (from Flink's report);
	// Recommended what the model recommends for the recommended plan.
	Current     TaskManagerMemory `json:"current"`
	Recommended TaskManagerMemory `json:"recommended"`
	// Applied is true when the recommended plan sets Recommended
	// (Plan.Memory): the policy's mode is Apply and the restart needs it
	// or restarts the TaskManagers anyway.
	Applied bool `json:"applied"`
	// Network is the network buffers of the recommended plan on its worst
	// TaskManager, against the segments the TaskManagers have now.
	Network *NetworkUse `json:"network,omitempty"`
	// SavingBytes is the process memory the recommendation frees over the
	// recommended plan's TaskManagers (negative: it adds memory).
	SavingBytes int64 `json:"savingBytes"`
	// Reasons says, per part, why it has its size.
	Reasons []Reason `json:"reasons,omitempty"`
}

const mib = 1 << 20

func roundUpMiB(b float64) int64 {
	if b <= 0 {
		return 0
	}
	return int64(math.Ceil(b/mib)) * mib
}

// memoryNow is the TaskManagers' memory model as Flink reported it; ok
// false when it was not reported (no process or network size).
func (m *model) memoryNow() (TaskManagerMemory, bool) {
	mem := m.j.s.TaskManagers.Memory
	if mem == nil || mem.ProcessBytes <= 0 || mem.NetworkBytes <= 0 {
		return TaskManagerMemory{}, false
	}
	or := func(v Float, def int64) int64 {
		if v > 0 {
			return int64(v)
		}
		return def
	}
	t := TaskManagerMemory{
		ProcessBytes:          int64(mem.ProcessBytes),
		FrameworkHeapBytes:    or(mem.FrameworkHeapBytes, 128*mib),
		FrameworkOffHeapBytes: or(mem.FrameworkOffHeapBytes, 128*mib),
		TaskOffHeapBytes:      or(mem.TaskOffHeapBytes, 0),
		ManagedBytes:          int64(mem.ManagedBytes),
		NetworkBytes:          int64(mem.NetworkBytes),
		MetaspaceBytes:        or(mem.MetaspaceBytes, 256*mib),
	}
	t.TaskHeapBytes = or(mem.TaskHeapBytes, max(int64(mem.HeapBytes)-t.FrameworkHeapBytes, 0))
	t.OverheadBytes = or(mem.OverheadBytes, max(t.ProcessBytes-t.FlinkBytes()-t.MetaspaceBytes, 0))
	return t, true
}

// networkConfig is the TaskManagers' network configuration with the
// network memory mem.
func (m *model) networkConfig(networkBytes int64) NetworkConfig {
	c := DefaultNetworkConfig(NetworkRules(m.j.s.FlinkVersion))
	if n := m.j.s.TaskManagers.Network; n != nil {
		if n.SegmentSizeBytes > 0 {
			c.SegmentSize = n.SegmentSizeBytes
		}
		if n.BuffersPerChannel > 0 {
			c.BuffersPerChannel = n.BuffersPerChannel
		}
		if n.FloatingBuffersPerGate > 0 {
			c.FloatingBuffersPerGate = n.FloatingBuffersPerGate
		}
		if n.MaxOverdraftBuffersPerGate > 0 {
			c.MaxOverdraftBuffersPerGate = n.MaxOverdraftBuffersPerGate
		}
		c.RequiredPerGateMax = n.RequiredPerGateMax
	}
	c.NetworkMemory = networkBytes
	return c
}

// segmentsNow is the network segments of the smallest TaskManager: what
// Flink reports (Status.Shuffle.Netty.TotalMemorySegments), else the
// configured network memory over the segment size.
func (m *model) segmentsNow(now TaskManagerMemory) int64 {
	if mem := m.j.s.TaskManagers.Memory; mem != nil && mem.NetworkSegmentsTotal != nil && *mem.NetworkSegmentsTotal > 0 {
		return int64(*mem.NetworkSegmentsTotal)
	}
	return m.networkConfig(now.NetworkBytes).TotalSegments()
}

// networkUse is the buffers plan pl needs on its worst TaskManager, with
// available segments.
func (m *model) networkUse(pl Plan, available int64) NetworkUse {
	c := m.networkConfig(0)
	c.NetworkMemory = available * c.SegmentSize
	tms := pl.TaskManagers
	if m.j.s.TaskManagers.Shared {
		tms = 0 // other jobs' TaskManagers: never count on one
	}
	// NetworkNeed only reads the vertices.
	return NetworkNeed(m.j.s.Vertices, pl.Parallelism, max(pl.SlotsPerTaskManager, 1), tms, c)
}

// memoryChangeable reports whether a plan may set the TaskManagers'
// memory: the policy applies memory, and the cluster's TaskManagers are
// the job's own to reshape.
func (m *model) memoryChangeable() bool {
	return m.p.Memory.Mode == MemoryApply && !m.j.s.TaskManagers.FixedSlots && !m.j.s.TaskManagers.Shared
}

// heapState is whether the job keeps its state on the heap, and how much.
func (m *model) heapState() (float64, bool) {
	b := strings.ToLower(strings.TrimSpace(m.j.s.StateBackend))
	if b != "hashmap" && b != "filesystem" && b != "memory" {
		return 0, false
	}
	st := m.stateBytes()
	return st, st > 0
}

func (m *model) offHeapState() bool {
	b := strings.ToLower(strings.TrimSpace(m.j.s.StateBackend))
	return b == "rocksdb" || b == "forst"
}

// statePerTM is the state the fullest TaskManager of pl holds: the state
// spread evenly over the plan's slots, times the slots one holds.
func statePerTM(state float64, pl Plan) float64 {
	if pl.Slots <= 0 {
		return 0
	}
	return state * float64(min(max(pl.SlotsPerTaskManager, 1), pl.Slots)) / float64(pl.Slots)
}

// heapFits reports whether plan pl's state fits the heap of TaskManagers
// of memory mem: the heap in use now (window average over TaskManagers)
// plus the state each TaskManager gains stays within the heap over
// (1 + headroom). A plan that does not add state per TaskManager fits.
func (m *model) heapFits(pl Plan, heapBytes int64) (bool, float64, float64) {
	state, ok := m.heapState()
	mem := m.j.s.TaskManagers.Memory
	if !ok || mem == nil || mem.HeapUsedBytes == nil || mem.HeapUsedBytes.Avg == nil {
		return true, 0, 0
	}
	gain := statePerTM(state, pl) - statePerTM(state, m.d.Current)
	if gain <= 0 {
		return true, 0, 0
	}
	need := float64(*mem.HeapUsedBytes.Avg) + gain
	limit := float64(heapBytes) / (1 + m.p.Memory.Headroom)
	return need <= limit, need, limit
}

// recommendMemory sizes the TaskManager memory for plan pl.
func (m *model) recommendMemory(pl Plan, use NetworkUse, now TaskManagerMemory, pressure bool) (TaskManagerMemory, []Reason) {
	h := 1 + m.p.Memory.Headroom
	mem := m.j.s.TaskManagers.Memory
	rec := now
	var rs []Reason
	say := func(format string, a ...any) {
		rs = append(rs, Reason{Code: ReasonMemoryTuning, Message: fmt.Sprintf(format, a...)})
	}
	mb := func(b int64) float64 { return float64(b) / mib }

	// Network: the most the plan's buffer pools can take, plus headroom.
	seg := m.networkConfig(0).SegmentSize
	rec.NetworkBytes = roundUpMiB(float64(use.MaxUse) * float64(seg) * h)
	say("network %.0f MiB: the plan's worst TaskManager needs %d buffers and its pools take at most %d (%d KiB each), plus %.0f%%",
		mb(rec.NetworkBytes), use.Required, use.MaxUse, seg>>10, 100*m.p.Memory.Headroom)

	// Heap: the peak in use, plus the state a scale-down adds, plus
	// headroom; more when the job is GC-bound.
	if mem.HeapUsedBytes != nil && mem.HeapUsedBytes.Max != nil {
		peak := float64(*mem.HeapUsedBytes.Max)
		if state, ok := m.heapState(); ok {
			peak += max(0, statePerTM(state, pl)-statePerTM(state, m.d.Current))
		}
		heap := roundUpMiB(peak * h)
		if pressure {
			heap = max(heap, roundUpMiB(float64(now.HeapBytes())*h))
		}
		rec.TaskHeapBytes = max(heap-rec.FrameworkHeapBytes, 64*mib)
		say("heap %.0f MiB: %.0f MiB at its peak%s, plus %.0f%%", mb(rec.HeapBytes()), peak/mib,
			map[bool]string{true: " (GC-bound: at least the heap now)", false: ""}[pressure], 100*m.p.Memory.Headroom)
	}
	// Metaspace: the peak in use plus headroom, at least 64 MiB.
	if mem.MetaspaceUsedBytes != nil && *mem.MetaspaceUsedBytes > 0 {
		rec.MetaspaceBytes = max(roundUpMiB(float64(*mem.MetaspaceUsedBytes)*h), 64*mib)
		say("metaspace %.0f MiB: %.0f MiB in use at the peak, plus %.0f%%", mb(rec.MetaspaceBytes), float64(*mem.MetaspaceUsedBytes)/mib, 100*m.p.Memory.Headroom)
	}
	// Managed: none when nothing uses it; RocksDB and ForSt keep each
	// slot's share.
	switch {
	case m.offHeapState() && pl.SlotsPerTaskManager > 0 && m.d.Current.SlotsPerTaskManager > 0:
		rec.ManagedBytes = roundUpMiB(float64(now.ManagedBytes) / float64(m.d.Current.SlotsPerTaskManager) * float64(pl.SlotsPerTaskManager))
		say("managed %.0f MiB: %s keeps %.0f MiB per slot", mb(rec.ManagedBytes), m.j.s.StateBackend, mb(now.ManagedBytes)/float64(m.d.Current.SlotsPerTaskManager))
	case mem.ManagedUsedBytes != nil && *mem.ManagedUsedBytes == 0 && !m.offHeapState() && m.j.s.StateBackend != "":
		rec.ManagedBytes = 0
		say("managed 0 MiB: no TaskManager used any over the window")
	}
	return rec.withProcess(), rs
}

// fitMemory checks plan pl against the TaskManagers' memory and returns
// the plan to apply (reduced, or carrying the memory it needs), the
// reasons, and ok false when no plan fits. It fills the decision's memory
// recommendation.
func (m *model) fitMemory(pl Plan) (Plan, []Reason, bool) {
	now, known := m.memoryNow()
	if !known {
		return pl, nil, true
	}
	var rs []Reason
	cur := m.d.Current
	apply := m.memoryChangeable()
	needs := false // the plan needs memory it does not have now

	// Managed: more slots per TaskManager split RocksDB's managed memory.
	if m.offHeapState() && now.ManagedBytes > 0 && pl.SlotsPerTaskManager > cur.SlotsPerTaskManager && cur.SlotsPerTaskManager > 0 {
		msg := fmt.Sprintf("%d slots per TaskManager would leave %s %.0f MiB of managed memory per slot instead of %.0f MiB",
			pl.SlotsPerTaskManager, m.j.s.StateBackend, float64(now.ManagedBytes)/mib/float64(pl.SlotsPerTaskManager),
			float64(now.ManagedBytes)/mib/float64(cur.SlotsPerTaskManager))
		kept := m.j.makePlan(pl.Parallelism, cur.SlotsPerTaskManager, pl.CPUPerTaskManager)
		switch {
		case apply:
			needs = true
		case m.withinBudget(kept):
			rs = append(rs, Reason{Code: ReasonManagedMemoryLimited, Message: msg + fmt.Sprintf(
				": the plan keeps %d slots per TaskManager (memory mode Apply would give the TaskManagers more)", cur.SlotsPerTaskManager)})
			pl = kept
		default:
			rs = append(rs, Reason{Code: ReasonManagedMemoryLimited, Message: msg + fmt.Sprintf(
				"; keeping %d slots per TaskManager would exceed the quota, so each slot gets less (memory mode Apply would give the TaskManagers more)", cur.SlotsPerTaskManager)})
		}
	}

	// Heap: a scale-down packs more state on each TaskManager's heap.
	if ok, need, limit := m.heapFits(pl, now.HeapBytes()); !ok {
		if apply {
			needs = true
		} else {
			fits := func(q Plan) bool { f, _, _ := m.heapFits(q, now.HeapBytes()); return f && m.withinBudget(q) }
			q, found := m.reduceToward(pl, -1, fits)
			msg := fmt.Sprintf("the scale-down would put %.0f MiB on a heap of %.0f MiB (at most %.0f MiB with %.0f%% headroom): state on the heap grows per TaskManager as slots go",
				need/mib, float64(now.HeapBytes())/mib, limit/mib, 100*m.p.Memory.Headroom)
			if !found {
				m.d.Memory = m.memoryReport(cur, now, false)
				return cur, append(rs, Reason{Code: ReasonHeapMemoryLimited, Message: msg + "; no smaller scale-down within the policy's bounds and quota fits"}), false
			}
			m.markLimited(pl, q, ReasonHeapMemoryLimited, "the TaskManagers' heap")
			rs = append(rs, Reason{Code: ReasonHeapMemoryLimited, Message: msg + fmt.Sprintf("; the scale-down stops at %d slots", q.Slots)})
			pl = q
		}
	}

	// Network: the buffers of the worst TaskManager. A plan fits when
	// they are within its segments, or no more than the job's current
	// layout needs (it runs, so the estimate for it fits).
	avail := m.segmentsNow(now)
	curReq := m.networkUse(cur, avail).Required
	netFits := func(q Plan) bool { return m.networkUse(q, avail).Required <= max(avail, curReq) }
	if u := m.networkUse(pl, avail); u.Required > max(avail, curReq) {
		if apply {
			needs = true
		} else {
			q, found := m.reduceToward(pl, +1, netFits)
			msg := fmt.Sprintf("the plan needs %d network buffers on its worst TaskManager (%d subtasks, %d input gates, %d result partitions), which has %d (%.0f MiB of network memory): Flink would refuse to deploy it",
				u.Required, u.Subtasks, u.Gates, u.Partitions, avail, float64(now.NetworkBytes)/mib)
			if !found {
				m.d.Memory = m.memoryReport(cur, now, false)
				return cur, append(rs, Reason{Code: ReasonNetworkMemoryLimited, Message: msg + "; no smaller plan within the policy's bounds fits (a lower bound above the current parallelism binds): give the TaskManagers more network memory (memory mode Apply) or lower the bound"}), false
			}
			m.markLimited(pl, q, ReasonNetworkMemoryLimited, "the TaskManagers' network memory")
			rs = append(rs, Reason{Code: ReasonNetworkMemoryLimited, Message: msg + fmt.Sprintf("; reduced to a plan that needs %d", m.networkUse(q, avail).Required)})
			pl = q
		}
	}

	rep := m.memoryReport(pl, now, false)
	tune := rep != nil && !InPlace(*m.j.s, cur, pl) && worthChanging(rep)
	if apply && (needs || tune) {
		mem := rep.Recommended
		what := "the TaskManagers restart anyway"
		if !tune {
			// Only what the plan needs: no part shrinks on the strength
			// of one window when the restart is for the plan.
			mem = growOnly(now, mem)
			rep.Recommended = mem
			what = "the plan needs it"
		}
		mem = mem.Normalized()
		rep.Recommended = mem
		pl.Memory = &mem
		rep.Applied = true
		rs = append(rs, Reason{Code: ReasonMemoryTuning, Message: fmt.Sprintf(
			"the TaskManagers' memory changes in the same restart (%s): process %.0f → %.0f MiB", what,
			float64(now.ProcessBytes)/mib, float64(mem.ProcessBytes)/mib)})
	}
	m.d.Memory = rep
	return pl, rs, true
}

// withinBudget reports whether pl stays within the policy's quota and the
// cluster's capacity, as plan() fitted it.
func (m *model) withinBudget(pl Plan) bool {
	if b := slotBudget(m.p, max(pl.SlotsPerTaskManager, 1), pl.CPUPerTaskManager); b >= 0 && pl.Slots > b {
		return false
	}
	if c, ok := m.clusterCapacity(); ok && pl.Slots > c {
		return false
	}
	return true
}

// growOnly is the recommendation rec with no part smaller than now: heap,
// managed, network and metaspace at the larger of the two.
func growOnly(now, rec TaskManagerMemory) TaskManagerMemory {
	out := now
	out.TaskHeapBytes = max(now.TaskHeapBytes, rec.TaskHeapBytes)
	out.ManagedBytes = max(now.ManagedBytes, rec.ManagedBytes)
	out.NetworkBytes = max(now.NetworkBytes, rec.NetworkBytes)
	out.MetaspaceBytes = max(now.MetaspaceBytes, rec.MetaspaceBytes)
	return out.withProcess()
}

// worthChanging reports whether a recommendation differs from the memory
// now by enough to write it: any part grows, or the process shrinks by
// 5 % or more.
func worthChanging(r *MemoryRecommendation) bool {
	a, b := r.Current, r.Recommended
	if b.TaskHeapBytes > a.TaskHeapBytes || b.ManagedBytes > a.ManagedBytes || b.NetworkBytes > a.NetworkBytes || b.MetaspaceBytes > a.MetaspaceBytes {
		return true
	}
	return float64(a.ProcessBytes-b.ProcessBytes) >= 0.05*float64(a.ProcessBytes)
}

// memoryReport builds the decision's memory recommendation for plan pl.
func (m *model) memoryReport(pl Plan, now TaskManagerMemory, pressure bool) *MemoryRecommendation {
	if m.p.Memory.Mode == MemoryOff {
		return nil
	}
	use := m.networkUse(pl, m.segmentsNow(now))
	rec, why := m.recommendMemory(pl, use, now, pressure)
	tms := int64(max(pl.TaskManagers, 1))
	return &MemoryRecommendation{
		Current: now, Recommended: rec, Network: &use, Reasons: why,
		SavingBytes: int64(max(m.d.Current.TaskManagers, 1))*now.ProcessBytes - tms*rec.ProcessBytes,
	}
}

// reduceToward moves the vertices of pl that change in direction dir (+1:
// raised, −1: lowered) back toward their current parallelism by the least
// fraction that makes fits true (a binary search over one fraction for all
// of them, so the plan keeps its proportions), and lowers raised vertices
// to the smallest parallelism with the same capacity. found is false when
// even the current parallelism does not fit.
func (m *model) reduceToward(pl Plan, dir int, fits func(Plan) bool) (Plan, bool) {
	at := func(t float64) Plan {
		par := make(map[string]int, len(pl.Parallelism))
		for id, q := range pl.Parallelism {
			par[id] = q
		}
		for _, x := range m.j.vertices {
			q, ok := pl.Parallelism[x.v.ID]
			if !ok || (q-x.p)*dir <= 0 {
				continue
			}
			step := int(math.Floor(t * float64(q-x.p) * float64(dir)))
			n := x.p + dir*step
			if dir > 0 {
				n = x.trimToEfficient(n, x.p)
			}
			if x.upper >= x.lower && x.lower > 0 {
				n = min(max(n, x.lower), x.upper) // the policy's bounds still hold
			}
			par[x.v.ID] = n
		}
		return m.j.makePlan(par, pl.SlotsPerTaskManager, pl.CPUPerTaskManager)
	}
	if !fits(at(0)) {
		return pl, false
	}
	lo, hi := 0.0, 1.0
	for i := 0; i < 20; i++ {
		mid := (lo + hi) / 2
		if fits(at(mid)) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return at(lo), true
}

// markLimited records on each vertex that reduced moved from its place in
// pl the memory limit that held it.
func (m *model) markLimited(pl, reduced Plan, code ReasonCode, what string) {
	for _, x := range m.j.vertices {
		a, b := pl.Parallelism[x.v.ID], reduced.Parallelism[x.v.ID]
		if a == b {
			continue
		}
		x.reason(code, "held to p=%d by %s (the plan wanted %d)", b, what, a)
		m.limit[x] = code
		if m.ceiling != nil && b > x.p {
			m.ceiling[x.v.ID] = b
		}
	}
}

// memoryOnly finishes a decision that rescales nothing: it carries the
// memory recommendation for the job as it runs and, in Apply mode, turns
// into a restart of its own that only sets the TaskManagers' memory when
// the risk justifies one (the TaskManagers are GC-bound or their heap is
// full: MemoryPressure) or the saving does (the recommendation frees at
// least memory.minSaving of their process memory). Otherwise it holds,
// with the memory pressure among its reasons.
func (m *model) memoryOnly(reasons []Reason) Decision {
	d := m.d
	pressure := m.memoryPressure()
	if pressure != nil {
		reasons = append(reasons, *pressure)
	}
	now, known := m.memoryNow()
	if !known {
		return d.hold(reasons)
	}
	cur := d.Current
	rep := m.memoryReport(cur, now, pressure != nil)
	d.Memory = rep
	if rep == nil || !m.memoryChangeable() || !worthChanging(rep) {
		return d.hold(reasons)
	}
	total := float64(max(cur.TaskManagers, 1)) * float64(now.ProcessBytes)
	saves := m.p.Memory.MinSaving > 0 && float64(rep.SavingBytes) >= m.p.Memory.MinSaving*total
	if pressure == nil && !saves {
		return d.hold(reasons)
	}
	if pressure != nil && rep.Recommended.HeapBytes() <= now.HeapBytes() {
		return d.hold(reasons) // nothing to give: the heap would not grow
	}
	pl := cur
	pl.Parallelism = make(map[string]int, len(cur.Parallelism))
	for id, q := range cur.Parallelism {
		pl.Parallelism[id] = q
	}
	mem := rep.Recommended.Normalized()
	rep.Recommended = mem
	pl.Memory = &mem
	rep.Applied = true
	d.Recommended = pl
	m.downtime = m.predictDowntime(false, true)
	d.PredictedDowntime = D(m.downtime)
	why := "the TaskManagers are short of memory"
	if pressure == nil {
		why = fmt.Sprintf("it frees %.0f MiB, at least memory.minSaving (%.0f%%) of the TaskManagers' %.0f MiB",
			float64(rep.SavingBytes)/mib, 100*m.p.Memory.MinSaving, total/mib)
	}
	reasons = append(reasons, Reason{Code: ReasonMemoryTuning, Message: fmt.Sprintf(
		"restart to set the TaskManagers' memory (%s): process %.0f → %.0f MiB, heap %.0f → %.0f MiB",
		why, float64(now.ProcessBytes)/mib, float64(mem.ProcessBytes)/mib, float64(now.HeapBytes())/mib, float64(mem.HeapBytes())/mib)})
	out := m.commit(reasons)
	if out.Action == ActionScale {
		out.Summary = fmt.Sprintf("restart with TaskManager memory %.0f → %.0f MiB (parallelism unchanged); predicted downtime %s",
			float64(now.ProcessBytes)/mib, float64(mem.ProcessBytes)/mib, d.PredictedDowntime.Round(time.Second))
	} else {
		// Waiting (cooldown, rescale in progress): the plan is not applied.
		out.Recommended = cur
		if out.Memory != nil {
			out.Memory.Applied = false
		}
	}
	return out
}
