package sim

import (
	"math"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// route says how one upstream subtask's output is split over the downstream
// subtasks of an edge.
type route struct {
	// allToAll: every upstream subtask sends share[j] of its output to
	// downstream subtask j (HASH by key-group mass, REBALANCE evenly,
	// BROADCAST all of it to each).
	allToAll bool
	share    []float64
	// pointwise (FORWARD, RESCALE): upstream s sends to targets[s].
	targets [][]target
}

type target struct {
	j     int
	share float64
}

func makeRoute(e *gedge, p, q int) route {
	switch e.ship {
	case "HASH":
		kw := e.to.keyWeight
		share := make([]float64, q)
		for j := range q {
			first, last := assign.KeyGroupRange(len(kw), q, j)
			for kg := first; kg <= last; kg++ {
				share[j] += kw[kg]
			}
		}
		return route{allToAll: true, share: share}
	case "REBALANCE", "BROADCAST":
		share := make([]float64, q)
		for j := range share {
			share[j] = 1 / float64(q)
			if e.ship == "BROADCAST" {
				share[j] = 1
			}
		}
		return route{allToAll: true, share: share}
	default: // FORWARD, RESCALE: Flink's POINTWISE distribution
		targets := make([][]target, p)
		for s := range p {
			if p >= q {
				targets[s] = []target{{j: s * q / p, share: 1}}
				continue
			}
			lo, hi := s*q/p, (s+1)*q/p
			for j := lo; j < hi; j++ {
				targets[s] = append(targets[s], target{j: j, share: 1 / float64(hi-lo)})
			}
		}
		return route{targets: targets}
	}
}

// flow moves records through the running job for dt seconds. Vertices are
// visited in topological order; each subtask processes what it has, up to
// its capacity, and no more than its downstream buffers can take: a subtask
// whose output channel is full waits (backpressure), and that wait is what
// Flink reports as backPressuredTimeMsPerSecond. Buffers are fluid; source
// reads are whole records, so Kafka offsets stay integers.
func (j *Job) flow(dt float64) {
	r := j.run
	maxBp := 0.0
	for _, v := range j.g.vertices {
		ts := r.tasks[v.id]
		sel := v.spec.Selectivity
		possible := make([]float64, len(ts))
		for k, t := range ts {
			avail := t.queue
			if v.isSource() {
				avail = 0
				if r.stopping == nil {
					for _, tp := range r.readers[v.id][k] {
						avail += float64(j.end[tp] - r.positions[tp])
					}
				}
			}
			possible[k] = math.Min(avail, t.capacity*dt)
		}
		// The share of its possible work each subtask may do before its
		// output channels fill up.
		allowed := make([]float64, len(ts))
		for k := range allowed {
			allowed[k] = 1
		}
		for _, e := range v.outs {
			rt, down := r.routes[e], r.tasks[e.to.id]
			if rt.allToAll {
				total := 0.0
				for _, x := range possible {
					total += x * sel
				}
				f := 1.0
				for jj, sh := range rt.share {
					if d := total * sh; d > 0 {
						f = math.Min(f, math.Max(0, down[jj].bufCap-down[jj].queue)/d)
					}
				}
				for k := range allowed {
					allowed[k] = math.Min(allowed[k], f)
				}
				continue
			}
			demand := make([]float64, len(down))
			for s, tg := range rt.targets {
				for _, t := range tg {
					demand[t.j] += possible[s] * sel * t.share
				}
			}
			for s, tg := range rt.targets {
				for _, t := range tg {
					if d := demand[t.j]; d > 0 {
						allowed[s] = math.Min(allowed[s], math.Max(0, down[t.j].bufCap-down[t.j].queue)/d)
					}
				}
			}
		}
		// What the subtasks send over each all-to-all edge: every subtask
		// splits its output by the same shares, so the sum is split once.
		var sent []float64
		for k, t := range ts {
			x := possible[k] * allowed[k]
			if v.isSource() {
				x = j.read(v, k, x)
				t.srcIn += x
				if x > 0 {
					t.pendingRegistered = true
				}
			} else {
				t.queue = math.Max(0, t.queue-x)
				t.in += x
			}
			out := x * sel
			t.out += out
			if sent == nil {
				sent = make([]float64, len(v.outs))
			}
			for i, e := range v.outs {
				rt := r.routes[e]
				if rt.allToAll {
					sent[i] += out
					continue
				}
				down := r.tasks[e.to.id]
				for _, tg := range rt.targets[k] {
					down[tg.j].queue += out * tg.share
				}
			}
			if len(v.outs) == 0 {
				j.delivered += out
			}
			full := t.capacity * dt
			busy := math.Min(1, x/full)
			bp := math.Max(0, math.Min(1-busy, (possible[k]-x)/full))
			t.busyMs += 1000 * dt * busy
			// A subtask that can hardly send at all is hard-backpressured
			// (no output buffer at all); one that sends some is soft.
			if allowed[k] < 0.05 {
				t.hardMs += 1000 * dt * bp
			} else {
				t.softMs += 1000 * dt * bp
			}
			t.idleMs += 1000 * dt * (1 - busy - bp)
			maxBp = math.Max(maxBp, bp)
		}
		for i, e := range v.outs {
			if rt := r.routes[e]; rt.allToAll && i < len(sent) {
				down := r.tasks[e.to.id]
				for jj, sh := range rt.share {
					down[jj].queue += sent[i] * sh
				}
			}
		}
	}
	r.ckpt.maxBp = maxBp
}

// read takes up to budget records from a source reader's partitions, sharing
// the budget equally among partitions with data (a fetcher polls them in
// turn), in whole records, and returns how many it read.
func (j *Job) read(v *gvertex, k int, budget float64) float64 {
	r := j.run
	parts := r.readers[v.id][k]
	avail := make([]float64, len(parts))
	alloc := make([]float64, len(parts))
	var active []int
	for i, tp := range parts {
		avail[i] = float64(j.end[tp] - r.positions[tp])
		if avail[i] > 0 {
			active = append(active, i)
		}
	}
	for remaining := budget; remaining > 1e-9 && len(active) > 0; {
		share := remaining / float64(len(active))
		next := active[:0]
		for _, i := range active {
			take := math.Min(avail[i], share)
			alloc[i] += take
			avail[i] -= take
			remaining -= take
			if avail[i] > 1e-9 {
				next = append(next, i)
			}
		}
		active = next
	}
	total := 0.0
	for i, tp := range parts {
		x := r.partCarry[tp] + alloc[i]
		n := math.Floor(x + 1e-9)
		left := float64(j.end[tp] - r.positions[tp])
		if n >= left {
			n, x = left, left
		}
		r.partCarry[tp] = x - n
		r.positions[tp] += int64(n)
		total += n
	}
	return total
}
