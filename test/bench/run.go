package bench

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Options tune a run.
type Options struct {
	// Start is the virtual time the scenario starts at (default Monday
	// 2026-01-05 00:00 UTC).
	Start time.Time
	// Record is the timeline's resolution (default 30s).
	Record time.Duration
	// Progress, when set, is called with the fraction of the scenario done.
	Progress func(done float64)
}

func (o *Options) defaults() {
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if o.Record <= 0 {
		o.Record = 30 * time.Second
	}
}

// Point is one sample of a run's timeline.
type Point struct {
	// T is the offset from the scenario's start.
	T time.Duration `json:"t"`
	// Load is the arrival rate over all topics (records/s).
	Load float64 `json:"load"`
	// Capacity is the most the job could consume now (records/s at its
	// sources) at its current parallelism: the tightest vertex's capacity
	// over its share of the load. Zero while the job is down.
	Capacity float64 `json:"capacity"`
	// Slots and Cores are what the job holds in whole TaskManagers
	// (TaskManagers × slots per TaskManager, TaskManagers × cores).
	Slots int     `json:"slots"`
	Cores float64 `json:"cores"`
	// UsedSlots are the slots its parallelism occupies (per slot-sharing
	// group its widest vertex, summed): Slots less the idle slots of a
	// partly used TaskManager.
	UsedSlots int `json:"usedSlots,omitempty"`
	// Parallelism per vertex name.
	Parallelism map[string]int `json:"parallelism"`
	// Lag in records and in seconds of arrivals.
	Lag        float64 `json:"lag"`
	LagSeconds float64 `json:"lagSeconds"`
}

// Event is a rescale in a run.
type Event struct {
	T         time.Duration  `json:"t"`
	Completed time.Duration  `json:"completed"`
	Downtime  time.Duration  `json:"downtime"`
	From      map[string]int `json:"from"`
	To        map[string]int `json:"to"`
	InPlace   bool           `json:"inPlace,omitempty"`
	// Memory: the rescale also set the TaskManagers' memory.
	Memory bool   `json:"memory,omitempty"`
	Failed bool   `json:"failed,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Result is one policy on one scenario.
type Result struct {
	Scenario string        `json:"scenario"`
	Policy   string        `json:"policy"`
	Duration time.Duration `json:"duration"`
	// Rescales started (restarts), of which Failed failed.
	Rescales int `json:"rescales"`
	Failed   int `json:"failed,omitempty"`
	// Reversals counts consecutive rescales in opposite directions.
	Reversals int `json:"reversals"`
	// Converge is, per load change, the time until the job ran with no
	// further rescale and its lag under the SLO until the next change; -1
	// when it never did.
	Converge []time.Duration `json:"converge,omitempty"`
	// OverSLO is the time the lag exceeded the scenario's SLO.
	OverSLO time.Duration `json:"overSLO"`
	// MaxLag in records and in seconds of arrivals.
	MaxLag        float64 `json:"maxLag"`
	MaxLagSeconds float64 `json:"maxLagSeconds"`
	// SlotHours and CoreHours are what the job held over the run, in whole
	// TaskManagers: TaskManagers × slots per TaskManager (idle slots of a
	// partly used TaskManager included: a job holds whole TaskManagers) and
	// TaskManagers × cores. Ratios to the oracle and verdicts use these.
	SlotHours float64 `json:"slotHours"`
	CoreHours float64 `json:"coreHours"`
	// UsedSlotHours are the slots the job's parallelism occupied over the
	// run (per slot-sharing group its widest vertex, summed), without the
	// idle slots of partly used TaskManagers.
	UsedSlotHours float64 `json:"usedSlotHours"`
	// RecordsLost is produced − consumed − lag at the end (must be 0);
	// Reprocessed counts records read twice (at-least-once replays).
	RecordsLost int64   `json:"recordsLost"`
	Reprocessed int64   `json:"reprocessed"`
	Timeline    []Point `json:"timeline,omitempty"`
	Events      []Event `json:"events,omitempty"`
	// Unavoidable are, for the oracle, the restarts its OverSLO pays for
	// (Oracle); none for a policy.
	Unavoidable []Event `json:"unavoidable,omitempty"`
}

// Run plays scenario s with policy p: the job in kfake and behind Flink's
// REST API, the policy observing at its interval through the collectors, and
// the actuator performing its plans as the Flink operator would.
func Run(ctx context.Context, s *scenario.Scenario, p Policy, o Options) (*Result, error) {
	o.defaults()
	broker, err := simkafka.Start(s.Job.Topics)
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	defer broker.Close()
	job, err := s.NewJob(broker, o.Start, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	srv := httptest.NewServer(flinkrest.NewHandler(job))
	defer srv.Close()
	rc, err := flink.New(srv.URL)
	if err != nil {
		return nil, err
	}
	// The collector primes the JobManager's metric fetcher on the job's
	// clock, as the controller does on the wall clock; it need not wait:
	// the job's clock stands still during a collection and the simulated
	// fetch lands at once.
	fc := flink.NewCollector(rc, flink.WithClock(job.Now),
		flink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() }))
	kc, err := kafka.New(kafka.Config{BootstrapServers: broker.Addrs()})
	if err != nil {
		return nil, err
	}
	defer kc.Close()
	kc.Now = job.Now
	var topics []string
	partitions := map[string]int{}
	for _, t := range s.Job.Topics {
		topics = append(topics, t.Name)
		partitions[t.Name] = t.Partitions
	}

	r := &run{s: s, p: p, o: o, job: job, truth: job.Truth(), res: &Result{Scenario: s.Name, Policy: p.Name(), Duration: s.Duration},
		groups: slotSharingGroups(job, s), used: -1}
	r.act = newActuator(job, s.Job)
	tick := s.Tick
	if tick <= 0 {
		tick = time.Second
	}
	interval := p.Interval()
	readsFlink, readsKafka := true, true
	if r, ok := p.(reader); ok {
		readsFlink, readsKafka = r.Reads()
	}
	nextObs, nextRec := interval, time.Duration(0)
	for elapsed := time.Duration(0); elapsed < s.Duration; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := job.Advance(tick); err != nil {
			return nil, fmt.Errorf("simulator at %s: %w", elapsed, err)
		}
		elapsed += tick
		now := job.Now()
		if done := r.act.step(now); done != nil {
			r.finished(*done, o.Start)
		}
		if elapsed >= nextObs {
			nextObs += interval
			obs := Observation{Now: now, Deployment: r.act.deployment(partitions)}
			if readsFlink {
				obs.Flink, obs.FlinkErr = fc.Collect(ctx, "")
			}
			obs.Flink.At = now
			if readsKafka {
				obs.Kafka, obs.KafkaErr = kc.Collect(ctx, s.Job.ConsumerGroup, topics)
			}
			if plan := p.Observe(obs); plan != nil && !r.act.busy() {
				if ev, started := r.act.start(*plan, now); started {
					ev.T = now.Sub(o.Start)
					r.res.Events = append(r.res.Events, ev)
					r.res.Rescales++
				}
			}
		}
		r.account(elapsed, tick, elapsed >= nextRec)
		if elapsed >= nextRec {
			nextRec += o.Record
		}
		if o.Progress != nil && elapsed%(time.Minute*10) == 0 {
			o.Progress(float64(elapsed) / float64(s.Duration))
		}
	}
	st := job.Stats()
	r.res.RecordsLost = st.Produced - st.Consumed - st.Lag
	r.res.Reprocessed = st.Reprocessed
	r.res.Reversals = reversals(r.res.Events)
	r.res.Converge = convergence(s, r.res)
	if o.Progress != nil {
		o.Progress(1)
	}
	return r.res, nil
}

// reader is a policy that says what it reads: the run collects from
// Flink's REST API and from the brokers only for a policy that reads them
// (every policy does unless it says otherwise).
type reader interface {
	Reads() (flink, kafka bool)
}

// Reads: KEDA's scaler reads the consumer group's lag from the brokers,
// nothing from Flink.
func (*KEDALag) Reads() (flink, kafka bool) { return false, true }

// Reads: no autoscaler, nothing to read.
func (Static) Reads() (flink, kafka bool) { return false, false }

type run struct {
	s     *scenario.Scenario
	p     Policy
	o     Options
	job   *sim.Job
	truth []sim.VertexTruth
	act   *actuator
	res   *Result
	// groups is each vertex id's slot-sharing group; used caches the slots
	// the running parallelism occupies (-1: to compute), recomputed while
	// a rescale may change it.
	groups  map[string]string
	used    int
	wasBusy bool
}

// finished records the end of a rescale and tells the policy.
func (r *run) finished(d Rescale, start time.Time) {
	if n := len(r.res.Events); n > 0 {
		ev := &r.res.Events[n-1]
		ev.Completed = d.CompletedAt.Sub(start)
		ev.Downtime = d.Downtime
		ev.InPlace = d.InPlace
		ev.Failed = d.Failed
	}
	if d.Failed {
		r.res.Failed++
	}
	r.p.Rescaled(d)
}

// account integrates the tick's resources and lag, and records a point.
func (r *run) account(elapsed, tick time.Duration, record bool) {
	load := 0.0
	rates := map[string]float64{}
	for _, t := range r.s.Job.Topics {
		rates[t.Name] = r.s.Rate(t.Name, elapsed)
		load += rates[t.Name]
	}
	st := r.job.Stats()
	lag := float64(st.Lag)
	lagS := 0.0
	if load > 0 {
		lagS = lag / load
	} else if lag > 0 {
		lagS = math.Inf(1)
	}
	slots, cores := r.act.resources()
	// The running parallelism changes only during a rescale (and as it
	// ends): the job's view is read again only then.
	if busy := r.act.busy(); r.used < 0 || busy || r.wasBusy {
		r.used, r.wasBusy = slotsFor(r.act.running(), r.groups), busy
	}
	Account(r.res, r.s, tick, Held{Slots: slots, UsedSlots: r.used, Cores: cores, Lag: lag, LagSeconds: lagS})
	if !record {
		return
	}
	par := r.act.running()
	byName := map[string]int{}
	for _, v := range r.truth {
		byName[v.Name] = par[v.ID]
	}
	c := 0.0
	if r.act.up() {
		c = jobCapacity(r.job, r.truth, par, r.act.slotsPerTM, rates)
	}
	r.res.Timeline = append(r.res.Timeline, Point{T: elapsed, Load: load, Capacity: c, Slots: slots, UsedSlots: r.used, Cores: cores,
		Parallelism: byName, Lag: lag, LagSeconds: lagS})
}

// JobCapacity is the arrival rate (records/s over all topics, split as
// rates) the job can sustain at parallelism par (by vertex id) on
// TaskManagers of slotsPerTM slots: the simulator's ground truth, as the
// benchmark's charts show it.
func JobCapacity(job *sim.Job, par map[string]int, slotsPerTM int, rates map[string]float64) float64 {
	return jobCapacity(job, job.Truth(), par, slotsPerTM, rates)
}

// jobCapacity is the arrival rate (records/s over all topics) the job can
// sustain at parallelism par: the tightest vertex's.
func jobCapacity(job *sim.Job, truth []sim.VertexTruth, par map[string]int, slotsPerTM int, rates map[string]float64) float64 {
	fl := flows(truth, rates, par)
	best := math.Inf(1)
	for _, v := range truth {
		best = math.Min(best, sustains(job, v.ID, fl[v.ID], max(par[v.ID], 1), slotsPerTM, rates))
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return best
}

// reversals counts direction changes between consecutive rescales (by the
// total parallelism).
func reversals(evs []Event) int {
	n, last := 0, 0
	for _, e := range evs {
		d := 0
		for id, to := range e.To {
			d += to - e.From[id]
		}
		dir := 0
		switch {
		case d > 0:
			dir = 1
		case d < 0:
			dir = -1
		}
		if dir != 0 && last != 0 && dir != last {
			n++
		}
		if dir != 0 {
			last = dir
		}
	}
	return n
}

// changePoints are the offsets at which a topic's load changes: the
// boundaries between the scenario's regimes, which the convergence column
// measures from and the oracle may restart at. A topic's base load changes
//
//   - where one base segment hands over to the next at another rate (the
//     rate the first ends at is not the one the next starts at), whatever
//     their kinds: a constant after a constant, a ramp or a step, a ramp
//     or a spike that starts off the previous rate;
//   - where a step jumps (from ≠ to), and where a spike starts and ends
//     (peak ≠ rate), inside the segment;
//   - at a ramp's end (from ≠ to): the change it makes is complete there;
//     its start is one only when the rate jumps there (the first rule);
//   - at a diurnal segment's start and at its end, whatever the rates
//     there: the daily cycle is one regime of continuous change, and its
//     bounds are where that regime begins and ends; nothing inside it is a
//     change.
//
// Noise overlays change nothing. The offsets of every topic are merged;
// those at 0 or at or past the end of the scenario are left out.
func changePoints(s *scenario.Scenario) []time.Duration {
	var out []time.Duration
	for _, tl := range s.Load {
		at := time.Duration(0)
		prevEnd, first := 0.0, true
		for _, g := range tl.Segments {
			if g.Kind == scenario.KindNoise {
				continue
			}
			startRate, endRate := segmentEnds(g)
			if !first && (g.Kind == scenario.KindDiurnal || math.IsNaN(prevEnd) || startRate != prevEnd) {
				out = append(out, at)
			}
			within := func(d time.Duration) bool { return d > 0 && (g.For <= 0 || d < g.For) }
			switch g.Kind {
			case scenario.KindStep:
				if g.From != g.To && within(g.At) {
					out = append(out, at+g.At)
				}
			case scenario.KindSpike:
				if g.Peak != g.Rate {
					for _, d := range []time.Duration{g.At, g.At + g.Width} {
						if within(d) {
							out = append(out, at+d)
						}
					}
				}
			case scenario.KindRamp:
				if g.From != g.To && g.For > 0 {
					out = append(out, at+g.For)
				}
			case scenario.KindDiurnal:
				if g.For > 0 {
					out = append(out, at+g.For)
				}
			}
			prevEnd, first = endRate, false
			at += g.For
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	var in []time.Duration
	for _, t := range out {
		if t > 0 && t < s.Duration {
			in = append(in, t)
		}
	}
	return in
}

// segmentEnds are the base rates a segment starts and ends at (without
// noise); NaN for a diurnal segment, whose bounds are always changes.
func segmentEnds(g scenario.Segment) (start, end float64) {
	switch g.Kind {
	case scenario.KindConstant:
		return g.Rate, g.Rate
	case scenario.KindRamp:
		if g.For <= 0 {
			return g.To, g.To
		}
		return g.From, g.To
	case scenario.KindStep:
		start, end = g.To, g.To
		if g.At > 0 {
			start = g.From
		}
		if g.For > 0 && g.At >= g.For {
			end = g.From
		}
		return start, end
	case scenario.KindSpike:
		on := func(d time.Duration) bool { return d >= g.At && d < g.At+g.Width }
		start, end = g.Rate, g.Rate
		if on(0) {
			start = g.Peak
		}
		if g.For > 0 && on(g.For-1) {
			end = g.Peak
		}
		return start, end
	}
	return math.NaN(), math.NaN()
}

// convergence measures, per load change, the time until the job ran with
// no further rescale starting and its lag under the SLO up to the next
// change (or the end).
func convergence(s *scenario.Scenario, res *Result) []time.Duration {
	cps := changePoints(s)
	var out []time.Duration
	for i, c := range cps {
		end := s.Duration
		if i+1 < len(cps) {
			end = cps[i+1]
		}
		// The last moment in [c, end) that breaks convergence.
		last := c
		for _, e := range res.Events {
			if e.T >= c && e.T < end {
				last = max(last, e.Completed)
			}
		}
		overAtEnd := false
		for _, p := range res.Timeline {
			if p.T < c || p.T >= end {
				continue
			}
			over := p.LagSeconds > s.SLO.Lag.Seconds()
			if over {
				last = max(last, p.T)
			}
			overAtEnd = over // the interval's last point decides
		}
		if overAtEnd {
			out = append(out, -1) // still over the SLO when the load changed again (or at the end)
			continue
		}
		out = append(out, last-c)
	}
	return out
}
