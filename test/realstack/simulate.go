package realstack

import (
	"errors"
	"fmt"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// Rescale is one rescale as it happened on real Flink, to be played again
// in the simulator.
type Rescale struct {
	// At is the scenario offset of the apply (time since the load began).
	At time.Duration
	// InPlace: the adaptive scheduler's resource requirements; otherwise
	// stop-with-savepoint and a resubmission.
	InPlace bool
	// Parallelism is the new parallelism by vertex name.
	Parallelism map[string]int
	// Slots per TaskManager and TaskManagers of the new deployment (a
	// savepoint restart; 0 keeps the old).
	Slots, TaskManagers int
	// Slots0 and TaskManagers0 are the old deployment's.
	Slots0, TaskManagers0 int
}

// Outcome is how long a rescale took.
type Outcome struct {
	// Downtime is from the apply until the job runs at the new
	// parallelism, every vertex RUNNING.
	Downtime time.Duration
	// Recovered is from the apply until the lag is back under the SLO
	// (lag / arrival rate ≤ slo.lag); 0 if it was not within Horizon.
	Recovered time.Duration
}

// simStep is the simulator's step: downtimes are measured to it.
const simStep = 100 * time.Millisecond

// horizon bounds how long after the apply the simulator looks for the
// recovery.
const horizon = 10 * time.Minute

// SimulateRescale plays the scenario s (in testbed units) in the simulator
// from its start, as flinkVersion ("1.20", "2.1", …) plays it, applies r at
// r.At exactly as the operator applied it on real Flink, and measures its
// outcome the way the real run is measured. The simulator's job starts
// with the load, where the real one starts a few seconds after it: the
// difference is gone long before a rescale.
func SimulateRescale(s *scenario.Scenario, flinkVersion string, r Rescale) (Outcome, error) {
	spec := s.Job
	spec.FlinkVersion = flinkVersion
	if spec.RecordBytes == 0 {
		spec.RecordBytes = testbed.WorkloadRecordBytes
	}
	if r.Slots0 > 0 {
		spec.TaskManager.Slots = r.Slots0
	}
	if r.InPlace {
		spec.Scheduler = "adaptive"
	} else {
		spec.Scheduler = "default"
	}
	k := sim.NewMemoryKafka(spec.Topics)
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	job, err := sim.NewJob(spec, sim.Options{Start: start, Seed: uint64(s.Seed), Load: s, Kafka: k, Step: simStep})
	if err != nil {
		return Outcome{}, fmt.Errorf("simulator: %w", err)
	}
	if err := job.Submit(sim.Submission{TaskManagers: r.TaskManagers0}); err != nil {
		return Outcome{}, fmt.Errorf("simulator: first submission: %w", err)
	}
	advanceTo := func(t time.Duration) error { return job.Advance(start.Add(t).Sub(job.Now())) }
	if err := advanceTo(r.At); err != nil {
		return Outcome{}, fmt.Errorf("simulator: %w", err)
	}
	v := job.View()
	if v.Job.State != "RUNNING" {
		return Outcome{}, fmt.Errorf("simulator: the job is %s at %s, not RUNNING", v.Job.State, r.At)
	}
	want := map[string]int{}
	for _, x := range v.Job.Vertices {
		p, ok := r.Parallelism[x.Name]
		if !ok {
			p = x.Parallelism
		}
		want[x.ID] = p
	}
	if err := applyRescale(job, v.Job.ID, r, want); err != nil {
		return Outcome{}, err
	}
	var out Outcome
	for t := r.At; t <= r.At+horizon; t += simStep {
		if err := advanceTo(t); err != nil {
			return out, fmt.Errorf("simulator: %w", err)
		}
		if out.Downtime == 0 && runsAt(job.View(), want) {
			out.Downtime = t - r.At
		}
		if out.Downtime > 0 {
			rate := 0.0
			for _, tp := range s.Job.Topics {
				rate += s.Rate(tp.Name, t)
			}
			if lag := job.Stats().Lag; float64(lag) <= rate*s.SLO.Lag.Seconds() {
				out.Recovered = t - r.At
				return out, nil
			}
		}
	}
	if out.Downtime == 0 {
		return out, fmt.Errorf("simulator: the job did not run at %v within %s of the apply", r.Parallelism, horizon)
	}
	return out, nil
}

// applyRescale applies r to the simulated job: new resource requirements,
// or stop-with-savepoint (stepping the simulator until it completes) and a
// resubmission with the new overrides and shape.
func applyRescale(job *sim.Job, jobID string, r Rescale, want map[string]int) error {
	if r.InPlace {
		req := map[string]sim.Bounds{}
		for id, p := range want {
			req[id] = sim.Bounds{LowerBound: 1, UpperBound: p}
		}
		if err := job.UpdateResourceRequirements(jobID, req); err != nil {
			return fmt.Errorf("simulator: resource requirements: %w", err)
		}
		return nil
	}
	trigger, err := job.TriggerSavepoint(sim.SavepointRequest{JobID: jobID, Stop: true, FormatType: "CANONICAL"})
	if err != nil {
		return fmt.Errorf("simulator: stop-with-savepoint: %w", err)
	}
	for range int(horizon / simStep) {
		st, err := job.SavepointStatus(jobID, trigger)
		if err != nil {
			return fmt.Errorf("simulator: savepoint status: %w", err)
		}
		if st.Status == "COMPLETED" {
			if st.FailureCause != "" {
				return fmt.Errorf("simulator: savepoint failed: %s", st.FailureCause)
			}
			slots, tms := r.Slots, r.TaskManagers
			if slots == 0 {
				slots = r.Slots0
			}
			if tms == 0 {
				tms = r.TaskManagers0
			}
			// New TaskManager processes start (and count) when the shape
			// changes; otherwise the old ones take the new job.
			session := slots == r.Slots0 && tms <= r.TaskManagers0
			return job.Submit(sim.Submission{Overrides: want, SavepointPath: st.Location,
				SlotsPerTaskManager: slots, TaskManagers: tms, Session: session})
		}
		if err := job.Advance(simStep); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
	}
	return errors.New("simulator: the savepoint did not complete")
}

// runsAt reports whether the job and every vertex run at want (id →
// parallelism).
func runsAt(v sim.View, want map[string]int) bool {
	if v.Job.State != "RUNNING" || len(v.Job.Vertices) == 0 {
		return false
	}
	for _, x := range v.Job.Vertices {
		if x.Status != "RUNNING" || x.Parallelism != want[x.ID] {
			return false
		}
	}
	return true
}
