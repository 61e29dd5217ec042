package bench

import (
	"fmt"
	"math"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// OracleName is the oracle's policy name in tables.
const OracleName = "oracle"

// Oracle computes the resource lower bound of a scenario from the
// simulator's ground truth, without running a policy: knowing the load at
// every moment, the smallest parallelism per vertex whose true capacity
// (sim.Job.Capacity: per-subtask capacity, scalability curve, busiest
// subtask's share of partitions or key groups) keeps the vertex at or under
// the target utilization, re-chosen every step at no restart cost, on
// TaskManagers with one slot per core (no CPU contention). Its slot-hours
// and core-hours are the denominators of the ratios.
//
// Its OverSLO is the unavoidable minimum instead: the time over the lag SLO
// of a job that pays one restart downtime (savepoint + restart +
// TaskManager start-up) at the start when the deployed job cannot meet the
// load or holds a backlog, and at each change of load that needs more
// slots, and otherwise runs at the most its vertices can ever process.
func Oracle(s *scenario.Scenario, target float64, step time.Duration) (*Result, error) {
	if step <= 0 {
		step = 30 * time.Second
	}
	job, err := sim.NewJob(s.Job, sim.Options{Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	truth := job.Truth()
	slotsPerTM := max(1, min(s.Job.TaskManager.Slots, int(math.Floor(s.Job.TaskManager.CPU))))
	corePerSlot := s.Job.TaskManager.CPU / float64(slotsPerTM)
	groups := map[string]string{}
	for _, v := range s.Job.Vertices {
		id, _ := job.VertexID(v.Name)
		groups[id] = v.SlotSharingGroup
	}
	// The most each vertex can ever process (at the load's topic mix at t=0),
	// and the parallelism cap to search to.
	limit := map[string]int{}
	for _, v := range truth {
		l := v.MaxParallelism
		if l <= 0 || l > 1024 {
			l = 1024
		}
		limit[v.ID] = l
	}
	rates0 := map[string]float64{}
	for _, tp := range s.Job.Topics {
		rates0[tp.Name] = s.Rate(tp.Name, 0)
	}
	top := topCapacity(job, truth, limit, slotsPerTM, rates0)
	res := &Result{Scenario: s.Name, Policy: OracleName, Duration: s.Duration}
	par := map[string]int{}
	for _, v := range truth {
		par[v.ID] = 1
	}
	downtime := s.Job.Restart.Time + s.Job.Restart.TaskManagerStartup + s.Job.Checkpoints.Base
	// The ideal lag trajectory.
	lag := 0.0
	for _, tl := range s.Load {
		for _, l := range s.InitialPartitionLag(tl.Topic) {
			lag += float64(l)
		}
	}
	var downUntil time.Duration
	prevSlots := -1
	for t := time.Duration(0); t < s.Duration; t += step {
		rates := map[string]float64{}
		load := 0.0
		for _, tp := range s.Job.Topics {
			rates[tp.Name] = s.Rate(tp.Name, t)
			load += rates[tp.Name]
		}
		sh := shares(truth, rates)
		for _, v := range truth {
			need := load * sh[v.ID] / target
			par[v.ID] = smallestParallelism(job, v.ID, need, top[v.ID], par[v.ID], limit[v.ID], slotsPerTM, rates)
		}
		slots := slotsFor(par, groups)
		if t == 0 {
			deployed := map[string]int{}
			for _, v := range s.Job.Vertices {
				id, _ := job.VertexID(v.Name)
				deployed[id] = v.Parallelism
			}
			c := jobCapacity(job, truth, deployed, s.Job.TaskManager.Slots, rates)
			if c < load || lag/math.Max(load, 1) > s.SLO.Lag.Seconds() {
				downUntil = downtime
			}
		} else if slots > prevSlots {
			downUntil = max(downUntil, t+downtime)
		}
		prevSlots = slots
		h := step.Hours()
		res.SlotHours += float64(slots) * h
		res.CoreHours += float64(slots) * corePerSlot * h
		// Lag at the most the job can process (nothing while down).
		capacity := 0.0
		if t >= downUntil {
			capacity = maxCapacity(truth, top, rates)
		}
		lag = math.Max(0, lag+(load-capacity)*step.Seconds())
		lagS := 0.0
		if load > 0 {
			lagS = lag / load
		}
		if lagS > s.SLO.Lag.Seconds() {
			res.OverSLO += step
		}
		res.MaxLag = math.Max(res.MaxLag, lag)
		res.MaxLagSeconds = math.Max(res.MaxLagSeconds, lagS)
		byName := map[string]int{}
		for _, v := range truth {
			byName[v.Name] = par[v.ID]
		}
		res.Timeline = append(res.Timeline, Point{T: t, Load: load, Capacity: jobCapacity(job, truth, par, slotsPerTM, rates),
			Slots: slots, Cores: float64(slots) * corePerSlot, Parallelism: byName, Lag: lag, LagSeconds: lagS})
	}
	return res, nil
}

// smallestParallelism is the least p in [1, limit] whose capacity covers
// need, searched from the previous answer; when none does, the least p with
// the most capacity there is (more subtasks would only idle).
func smallestParallelism(job *sim.Job, id string, need, top float64, from, limit, slotsPerTM int, rates map[string]float64) int {
	need = math.Min(need, top*(1-1e-9))
	fits := func(p int) bool {
		c, _ := job.Capacity(id, p, slotsPerTM, rates)
		return c >= need
	}
	p := min(max(from, 1), limit)
	if fits(p) {
		for p > 1 && fits(p-1) {
			p--
		}
		return p
	}
	for p < limit && !fits(p) {
		p++
	}
	return p
}

// topCapacity is each vertex's most productive capacity over p ≤ limit.
func topCapacity(job *sim.Job, truth []sim.VertexTruth, limit map[string]int, slotsPerTM int, rates map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, v := range truth {
		for p := 1; p <= limit[v.ID]; p++ {
			c, _ := job.Capacity(v.ID, p, slotsPerTM, rates)
			out[v.ID] = math.Max(out[v.ID], c)
		}
	}
	return out
}

// maxCapacity is the arrival rate the job could sustain with every vertex at
// its most productive parallelism.
func maxCapacity(truth []sim.VertexTruth, top map[string]float64, rates map[string]float64) float64 {
	sh := shares(truth, rates)
	best := math.Inf(1)
	for _, v := range truth {
		if sh[v.ID] > 0 {
			best = math.Min(best, top[v.ID]/sh[v.ID])
		}
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return best
}

// slotsFor is the slots a plan takes: per slot-sharing group, its largest
// parallelism.
func slotsFor(par map[string]int, groups map[string]string) int {
	g := map[string]int{}
	for id, p := range par {
		g[groups[id]] = max(g[groups[id]], p)
	}
	n := 0
	for _, p := range g {
		n += p
	}
	return n
}
