package bench

import (
	"math"
	"time"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Held is what a job held and how far behind it was over one interval of
// a run.
type Held struct {
	// Slots is what the job holds in whole TaskManagers (TaskManagers ×
	// slots per TaskManager); UsedSlots what its parallelism takes.
	Slots, UsedSlots int
	Cores            float64
	// Lag in records and in seconds of arrivals.
	Lag, LagSeconds float64
}

// Account adds an interval dt of h to a result: slot-, used-slot- and
// core-hours, the time over the scenario's lag SLO, the largest lag. Run
// calls it every tick of a simulated run, test/realbench every sample of a
// real one.
func Account(res *Result, s *scenario.Scenario, dt time.Duration, h Held) {
	hours := dt.Hours()
	res.SlotHours += float64(h.Slots) * hours
	res.UsedSlotHours += float64(h.UsedSlots) * hours
	res.CoreHours += h.Cores * hours
	if h.LagSeconds > s.SLO.Lag.Seconds() {
		res.OverSLO += dt
	}
	res.MaxLag = math.Max(res.MaxLag, h.Lag)
	if !math.IsInf(h.LagSeconds, 0) {
		res.MaxLagSeconds = math.Max(res.MaxLagSeconds, h.LagSeconds)
	}
}

// Finish derives what a run's events and timeline say once it is over:
// the reversals and the convergence after each load change.
func Finish(s *scenario.Scenario, res *Result) {
	res.Reversals = reversals(res.Events)
	res.Converge = convergence(s, res)
}

// Assemble is the report of runs made elsewhere (test/realbench on real
// Flink): the oracle of each scenario is added and the goals judged, as
// Compare does for its own runs.
func Assemble(scenarios []*scenario.Scenario, policies []string, results []*Result, started time.Time) (*Report, error) {
	rep := &Report{Started: started.UTC(), Policies: policies, SLO: map[string]time.Duration{}}
	for _, s := range scenarios {
		rep.SLO[s.Name] = s.SLO.Lag
		o, err := Oracle(s, 0.7, OracleStep(s))
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, o)
	}
	rep.add(scenarios, results)
	rep.Elapsed = time.Since(started)
	return rep, nil
}
