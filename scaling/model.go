package scaling

import (
	"fmt"
	"math"
	"time"
)

const (
	// backpressuredAt is the backpressured fraction above which a subtask
	// counts as backpressured (it waits on its downstream, not on itself).
	backpressuredAt = 0.1
	// minMeasurableBusy is the busy fraction below which a backpressured
	// vertex's capacity cannot be measured: records/busy would divide two
	// tiny, noisy numbers.
	minMeasurableBusy = 0.05
	// minBusy is the busy fraction below which no vertex's capacity is
	// measured (Flink reports 0 for idle or unsampled tasks).
	minBusy = 0.001
	// rel is the relative tolerance of capacity comparisons, so that a
	// vertex sized exactly at its target is not resized by rounding.
	rel = 1e-9
)

// measure derives each vertex's per-subtask capacity and, when history is
// rich enough, its scalability curve.
func (j *job) measure(h *History) {
	for _, x := range j.vertices {
		switch {
		case x.in == 0:
			x.reason(ReasonCapacityUnmeasured, "no records in: capacity cannot be measured")
		case x.busyMax < minBusy:
			x.reason(ReasonCapacityUnmeasured, "busy %.1f ms/s: too little to measure capacity", 1000*x.busyMax)
		case x.bpMax >= 0.5 && x.busyMax < minMeasurableBusy:
			x.reason(ReasonCapacityUnmeasured, "backpressured %.0f ms/s and busy only %.0f ms/s: capacity cannot be measured until its downstream keeps up", 1000*x.bpMax, 1000*x.busyMax)
		default:
			x.measurable = true
			// The busiest subtask handles share(p) of the vertex's
			// partitioned records, and every broadcast record, while busy
			// busyMax of the time.
			x.bcast = x.broadcastIn()
			x.perSubtask = (x.spread.share(x.p)*x.partitionedIn() + x.bcast) / x.busyMax
		}
		if !x.measurable {
			continue
		}
		pts := append(h.observations(x.v.ID), point{n: float64(x.p), x: x.tpr()})
		if c, ok := fitUSL(pts); ok {
			x.curve, x.fitted = c, true
			x.reason(ReasonFittedScalability, "scalability fitted to %d parallelisms seen: contention σ=%.3g, coherency κ=%.3g (efficiency at p=%d is %.0f%% of linear)",
				len(distinctParallelisms(pts)), c.sigma, c.kappa, x.p, 100*c.efficiency(x.p))
		}
	}
}

// targets propagates target rates and backlogs from the sources downstream
// through each edge's observed output/input ratio, in topological order. A
// Kafka source's target is its arrival rate at the brokers, else what it
// consumed plus how fast its lag grew. The backlog is the current lag plus
// what arrives during the restart; the catch-up rate drains it within
// catchUp.
func (j *job) targets(catchUp, downtime time.Duration) []Reason {
	var rs []Reason
	for _, x := range j.vertices {
		if x.isSource() {
			switch {
			case x.hasArrival:
				x.target = x.arrival
			case x.hasLagRate:
				x.target = math.Max(0, x.in+x.lagRate)
			default:
				x.target = x.in
			}
			x.lagBacklog = x.lag
			if x.target > 0 && x.in == 0 && x.busyMax >= minBusy {
				rs = append(rs, Reason{Code: ReasonNoThroughput, Vertex: x.v.ID,
					Message: fmt.Sprintf("the source is busy %.0f ms/s but reads nothing while %.0f rec/s arrive", 1000*x.busyMax, x.target)})
			}
		} else {
			x.target, x.lagBacklog, x.bcast = 0, 0, 0
			for _, e := range x.ins {
				if x.broadcastOnly() && e.from.hasOut && len(x.ins) > 1 {
					// Fed only by broadcast: Flink counts every record once
					// per subtask, so each edge brings p times what its
					// upstream sends.
					e.ratio = 0
					if pin := e.from.partitionedIn(); pin > 0 {
						e.ratio = float64(x.p) * e.from.out / pin
					}
					x.target += e.from.target * e.ratio
					x.lagBacklog += e.from.lagBacklog * e.ratio
					continue
				}
				if e.broadcastKnown() {
					// Every subtask receives every record: per subtask,
					// the upstream's target times its output ratio.
					e.ratio = 0
					if pin := e.from.partitionedIn(); pin > 0 {
						e.ratio = e.from.out / pin
					}
					x.bcast += e.from.target * e.ratio
					continue
				}
				r, ok := j.edgeRatio(e)
				if !ok {
					rs = append(rs, Reason{Code: ReasonMissingMetrics, Vertex: x.v.ID,
						Message: fmt.Sprintf("numRecordsOutPerSecond of %s is needed to split the records %s receives from several inputs", e.from.v.ID, x.v.ID)})
					continue
				}
				if e.from.in == 0 && e.from.target > 0 {
					rs = append(rs, Reason{Code: ReasonNoThroughput, Vertex: e.from.v.ID,
						Message: fmt.Sprintf("no records flow through %s although it should carry %.0f rec/s: its output ratio is unknown", e.from.v.ID, e.from.target)})
					continue
				}
				e.ratio = r
				x.target += e.from.target * r
				x.lagBacklog += e.from.lagBacklog * r
			}
		}
		x.backlog = x.lagBacklog + x.target*downtime.Seconds()
		if cu := catchUp.Seconds(); cu > 0 {
			x.lagCatchUp = x.lagBacklog / cu
			x.catchUp = x.backlog / cu
		}
	}
	return rs
}

// edgeRatio is the records per second that arrive over e per record into its
// upstream vertex. The rate on the edge is the downstream input rate when it
// has one input; with several, the downstream input rate less what the other
// inputs send (when each of those sends only there); otherwise the upstream's
// output rate.
func (j *job) edgeRatio(e *edge) (float64, bool) {
	from, to := e.from, e.to
	var rate float64
	switch {
	case len(to.ins) == 1:
		rate = to.in
	case othersSendOnlyHere(e):
		rate = to.partitionedIn()
		for _, o := range to.ins {
			if o != e && !o.broadcastKnown() {
				rate -= o.from.out
			}
		}
		rate = math.Max(0, rate)
	case from.hasOut:
		rate = from.out
	default:
		return 0, false
	}
	// Per partitioned record into from: what it receives by broadcast
	// (rules, configuration) shapes its output little.
	in := from.partitionedIn()
	if in == 0 {
		return 0, true
	}
	return rate / in, true
}

// broadcastKnown reports whether e is a BROADCAST edge whose upstream
// reports its output rate (every subtask receives all of it: an operator's
// records go to each of its consumers, and numRecordsOut counts them once)
// into a vertex that also has partitioned inputs. A vertex fed only by
// broadcast has nothing else to size on: its broadcast inputs count as
// partitioned ones.
func (e *edge) broadcastKnown() bool {
	if e.ship != ShipBroadcast || !e.from.hasOut {
		return false
	}
	for _, o := range e.to.ins {
		if o.ship != ShipBroadcast {
			return true
		}
	}
	return false
}

// broadcastOnly reports whether every input of the vertex is a broadcast:
// each subtask then processes every record, and no parallelism changes its
// load. The model leaves it as it is.
func (x *vertex) broadcastOnly() bool {
	for _, e := range x.ins {
		if e.ship != ShipBroadcast {
			return false
		}
	}
	return len(x.ins) > 0
}

// broadcastIn is what each subtask receives over broadcast edges now.
func (x *vertex) broadcastIn() float64 {
	b := 0.0
	for _, e := range x.ins {
		if e.broadcastKnown() {
			b += e.from.out
		}
	}
	return b
}

// partitionedIn is the vertex's records in less those broadcast to it:
// Flink counts a broadcast record once per receiving subtask.
func (x *vertex) partitionedIn() float64 {
	return math.Max(0, x.in-float64(x.p)*x.broadcastIn())
}

func othersSendOnlyHere(e *edge) bool {
	for _, o := range e.to.ins {
		if o != e && (len(o.from.outs) != 1 || !o.from.hasOut) {
			return false
		}
	}
	return true
}

// bounds sets each vertex's lower and upper parallelism from the policy, its
// override, its max parallelism and, for a Kafka source, its partitions, and
// remembers which bound binds.
func (j *job) bounds(p *Policy) {
	for _, x := range j.vertices {
		x.lower, x.lowerLimit = p.MinParallelism, ReasonPolicyLimited
		x.upper, x.upperLimit = p.MaxParallelism, ReasonPolicyLimited
		if o, ok := p.override(x.v); ok {
			x.excluded = o.Exclude
			if o.MinParallelism > 0 {
				x.lower = o.MinParallelism
			}
			if o.MaxParallelism > 0 {
				x.upper = o.MaxParallelism
			}
		}
		if x.maxP <= x.upper {
			x.upper, x.upperLimit = x.maxP, ReasonMaxParallelismLimited
		}
		if n := x.v.Partitions; x.isSource() && n > 0 && n <= x.upper {
			x.upper, x.upperLimit = n, ReasonPartitionLimited
		}
		x.lower = min(x.lower, x.upper)
	}
}

// need is the capacity (records/s at 100 % busy) a vertex needs: enough to
// run at util in steady state, and enough to drain a backlog at catchUp
// records/s on top of the target rate while it lasts. A backlog is drained
// with the headroom the utilization target keeps (running busier than the
// target while it drains is what the headroom is for); only a backlog
// larger than the headroom needs more.
func (x *vertex) need(util, catchUp float64) float64 {
	return math.Max(x.target/util, x.target+catchUp)
}

// required is the smallest parallelism within bounds at which the busiest
// subtask can sustain the target rate at the target utilization, and the
// target plus the catch-up rate at full speed. When no parallelism can, it is the one with
// the most capacity, and limit names what binds.
func (x *vertex) required(util float64) (q int, limit ReasonCode) {
	if x.excluded {
		return x.p, ""
	}
	if x.broadcastOnly() {
		return min(max(x.p, x.lower), x.upper), ""
	}
	return x.requiredAt(util, x.target, x.catchUp)
}

// requiredFor is the parallelism the vertex needs for another target rate
// (a forecast), with the same catch-up.
func (x *vertex) requiredFor(target, util float64) int {
	q, _ := x.requiredAt(util, target, x.catchUp)
	return q
}

// requiredAt is the smallest parallelism within bounds that carries target
// at util and target + catchUp at full speed.
func (x *vertex) requiredAt(util, target, catchUp float64) (q int, limit ReasonCode) {
	need := math.Max(target/util, target+catchUp)
	if need == 0 && x.bcast == 0 {
		// Nothing arrives and nothing waits: the least the bounds allow.
		return x.lower, ""
	}
	if !x.measurable {
		// Nothing to size on: keep the current parallelism, within bounds.
		return min(max(x.p, x.lower), x.upper), ""
	}
	// capacityAt(q) ≤ perSubtask·q/eff(p), so no q below need·eff(p)/perSubtask
	// is feasible: start the scan there.
	start := max(x.lower, int(need*x.curve.efficiency(x.p)/x.perSubtask))
	peak := x.curve.peak()
	for q := start; q <= x.upper; q++ {
		if x.meets(q, util, target, catchUp) {
			return q, ""
		}
		if float64(q) > peak+1 {
			break
		}
	}
	// Infeasible: take the parallelism with the most capacity.
	if float64(x.upper) > peak {
		best := x.lower
		for _, q := range []int{int(math.Floor(peak)), int(math.Ceil(peak))} {
			q = min(max(q, x.lower), x.upper)
			if x.capacityAt(q) > x.capacityAt(best) {
				best = q
			}
		}
		return best, ReasonScalabilityLimited
	}
	return x.upper, x.upperLimit
}

// trimToEfficient lowers q while a smaller parallelism has as much capacity
// (e.g. 50 subtasks over 128 key groups carry no more than 43: both leave
// 3 key groups on the busiest subtask).
func (x *vertex) trimToEfficient(q, lo int) int {
	if !x.measurable {
		return q
	}
	c := x.capacityAt(q)
	for q-1 >= lo && x.capacityAt(q-1) >= c*(1-rel) {
		q--
	}
	return q
}
