package testbed

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Limits of what the testbed realises faithfully on the project's 2-core
// machine (docs/testbed.md, "Limits", measured with TestRealCapacity): on
// a quiet machine busy times stayed within 1 % of the configured cost up
// to 8,000 records/s, the highest step measured; with the two cores kept
// busy by other work they drifted 20 % over it from 4,000 records/s on,
// as parked task threads wake late. The defaults keep that margin.
const (
	// MaxSourceRate is the highest total arrival rate (records/s, all
	// topics) the testbed plays by default.
	MaxSourceRate = 2000
	// MaxSubtaskCapacity is the highest per-subtask capacity (records/s)
	// the pacing is trusted with: 200 µs a record, parked every fifth
	// record; below that a late wake-up is a visible share of the cost.
	MaxSubtaskCapacity = 5000
	// MaxSlots bounds the slots a scenario may need (TaskManager JVMs of
	// a few hundred MiB each; sleeping subtasks cost no CPU).
	MaxSlots = 64
	// MaxStateBytes bounds the job's total keyed state after scaling.
	MaxStateBytes = 256 << 20
	// DefaultStateBytes is what the state is scaled to by default when the
	// scenario has more.
	DefaultStateBytes = 64 << 20
)

// Scale says how a scenario is shrunk to run on the testbed. Every field
// 0 means "choose": see Realise.
type Scale struct {
	// Rate multiplies arrival rates and per-subtask capacities alike, so
	// every vertex is exactly as busy as in the scenario.
	Rate float64
	// Time divides the scenario's time axis: a 3h scenario at Time 12
	// plays in 15 minutes. Load segments, noise correlation, the
	// duration and the checkpoint interval and timeout are divided; rates
	// are not (records per second stay records per second).
	Time float64
	// State multiplies each vertex's state size.
	State float64
	// MinCheckpointInterval floors the scaled checkpoint interval
	// (default 5 s): Flink's checkpointing has fixed costs that a
	// shorter interval would magnify.
	MinCheckpointInterval time.Duration
	// IgnoreLimits lifts MaxSourceRate, MaxSubtaskCapacity and
	// MaxStateBytes, to measure the limits themselves (TestRealCapacity).
	IgnoreLimits bool
}

// Realised is a scenario as the testbed plays it: Scaled is a valid
// scenario in testbed units, which the simulator can play too, so the two
// are compared like for like.
type Realised struct {
	Original *scenario.Scenario
	Scaled   *scenario.Scenario
	Scale    Scale
	// PeakRate is the scaled scenario's highest total arrival rate.
	PeakRate float64
	// Slots the job needs at its first parallelism, and the TaskManagers
	// that hold them.
	Slots, TaskManagers int
}

// Realise scales a scenario for the testbed and checks that the testbed
// can play it faithfully. It refuses, naming every reason, what the
// testbed cannot realise: a source whose name does not start with
// "Source: " (Flink names source vertices so), USL on a source (its work
// runs in the Kafka deserializer, which cannot see the parallelism), a
// vertex mixing HASH with other inputs, state on a vertex without HASH
// inputs (the testbed's state is keyed), per-subtask capacities or rates
// beyond the limits above, and more than MaxSlots slots.
func Realise(s *scenario.Scenario, sc Scale) (*Realised, error) {
	if s == nil {
		return nil, errors.New("testbed: no scenario")
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	peak := peakRate(s)
	if sc.Rate == 0 {
		sc.Rate = math.Min(1, MaxSourceRate/peak)
		// And low enough that no subtask is faster than the pacing
		// realises.
		for _, v := range s.Job.Vertices {
			if v.Capacity*sc.Rate > MaxSubtaskCapacity {
				sc.Rate = MaxSubtaskCapacity / v.Capacity
			}
		}
		sc.Rate = roundDown(sc.Rate)
	}
	if !(sc.Rate > 0) || sc.Rate > 1 || math.IsInf(sc.Rate, 0) {
		return nil, fmt.Errorf("testbed: rate scale %v outside (0, 1]", sc.Rate)
	}
	if sc.Time == 0 {
		sc.Time = 1
	}
	if !(sc.Time >= 1) || math.IsInf(sc.Time, 0) {
		return nil, fmt.Errorf("testbed: time scale %v must be at least 1", sc.Time)
	}
	stateTotal := 0.0
	for _, v := range s.Job.Vertices {
		stateTotal += v.StateBytes
	}
	if sc.State == 0 {
		sc.State = 1
		if stateTotal > DefaultStateBytes {
			sc.State = DefaultStateBytes / stateTotal
		}
	}
	if !(sc.State > 0) || sc.State > 1 {
		return nil, fmt.Errorf("testbed: state scale %v outside (0, 1]", sc.State)
	}
	if sc.MinCheckpointInterval == 0 {
		sc.MinCheckpointInterval = 5 * time.Second
	}

	out, err := scaled(s, sc)
	if err != nil {
		return nil, err
	}
	r := &Realised{Original: s, Scaled: out, Scale: sc, PeakRate: peakRate(out)}
	if r.PeakRate > MaxSourceRate*1.0001 && !sc.IgnoreLimits {
		bad("the peak arrival rate %.0f records/s after scaling by %g is over the testbed's %d: use a smaller rate scale (%.3g)",
			r.PeakRate, sc.Rate, MaxSourceRate, roundDown(sc.Rate*MaxSourceRate/r.PeakRate))
	}

	edgesOf := map[string][]sim.EdgeSpec{}
	for _, v := range out.Job.Vertices {
		edgesOf[v.Name] = v.Inputs
	}
	state := 0.0
	for _, v := range out.Job.Vertices {
		if v.Capacity > MaxSubtaskCapacity*1.0001 && !sc.IgnoreLimits {
			bad("vertex %q: a subtask capacity of %.0f records/s after scaling is over the %d the testbed paces faithfully: use a rate scale of at most %.3g",
				v.Name, v.Capacity, MaxSubtaskCapacity, roundDown(sc.Rate*MaxSubtaskCapacity/v.Capacity))
		}
		if len(v.Topics) > 0 && !strings.HasPrefix(v.Name, "Source: ") {
			bad("vertex %q reads topics but its name does not start with \"Source: \", which Flink gives every source vertex", v.Name)
		}
		if len(v.Topics) > 0 && (v.USL.Sigma != 0 || v.USL.Kappa != 0) {
			bad("vertex %q: USL on a source is not realised (a source's cost is paid in the Kafka deserializer, which does not know the parallelism)", v.Name)
		}
		hash, other := 0, 0
		for _, e := range v.Inputs {
			if e.Ship == "HASH" {
				hash++
			} else {
				other++
			}
		}
		if hash > 0 && other > 0 {
			bad("vertex %q mixes HASH inputs with other ship strategies; the testbed's keyed vertices have only HASH inputs", v.Name)
		}
		if v.StateBytes > 0 && hash == 0 {
			bad("vertex %q has state but no HASH input; the testbed's state is keyed state", v.Name)
		}
		state += v.StateBytes
	}
	if state > MaxStateBytes && !sc.IgnoreLimits {
		bad("the job's state is %.0f MiB after scaling by %g, over the testbed's %d MiB: use a smaller state scale",
			state/(1<<20), sc.State, MaxStateBytes>>20)
	}
	r.Slots = SlotsNeeded(out.Job)
	if r.Slots > MaxSlots {
		bad("the job needs %d slots, over the testbed's %d", r.Slots, MaxSlots)
	}
	slots := out.Job.TaskManager.Slots
	r.TaskManagers = (r.Slots + slots - 1) / slots
	if len(problems) > 0 {
		return nil, fmt.Errorf("testbed cannot realise scenario %q:\n  %s", s.Name, strings.Join(problems, "\n  "))
	}
	return r, nil
}

// SlotsNeeded is what Flink's slot sharing asks for: the sum, over slot
// sharing groups, of the largest parallelism in the group.
func SlotsNeeded(j sim.JobSpec) int {
	most := map[string]int{}
	for _, v := range j.Vertices {
		g := v.SlotSharingGroup
		if g == "" {
			g = "default"
		}
		most[g] = max(most[g], v.Parallelism)
	}
	n := 0
	for _, p := range most {
		n += p
	}
	return n
}

// scaled is a deep copy of s in testbed units, validated.
func scaled(s *scenario.Scenario, sc Scale) (*scenario.Scenario, error) {
	b, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("testbed: copying scenario %q: %w", s.Name, err)
	}
	out, err := scenario.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("testbed: copying scenario %q: %w", s.Name, err)
	}
	out.File = s.File
	div := func(d time.Duration) time.Duration { return time.Duration(math.Round(float64(d) / sc.Time)) }
	out.Duration = div(out.Duration)
	out.SLO.Lag = div(out.SLO.Lag)
	if d := out.Expect.MaxTimeOverSLO; d != nil {
		scaled := div(*d)
		out.Expect.MaxTimeOverSLO = &scaled
	}
	if sc.Time > 1 && out.Tick > time.Second {
		out.Tick = max(time.Second, div(out.Tick))
	}
	j := &out.Job
	for i := range j.Vertices {
		v := &j.Vertices[i]
		v.Capacity *= sc.Rate
		v.StateBytes = math.Round(v.StateBytes * sc.State)
	}
	c := &j.Checkpoints
	c.Interval = max(div(c.Interval), sc.MinCheckpointInterval)
	c.Timeout = max(div(c.Timeout), 10*c.Interval, time.Minute)
	j.Restart.Time = div(j.Restart.Time)
	j.Restart.TaskManagerStartup = div(j.Restart.TaskManagerStartup)
	for i := range out.Load {
		for k := range out.Load[i].Segments {
			g := &out.Load[i].Segments[k]
			g.For, g.At, g.Width, g.Start = div(g.For), div(g.At), div(g.Width), div(g.Start)
			g.Period, g.Phase, g.Correlation = div(g.Period), div(g.Phase), div(g.Correlation)
			g.Rate *= sc.Rate
			g.From *= sc.Rate
			g.To *= sc.Rate
			g.Base *= sc.Rate
			g.Amplitude *= sc.Rate
			g.Peak *= sc.Rate
		}
	}
	for t, n := range out.InitialLag {
		out.InitialLag[t] = int64(math.Round(float64(n) * sc.Rate))
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("testbed: scenario %q scaled by rate %g, time %g: %w", s.Name, sc.Rate, sc.Time, err)
	}
	return out, nil
}

// peakRate is the highest total arrival rate over the scenario, sampled at
// 2,000 points and at every segment boundary's neighbourhood by the
// sampling density.
func peakRate(s *scenario.Scenario) float64 {
	const n = 2000
	peak := 0.0
	for i := 0; i <= n; i++ {
		t := time.Duration(float64(s.Duration) * float64(i) / n)
		total := 0.0
		for _, l := range s.Load {
			total += s.Rate(l.Topic, t)
		}
		peak = math.Max(peak, total)
	}
	return peak
}

// roundDown rounds a positive scale down to two significant digits, so
// that the scale a run prints is the one it used.
func roundDown(x float64) float64 {
	if !(x > 0) {
		return x
	}
	e := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Floor(x/e) * e
}
