package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// OracleName is the oracle's policy name in tables.
const OracleName = "oracle"

// Oracle computes two lower bounds of a scenario from the simulator's
// ground truth, without running a policy.
//
// Resources: knowing the load at every moment, the smallest parallelism per
// vertex whose true capacity (sim.Job.Capacity: per-subtask capacity,
// scalability curve, busiest subtask's share of partitions or key groups)
// keeps the vertex at or under the target utilization, re-chosen every step
// at no restart cost, on TaskManagers of the scenario's shape with one slot
// per core (no CPU contention): slots per TaskManager = min(slots, ⌊cpu⌋).
// It holds whole TaskManagers, ⌈slots / slots per TaskManager⌉, like any
// job: SlotHours and CoreHours count them (the denominators of the ratios),
// UsedSlotHours the bare slots.
//
// Time over the SLO: the unavoidable minimum (see unavoidable), the least
// time over the lag SLO of a job that restarts only at the start of a
// regime of the load (changePoints), to the smallest size sufficient for
// that regime, paying the cheapest restart the actuator could perform.
func Oracle(s *scenario.Scenario, target float64, step time.Duration) (*Result, error) {
	if step <= 0 {
		step = 30 * time.Second
	}
	job, err := sim.NewJob(s.Job, sim.Options{Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	o := newOracle(s, job, step)
	res := &Result{Scenario: s.Name, Policy: OracleName, Duration: s.Duration}
	par := map[string]int{}
	for _, v := range o.truth {
		par[v.ID] = 1
	}
	h := step.Hours()
	for i, t := range o.times {
		load, rates := o.load[i], o.rates[i]
		out := map[string]float64{}
		for _, v := range o.truth { // topological order: a vertex's flow needs its inputs' sizes
			f := inflow(v, out, rates, load)
			par[v.ID] = o.smallestParallelism(v.ID, f, load/target, par[v.ID], rates)
			out[v.ID] = f.out(v.Selectivity, par[v.ID])
		}
		used := slotsFor(par, o.groups)
		tms := ceilDiv(used, o.slotsPerTM)
		res.UsedSlotHours += float64(used) * h
		res.SlotHours += float64(tms*o.slotsPerTM) * h
		res.CoreHours += float64(tms) * s.Job.TaskManager.CPU * h
		byName := map[string]int{}
		for _, v := range o.truth {
			byName[v.Name] = par[v.ID]
		}
		res.Timeline = append(res.Timeline, Point{T: t, Load: load, Capacity: jobCapacity(job, o.truth, par, o.slotsPerTM, rates),
			Slots: tms * o.slotsPerTM, UsedSlots: used, Cores: float64(tms) * s.Job.TaskManager.CPU, Parallelism: byName})
	}
	o.unavoidable(res)
	return res, nil
}

// oracle holds what both bounds need: the job's truth, the load sampled on
// the oracle's step (sizes) and on the scenario's tick (lag).
type oracle struct {
	s     *scenario.Scenario
	job   *sim.Job
	truth []sim.VertexTruth
	// slotsPerTM: one slot per core; groups: vertex id → slot-sharing
	// group; limit: the parallelism searched to; top: each vertex's most
	// productive capacity (sim.Job.Capacity); bcast: for a vertex with a
	// BROADCAST input, Capacity and SubtaskCapacity at every p ≤ limit
	// (its most productive p depends on its mix of inputs); broadcast:
	// some vertex has one.
	slotsPerTM int
	groups     map[string]string
	limit      map[string]int
	top        map[string]float64
	bcast      map[string][2][]float64
	broadcast  bool

	// The sizing grid: offsets, the load over all topics and per topic.
	step  time.Duration
	times []time.Duration
	load  []float64
	rates []map[string]float64

	// The lag grid, the scenario's tick as the runs step: per tick the
	// records arriving during it and the load at its end.
	tick     time.Duration
	arrivals []float64
	loadEnd  []float64
}

func newOracle(s *scenario.Scenario, job *sim.Job, step time.Duration) *oracle {
	o := &oracle{s: s, job: job, truth: job.Truth(), step: step, groups: slotSharingGroups(job, s),
		limit: map[string]int{}, tick: s.Tick}
	o.slotsPerTM = max(1, min(s.Job.TaskManager.Slots, int(math.Floor(s.Job.TaskManager.CPU))))
	for _, v := range o.truth {
		l := v.MaxParallelism
		if l <= 0 || l > 1024 {
			l = 1024
		}
		o.limit[v.ID] = l
	}
	// The most each vertex can ever process, at the load's topic mix at
	// t=0.
	o.top = topCapacity(job, o.truth, o.limit, o.slotsPerTM, o.ratesAt(0))
	o.bcast = map[string][2][]float64{}
	for _, v := range o.truth {
		if !slices.Contains(v.Broadcast, true) {
			continue
		}
		o.broadcast = true
		var caps [2][]float64
		for p := 1; p <= o.limit[v.ID]; p++ {
			c, _ := job.Capacity(v.ID, p, o.slotsPerTM, o.ratesAt(0))
			sc, _ := job.SubtaskCapacity(v.ID, p, o.slotsPerTM)
			caps[0], caps[1] = append(caps[0], c), append(caps[1], sc)
		}
		o.bcast[v.ID] = caps
	}
	for t := time.Duration(0); t < s.Duration; t += step {
		r := o.ratesAt(t)
		o.times, o.rates, o.load = append(o.times, t), append(o.rates, r), append(o.load, sum(r))
	}
	if o.tick <= 0 {
		o.tick = scenario.DefaultTick
	}
	for t := time.Duration(0); t < s.Duration; t += o.tick {
		a, l := 0.0, 0.0
		for _, tp := range s.Job.Topics {
			a += s.Arrivals(tp.Name, t, t+o.tick)
			l += s.Rate(tp.Name, t+o.tick)
		}
		o.arrivals, o.loadEnd = append(o.arrivals, a), append(o.loadEnd, l)
	}
	return o
}

func (o *oracle) ratesAt(t time.Duration) map[string]float64 {
	r := map[string]float64{}
	for _, tp := range o.s.Job.Topics {
		r[tp.Name] = o.s.Rate(tp.Name, t)
	}
	return r
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, x := range m {
		t += x
	}
	return t
}

func ceilDiv(a, b int) int { return (a + b - 1) / max(b, 1) }

// smallestParallelism is the least p in [1, limit] at which vertex id,
// receiving f per arriving record, sustains need arrivals per second
// (sustains), searched from the previous answer; when none does, the least
// p with the most there is (more subtasks would only idle).
func (o *oracle) smallestParallelism(id string, f flow, need float64, from int, rates map[string]float64) int {
	need = math.Min(need, o.topSustains(id, f)*(1-1e-9))
	fits := func(p int) bool {
		return sustains(o.job, id, f, p, o.slotsPerTM, rates) >= need
	}
	p := min(max(from, 1), o.limit[id])
	if fits(p) {
		for p > 1 && fits(p-1) {
			p--
		}
		return p
	}
	for p < o.limit[id] && !fits(p) {
		p++
	}
	return p
}

// topSustains is the most arrivals per second vertex id sustains at any
// parallelism up to its limit, receiving f per arriving record.
func (o *oracle) topSustains(id string, f flow) float64 {
	caps, ok := o.bcast[id]
	if !ok || f.bcast <= 0 {
		if f.part <= 0 {
			return math.Inf(1)
		}
		return o.top[id] / f.part
	}
	best := 0.0
	for i := range caps[0] {
		t := f.bcast / caps[1][i]
		if f.part > 0 {
			t += f.part / caps[0][i]
		}
		best = math.Max(best, 1/t)
	}
	return best
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
// its most productive parallelism, the broadcast inputs' receivers sending
// on the fewest copies (at parallelism 1): no size of the job sustains
// more.
func (o *oracle) maxCapacity(rates map[string]float64) float64 {
	fl := flows(o.truth, rates, nil)
	best := math.Inf(1)
	for _, v := range o.truth {
		best = math.Min(best, o.topSustains(v.ID, fl[v.ID]))
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

// slotSharingGroups maps the job's vertex ids to their slot-sharing group
// ("default" when unnamed, as Flink and the simulator name it).
func slotSharingGroups(job *sim.Job, s *scenario.Scenario) map[string]string {
	out := map[string]string{}
	for _, v := range s.Job.Vertices {
		id, _ := job.VertexID(v.Name)
		g := v.SlotSharingGroup
		if g == "" {
			g = "default"
		}
		out[id] = g
	}
	return out
}

// unavoidable sets the oracle's time over the SLO, its lag (MaxLag,
// MaxLagSeconds, the timeline's) and the restarts it pays (Unavoidable).
//
// The load splits into regimes at its change points (changePoints). The
// job starts as deployed and, like every run, is down for its first start
// (restart time + TaskManager start-up). At the start of each regime it
// either keeps its size and runs at that size's true capacity (jobCapacity),
// or restarts once, as early as it can (at the regime's start, or when its
// first start or previous restart ends), to the smallest size sufficient
// for the regime (every vertex at or under 100 % busy at the regime's peak
// load), paying the cheapest downtime the actuator could get
// (restartDowntime); until the regime ends it then runs at the most its
// vertices can ever process (maxCapacity), as a job that drains a backlog
// at full size and comes down to the sufficient size for free would. The
// lag follows the runs' accounting tick by tick: the scenario's arrivals,
// less what the job processes while up, and a tick is over the SLO when
// the lag over the load at its end exceeds it.
//
// Of every such plan (a restart or none at each regime), the bound is the
// one with the least time over the SLO, then the fewest restarts: a
// depth-first search that drops a state another one at the same regime and
// size beats on time over the SLO, lag, downtime still to come and
// restarts (the lag only grows with each of them); past 4096 states it
// follows the locally better option only. No restart comes before
// the change that calls for it or more than once per change, none is
// cheaper than the actuator's cheapest, and no job runs faster than its
// most productive parallelism, so no policy should spend less time over the
// SLO; TestEveryScenarioConservesRecords checks it on the library.
func (o *oracle) unavoidable(res *Result) {
	s := o.s
	ticks := len(o.arrivals)
	bounds := []int{0}
	for _, c := range changePoints(s) {
		if i := int((c + o.tick - 1) / o.tick); i > bounds[len(bounds)-1] && i < ticks {
			bounds = append(bounds, i)
		}
	}
	bounds = append(bounds, ticks)
	regimes := len(bounds) - 1
	lag0 := 0.0
	for _, tl := range s.Load {
		for _, l := range s.InitialPartitionLag(tl.Topic) {
			lag0 += float64(l)
		}
	}
	// Sizes: index 0 the deployed job, k+1 regime k's sufficient size.
	deployed := map[string]int{}
	for _, v := range s.Job.Vertices {
		id, _ := o.job.VertexID(v.Name)
		deployed[id] = v.Parallelism
	}
	sizes := []map[string]int{deployed}
	shape := []int{max(s.Job.TaskManager.Slots, 1)}
	for k := range regimes {
		sizes, shape = append(sizes, o.sufficient(bounds[k], bounds[k+1])), append(shape, o.slotsPerTM)
	}
	caps := make([][]float64, len(sizes)) // per size, per sizing step (filled lazily)
	capOf := func(size int) func(j int) float64 {
		if caps[size] == nil {
			caps[size] = make([]float64, len(o.times))
			for j := range caps[size] {
				caps[size][j] = math.NaN()
			}
		}
		return func(j int) float64 {
			if c := caps[size][j]; !math.IsNaN(c) {
				return c
			}
			caps[size][j] = jobCapacity(o.job, o.truth, sizes[size], shape[size], o.rates[j])
			return caps[size][j]
		}
	}
	maxCap := make([]float64, len(o.times))
	for j, r := range o.rates {
		maxCap[j] = o.maxCapacity(r)
	}
	full := func(j int) float64 { return maxCap[j] }
	startup := s.Job.Restart.Time + s.Job.Restart.TaskManagerStartup

	type state struct {
		lag            float64
		down, over     time.Duration
		restarts, held int
	}
	var (
		best     *state
		bestPath []bool
		seen     = map[[2]int][]state{}
		budget   = 1 << 12
		visit    func(k int, st state, path []bool)
	)
	visit = func(k int, st state, path []bool) {
		if best != nil && (st.over > best.over || st.over == best.over && st.restarts >= best.restarts) {
			return
		}
		if k == regimes {
			best, bestPath = &st, path
			return
		}
		key := [2]int{k, st.held}
		for _, x := range seen[key] {
			if x.over <= st.over && x.lag <= st.lag && x.down <= st.down && x.restarts <= st.restarts {
				return
			}
		}
		seen[key] = append(seen[key], st)
		budget--
		a, b := bounds[k], bounds[k+1]
		type option struct {
			next    state
			restart bool
		}
		over, lag := o.play(a, b, st.lag, st.down, capOf(st.held), nil)
		opts := []option{{state{lag, st.down, st.over + over, st.restarts, st.held}, false}}
		if !maps.Equal(sizes[st.held], sizes[k+1]) {
			at := max(time.Duration(a)*o.tick, st.down)
			d, _ := o.restartDowntime(sizes[st.held], sizes[k+1])
			over, lag := o.play(a, b, st.lag, at+d, full, nil)
			opts = append(opts, option{state{lag, at + d, st.over + over, st.restarts + 1, k + 1}, true})
			if a, b := opts[0].next, opts[1].next; b.over < a.over || b.over == a.over && b.lag < a.lag {
				opts[0], opts[1] = opts[1], opts[0]
			}
		}
		for i, op := range opts {
			if i > 0 && budget <= 0 {
				break // out of budget: the locally better option only
			}
			visit(k+1, op.next, append(path[:len(path):len(path)], op.restart))
		}
	}
	visit(0, state{lag: lag0, down: startup}, nil)

	// Replay the best plan, recording the lag.
	lagAt := make([]float64, ticks)
	lag, down, held := lag0, startup, 0
	for k := range regimes {
		a, b := bounds[k], bounds[k+1]
		c := capOf(held)
		if bestPath[k] {
			at := max(time.Duration(a)*o.tick, down)
			d, inPlace := o.restartDowntime(sizes[held], sizes[k+1])
			res.Unavoidable = append(res.Unavoidable, Event{T: at, Completed: at + d, Downtime: d, From: sizes[held], To: sizes[k+1],
				InPlace: inPlace, Reason: fmt.Sprintf("regime %d of %d, from %s", k+1, regimes, time.Duration(a)*o.tick)})
			down, held, c = at+d, k+1, full
		}
		over, l := o.play(a, b, lag, down, c, lagAt)
		res.OverSLO += over
		lag = l
	}
	for i, l := range lagAt {
		res.MaxLag = math.Max(res.MaxLag, l)
		if o.loadEnd[i] > 0 {
			res.MaxLagSeconds = math.Max(res.MaxLagSeconds, l/o.loadEnd[i])
		}
	}
	for j := range res.Timeline {
		p := &res.Timeline[j]
		l := lag0
		if i := int(p.T/o.tick) - 1; i >= 0 && i < ticks {
			l = lagAt[i]
		}
		p.Lag = l
		if p.Load > 0 {
			p.LagSeconds = l / p.Load
		}
	}
}

// play runs the lag over ticks [a, b) from lag: during each tick the job
// processes at most capacity(its sizing step) while up (from down on), and
// the tick counts over the SLO when the lag over the load at its end
// exceeds the SLO (or the lag is positive at no load), as the runs count
// it. It returns the time over the SLO and the lag at the end; record, if
// set, receives the lag at the end of every tick.
func (o *oracle) play(a, b int, lag float64, down time.Duration, capacity func(j int) float64, record []float64) (time.Duration, float64) {
	var over time.Duration
	slo := o.s.SLO.Lag.Seconds()
	for i := a; i < b; i++ {
		t0 := time.Duration(i) * o.tick
		up := min(max(t0+o.tick-max(t0, down), 0), o.tick).Seconds()
		done := 0.0
		if up > 0 {
			done = capacity(min(int(t0/o.step), len(o.times)-1)) * up
		}
		lag = math.Max(0, lag+o.arrivals[i]-done)
		if l := o.loadEnd[i]; lag > 0 && (l <= 0 || lag/l > slo) {
			over += o.tick
		}
		if record != nil {
			record[i] = lag
		}
	}
	return over, lag
}

// sufficient is the smallest size (per vertex) that keeps every vertex at
// or under 100 % busy at every sizing step overlapping ticks [a, b), on
// TaskManagers with one slot per core; the most productive size where none
// does. (A broadcast input's receiver sends on a copy per subtask: sizing
// it up loads what follows it, so such a job is sized again until nothing
// grows.)
func (o *oracle) sufficient(a, b int) map[string]int {
	size := map[string]int{}
	from := time.Duration(a) * o.tick
	to := time.Duration(b) * o.tick
	for grew := true; grew; {
		grew = false
		for j, t := range o.times {
			if t+o.step <= from || t >= to {
				continue
			}
			out := map[string]float64{}
			for _, v := range o.truth {
				f := inflow(v, out, o.rates[j], o.load[j])
				if p := o.smallestParallelism(v.ID, f, o.load[j], max(size[v.ID], 1), o.rates[j]); p > size[v.ID] {
					size[v.ID], grew = p, true
				}
				out[v.ID] = f.out(v.Selectivity, size[v.ID])
			}
		}
		grew = grew && o.broadcast
	}
	for _, v := range o.truth {
		size[v.ID] = max(size[v.ID], 1)
	}
	return size
}

// restartDowntime is the least downtime of a rescale from one size to
// another as the actuator performs it, from the components the simulator
// charges (test/sim: Job.Submit, Job.rescale, checkpointDuration):
//
//   - a stop-with-savepoint and a resubmission: the savepoint (checkpoint
//     base + the state at the checkpoint throughput), the restart time,
//     TaskManager start-up (new TaskManagers are deployed) and the state
//     restore (the state at restoreBytesPerSecond, when set);
//   - in place, where the actuator can (the adaptive scheduler on Flink ≥
//     1.18): the restart time and the state restore, plus TaskManager
//     start-up when the new size needs more TaskManagers of the job's
//     shape.
//
// The cheaper is taken. What may only add to it is left out: the
// savepoint's wait for the records in flight, the barriers' delay and
// alignment under backpressure, Flink 2's wait for a checkpoint before an
// in-place rescale, and the records an in-place rescale re-reads since the
// latest checkpoint.
func (o *oracle) restartDowntime(from, to map[string]int) (d time.Duration, inPlace bool) {
	spec := o.s.Job
	state := 0.0
	for _, v := range spec.Vertices {
		state += v.StateBytes
	}
	seconds := func(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
	var restore, savepoint time.Duration
	if r := spec.Restart.RestoreBytesPerSecond; r > 0 {
		restore = seconds(state / r)
	}
	savepoint = spec.Checkpoints.Base
	if t := spec.Checkpoints.Throughput; t > 0 {
		savepoint += seconds(state / t)
	}
	d = savepoint + spec.Restart.Time + spec.Restart.TaskManagerStartup + restore
	if spec.Scheduler == "adaptive" && atLeast118(spec.FlinkVersion) {
		tm := max(spec.TaskManager.Slots, 1)
		in := spec.Restart.Time + restore
		if ceilDiv(slotsFor(to, o.groups), tm) > ceilDiv(slotsFor(from, o.groups), tm) {
			in += spec.Restart.TaskManagerStartup
		}
		if in < d {
			return in, true
		}
	}
	return d, false
}
