package testbed

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// FidelityPlan is what a fidelity run does, in the scaled scenario's time:
// the same samples and rescales on real Flink and on the simulator.
type FidelityPlan struct {
	// Samples at FirstSample, FirstSample+Every, … up to End.
	FirstSample time.Duration `json:"firstSample"`
	Every       time.Duration `json:"every"`
	End         time.Duration `json:"end"`
	// Poll is the pace of the checks while a rescale is in progress.
	Poll time.Duration `json:"poll"`
	// Vertex is the vertex both rescales change.
	Vertex string `json:"vertex"`
	// At InPlaceAt, an in-place rescale (adaptive scheduler, PUT
	// resource-requirements) of Vertex to InPlaceTo; at RestartAt a
	// stop-with-savepoint and a resubmission from the savepoint with
	// Vertex at RestartTo. A zero time skips the action.
	InPlaceAt time.Duration `json:"inPlaceAt"`
	InPlaceTo int           `json:"inPlaceTo"`
	RestartAt time.Duration `json:"restartAt"`
	RestartTo int           `json:"restartTo"`
	// Phases are the windows whose means are compared.
	Phases []FidelityPhase `json:"phases"`
}

// FidelityPhase is a window [From, To) of scenario time.
type FidelityPhase struct {
	Name string        `json:"name"`
	From time.Duration `json:"from"`
	To   time.Duration `json:"to"`
}

// phaseWindow is the length of a phase: the last 30 s before the next
// event, when the job is as settled as it gets.
const phaseWindow = 30 * time.Second

// DefaultFidelityPlan is the plan for a scenario in testbed units: samples
// every 5 s from 20 s; the keyed vertex (a HASH input) that is busiest at
// the peak load is rescaled in place at 2/3 of the scenario to one more
// subtask, then restarted from a savepoint at 5/6 with two more than it
// started with. The phases are the 30 s before the first load change
// ("steady"), before each rescale and before the end.
func DefaultFidelityPlan(s *scenario.Scenario) (FidelityPlan, error) {
	p := FidelityPlan{FirstSample: 20 * time.Second, Every: 5 * time.Second, End: s.Duration, Poll: 200 * time.Millisecond}
	rates := map[string]float64{}
	for _, t := range s.Job.Topics {
		rates[t.Name] = peakTopicRate(s, t.Name)
	}
	want := ExpectedRates(s.Job, rates)
	best := -1.0
	for _, v := range s.Job.Vertices {
		keyed := false
		for _, e := range v.Inputs {
			keyed = keyed || e.Ship == "HASH"
		}
		if keyed && want[v.Name].Busy > best {
			best, p.Vertex, p.InPlaceTo, p.RestartTo = want[v.Name].Busy, v.Name, v.Parallelism+1, v.Parallelism+2
		}
	}
	if p.Vertex == "" {
		return p, fmt.Errorf("fidelity: scenario %q has no keyed vertex (a HASH input) to rescale", s.Name)
	}
	p.InPlaceAt = (s.Duration * 2 / 3).Round(5 * time.Second)
	p.RestartAt = (s.Duration * 5 / 6).Round(5 * time.Second)
	if step, ok := firstLoadChange(s); ok && step-phaseWindow >= p.FirstSample {
		p.Phases = append(p.Phases, FidelityPhase{"steady", step - phaseWindow, step})
	}
	p.Phases = append(p.Phases,
		FidelityPhase{"before in-place", p.InPlaceAt - phaseWindow, p.InPlaceAt},
		FidelityPhase{"after in-place", p.RestartAt - phaseWindow, p.RestartAt},
		FidelityPhase{"after restart", p.End - phaseWindow, p.End + time.Millisecond})
	return p, nil
}

// peakTopicRate is a topic's highest arrival rate, sampled every second.
func peakTopicRate(s *scenario.Scenario, topic string) float64 {
	peak := 0.0
	for t := time.Duration(0); t <= s.Duration; t += time.Second {
		peak = math.Max(peak, s.Rate(topic, t))
	}
	return peak
}

// firstLoadChange is the first second at which the total arrival rate
// differs from the starting one by more than 1 %.
func firstLoadChange(s *scenario.Scenario) (time.Duration, bool) {
	total := func(t time.Duration) float64 {
		x := 0.0
		for _, l := range s.Load {
			x += s.Rate(l.Topic, t)
		}
		return x
	}
	r0 := total(0)
	for t := time.Second; t <= s.Duration; t += time.Second {
		if math.Abs(total(t)-r0) > 0.01*math.Max(r0, 1) {
			return t, true
		}
	}
	return 0, false
}

// FidelityOptions configure RunFidelity.
type FidelityOptions struct {
	// Scenario is played as the testbed realises it (Realise with the
	// default scale), on both sides.
	Scenario *scenario.Scenario
	Flink    Flink
	// Plan; zero: DefaultFidelityPlan.
	Plan *FidelityPlan
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// Dir keeps the testbed's files (see Options.Dir).
	Dir           string
	SkipJavaTests bool
}

// RunFidelity plays the scenario with the plan's samples and rescales on
// the simulator (in virtual time, a fraction of a second) and then on a
// real testbed (in wall time), and compares them.
func RunFidelity(ctx context.Context, o FidelityOptions) (*Fidelity, error) {
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	if o.Flink == "" {
		o.Flink = Flink120
	}
	if err := o.Flink.Validate(); err != nil {
		return nil, err
	}
	r, err := Realise(o.Scenario, Scale{})
	if err != nil {
		return nil, err
	}
	s := r.Scaled
	var plan FidelityPlan
	if o.Plan != nil {
		plan = *o.Plan
	} else if plan, err = DefaultFidelityPlan(s); err != nil {
		return nil, err
	}
	spare := spareTaskManagers(s, plan, r.TaskManagers)

	say("simulator: playing %s (%s of virtual time)", s.Name, plan.End)
	began := time.Now()
	simRun, err := playSimulator(ctx, s, o.Flink, plan, r.TaskManagers+spare)
	if err != nil {
		return nil, err
	}
	say("simulator: done in %s", time.Since(began).Round(time.Millisecond))

	load := LoadAverage()
	tb, err := Start(ctx, Options{
		Scenario: o.Scenario, Flink: o.Flink, SpareTaskManagers: spare, Dir: o.Dir,
		Progress: o.Progress, SkipJavaTests: o.SkipJavaTests,
		// The REST job details are cached for web.refresh-interval (3 s
		// by default): the rescales' polls want them fresher.
		Config: map[string]string{"web.refresh-interval": "200"},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := tb.Stop(); serr != nil {
			say("stopping the testbed: %v", serr)
		}
	}()
	realSide, err := newRealSide(tb)
	if err != nil {
		return nil, err
	}
	defer realSide.close()
	say("real Flink %s: playing %s until %s; samples every %s", o.Flink, s.Name, clock(plan.End), plan.Every)
	realRun := newFidelityRun(realSide, s, plan, tb.JobID, o.Progress)
	realRun.play(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	load += " before, " + LoadAverage() + " after"

	f := compareRuns(s, o.Flink, plan, realRun, simRun)
	f.Load = load
	return f, nil
}

// playSimulator plays the plan on the simulator with taskManagers
// TaskManagers from the start (the testbed's, spares included).
func playSimulator(ctx context.Context, s *scenario.Scenario, v Flink, plan FidelityPlan, taskManagers int) (*fidelityRun, error) {
	side, err := newSimSide(s, v, taskManagers)
	if err != nil {
		return nil, err
	}
	run := newFidelityRun(side, s, plan, side.jobID(), nil)
	run.play(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n := side.sj.Stats().Reprocessed; n > 0 {
		run.note("the simulator's own count of records read again: %d", n)
	}
	return run, nil
}

// spareTaskManagers is how many TaskManagers, beyond the have the job
// needs at first, the plan's rescales need: the slots of the rescaled
// vertex at its largest parallelism.
func spareTaskManagers(s *scenario.Scenario, plan FidelityPlan, have int) int {
	j := s.Job
	for i := range j.Vertices {
		if j.Vertices[i].Name == plan.Vertex {
			j.Vertices = append([]sim.VertexSpec(nil), j.Vertices...)
			j.Vertices[i].Parallelism = max(j.Vertices[i].Parallelism, plan.InPlaceTo, plan.RestartTo)
		}
	}
	slots := max(j.TaskManager.Slots, 1)
	return max(0, (SlotsNeeded(j)+slots-1)/slots-have)
}

// LoadAverage is the first three fields of /proc/loadavg (the machine's
// load over 1, 5 and 15 minutes), or "" where there is none.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Rejudge plays a recorded comparison's plan on the simulator again and
// compares it with the recorded real run: the simulator's side of a
// fidelity run in a second, without Java, after the simulator changed.
// s is the recorded run's scenario.
func Rejudge(ctx context.Context, recorded *Fidelity, s *scenario.Scenario) (*Fidelity, error) {
	if recorded.Scenario != s.Name {
		return nil, fmt.Errorf("fidelity: the recorded run is of scenario %q, not %q", recorded.Scenario, s.Name)
	}
	v := Flink(recorded.Flink)
	if err := v.Validate(); err != nil {
		return nil, err
	}
	r, err := Realise(s, Scale{})
	if err != nil {
		return nil, err
	}
	plan := recorded.Plan
	simRun, err := playSimulator(ctx, r.Scaled, v, plan, r.TaskManagers+spareTaskManagers(r.Scaled, plan, r.TaskManagers))
	if err != nil {
		return nil, err
	}
	f := compareOutcomes(r.Scaled, v, plan, recordedOutcome(recorded), simRun.outcome(fidelityMetrics(r.Scaled)))
	f.Date, f.Load = recorded.Date, recorded.Load
	f.Notes = append(f.Notes, fmt.Sprintf("the simulator's side re-run on %s against the real run of %s",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), recorded.Date.UTC().Format("2006-01-02 15:04 MST")))
	return f, nil
}
