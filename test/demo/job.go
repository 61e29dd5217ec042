package demo

import (
	"context"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// backend is what a demo job runs on: the simulator (simJob, `make demo`)
// or real Flink and Kafka (realJob, `make demo-real`). It is all the live
// view and the result read of a job besides its policy, so that both demos
// share them.
type backend interface {
	// View is the Flink cluster now, as its REST API shows it.
	View() sim.View
	// VertexID is the job vertex id Flink gives the scenario's vertex name.
	VertexID(name string) (string, bool)
	// Capacity is the arrival rate (records/s over all topics, split as
	// rates) the job sustains at parallelism par (by vertex name) on
	// TaskManagers of slotsPerTM slots, as the simulator models it.
	Capacity(par map[string]int, slotsPerTM int, rates map[string]float64) float64
	// Rates are the arrival rates by topic at offset at in the day.
	Rates(at time.Duration) map[string]float64
	// Records is the job's record accounting now.
	Records(ctx context.Context) (Records, error)
	// Elapsed is how far into the day the job is now.
	Elapsed() time.Duration
	// Offset is the offset in the day of t, a time on the job's clock (the
	// timestamps of its policy's status).
	Offset(t time.Time) time.Duration
}

// Records is a job's record accounting.
type Records struct {
	// Produced is every record appended to the job's topics.
	Produced int64
	// Consumed is what the job has read (its sources' positions).
	Consumed int64
	// Lag is what waits in Kafka: Produced − Consumed.
	Lag int64
	// Reprocessed counts records read again after a restore (the
	// simulator's at-least-once replays); 0 where nobody counts them.
	Reprocessed int64
	// Lost is what never reached the job's output and never will.
	Lost int64
}

// job is one demo job as the live view and the result see it, whatever
// runs it: the scenario it plays, how flinkscale is told about it, and what
// was measured of it.
type job struct {
	setup JobSetup
	// sc is the day as the demo tells it: names, vertices, phases.
	sc *scenario.Scenario
	// slo is the lag SLO on the job's clock (the scenario's, compressed
	// with the day on real Flink).
	slo time.Duration
	run backend

	mu       sync.Mutex
	timeline []bench.Point
	// Integrals over the whole run, on the job's clock.
	slotHours, coreHours float64
	overSLO              time.Duration
	maxLag, maxLagS      float64
}

// state is what is known of a job at one instant: the ground truth the live
// view and the reports show next to what the controller decided.
type state struct {
	load, capacity float64 // records/s over all topics
	lag            float64 // records
	lagSeconds     float64 // lag / load
	slots          int
	cores          float64
	running        bool
	parallelism    map[string]int // vertex name → running parallelism
}

// observe reads the job's state at offset at in the day.
func (j *job) observe(ctx context.Context, at time.Duration) (state, error) {
	st := state{parallelism: map[string]int{}}
	rates := j.run.Rates(at)
	for _, r := range rates {
		st.load += r
	}
	v := j.run.View()
	st.running = v.Job.State == "RUNNING"
	byID := map[string]int{}
	for _, x := range v.Job.Vertices {
		byID[x.ID] = x.Parallelism
	}
	// By the scenario's names: Flink's may carry the chained operators.
	for _, name := range j.vertexNames() {
		if id, ok := j.run.VertexID(name); ok {
			if p, ok := byID[id]; ok {
				st.parallelism[name] = p
			}
		}
	}
	slotsPerTM := j.sc.Job.TaskManager.Slots
	for _, tm := range v.TaskManagers {
		st.slots += tm.SlotsNumber
		st.cores += tm.CPUCores
		if tm.SlotsNumber > 0 {
			slotsPerTM = tm.SlotsNumber
		}
	}
	if st.running && len(st.parallelism) > 0 {
		st.capacity = j.run.Capacity(st.parallelism, slotsPerTM, rates)
	}
	rec, err := j.run.Records(ctx)
	if err != nil {
		return st, err
	}
	st.lag = float64(rec.Lag)
	switch {
	case st.load > 0:
		st.lagSeconds = st.lag / st.load
	case st.lag > 0:
		st.lagSeconds = -1 // lag with nothing arriving: unbounded in seconds
	}
	return st, nil
}

// account integrates the job's resources and lag over the last dt of its
// clock, ending at offset at in the day, and records a timeline point at
// at when record is set.
func (j *job) account(ctx context.Context, at, dt time.Duration, record bool) error {
	st, err := j.observe(ctx, at)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	h := dt.Hours()
	j.slotHours += float64(st.slots) * h
	j.coreHours += st.cores * h
	if st.lagSeconds < 0 || st.lagSeconds > j.slo.Seconds() {
		j.overSLO += dt
	}
	j.maxLag = max(j.maxLag, st.lag)
	if st.lagSeconds >= 0 {
		j.maxLagS = max(j.maxLagS, st.lagSeconds)
	}
	if !record {
		return nil
	}
	lagS := st.lagSeconds
	if lagS < 0 {
		lagS = 0
	}
	j.timeline = append(j.timeline, bench.Point{T: at, Load: st.load, Capacity: st.capacity, Slots: st.slots,
		Cores: st.cores, Parallelism: maps.Clone(st.parallelism), Lag: st.lag, LagSeconds: lagS})
	return nil
}

// lastPoint is the newest timeline point (false before the first).
func (j *job) lastPoint() (bench.Point, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.timeline) == 0 {
		return bench.Point{}, false
	}
	return j.timeline[len(j.timeline)-1], true
}

// vertexNames are the job's vertex names, sources first (the order of the
// scenario, which is the order the controller's status lists them in).
func (j *job) vertexNames() []string {
	out := make([]string, len(j.sc.Job.Vertices))
	for i, v := range j.sc.Job.Vertices {
		out[i] = v.Name
	}
	return out
}

// topics are the job's topic names, sorted.
func (j *job) topics() []string {
	var out []string
	for _, t := range j.sc.Job.Topics {
		out = append(out, t.Name)
	}
	sort.Strings(out)
	return out
}

// scenarioRates are s's arrival rates by topic at offset t.
func scenarioRates(s *scenario.Scenario, t time.Duration) map[string]float64 {
	rates := map[string]float64{}
	for _, tp := range s.Job.Topics {
		rates[tp.Name] = s.Rate(tp.Name, t)
	}
	return rates
}

// modelCapacity is bench.JobCapacity of model, the simulator's job, at
// parallelism par by vertex name.
func modelCapacity(model *sim.Job, par map[string]int, slotsPerTM int, rates map[string]float64) float64 {
	byID := map[string]int{}
	for name, p := range par {
		if id, ok := model.VertexID(name); ok {
			byID[id] = p
		}
	}
	return bench.JobCapacity(model, byID, slotsPerTM, rates)
}
