package bench

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
)

// actuator performs plans the way the Flink Kubernetes Operator does, the
// same for every policy: in place through the adaptive scheduler's resource
// requirements when the job runs it on Flink ≥ 1.18 and the TaskManager
// shape stays, otherwise a stop-with-savepoint and a resubmission from the
// savepoint. It reacts at once (the operator's reconcile latency is left
// out for every policy alike).
//
// A plan says parallelism (and perhaps slots per TaskManager), never how
// many TaskManagers: as with the operator's native resource manager, Flink
// starts what the job's slots need (per slot-sharing group its widest
// vertex), whether or not the policy counted them right (on Flink 1.18 the
// REST API does not say which vertices share slots), and releases only
// what an in-place scale-down leaves idle. What the job holds, and what the
// run bills, is what the simulator holds (sim.Job.TaskManagers).
type actuator struct {
	job  *sim.Job
	spec sim.JobSpec

	slotsPerTM int
	cpu        float64

	phase     phase
	decidedAt time.Time
	plan      Plan
	from      map[string]int
	trigger   string
	jobID     string
	inPlace   bool
	// What a rollback goes back to: the TaskManagers' memory and slots
	// before the plan, the savepoint the new job started from, and when
	// it was submitted (or rescaled in place).
	fromMem     scaling.TaskManagerMemory
	fromSlots   int
	savepoint   string
	submittedAt time.Time
}

// RollbackAfter is how long a rescaled job may fail to run before the
// actuator rolls it back to the layout it ran before, as the operator does
// with kubernetes.operator.deployment.rollback.enabled after
// kubernetes.operator.deployment.readiness.timeout (5 min): a job whose
// TaskManagers lack network buffers keeps failing and never runs. The
// rescale counts as failed.
const RollbackAfter = 5 * time.Minute

type phase int

const (
	idle phase = iota
	savepointing
	restarting
)

func newActuator(job *sim.Job, spec sim.JobSpec) *actuator {
	a := &actuator{job: job, spec: spec, slotsPerTM: spec.TaskManager.Slots, cpu: spec.TaskManager.CPU}
	if _, spt := job.TaskManagers(); spt > 0 {
		a.slotsPerTM = spt
	}
	return a
}

func (a *actuator) busy() bool { return a.phase != idle }

// up reports whether the job runs (not stopped for a restart).
func (a *actuator) up() bool {
	return a.job.View().Job.State == "RUNNING"
}

// running is the parallelism per vertex id of the job now.
func (a *actuator) running() map[string]int {
	out := a.job.Parallelism()
	if out == nil {
		out = map[string]int{}
	}
	return out
}

// resources are the slots and cores the job holds now.
func (a *actuator) resources() (int, float64) {
	n, spt := a.job.TaskManagers()
	return n * spt, float64(n) * a.cpu
}

func (a *actuator) deployment(partitions map[string]int) Deployment {
	v := a.job.View()
	tms, _ := a.job.TaskManagers()
	d := Deployment{
		Parallelism: a.running(), SlotsPerTaskManager: a.slotsPerTM, CPUPerTaskManager: a.cpu,
		TaskManagers: tms, Partitions: partitions, Rescaling: a.busy(),
		InPlace: v.Scheduler == "adaptive" && atLeast118(v.FlinkVersion),
	}
	if ms, ok := v.Job.Timestamps["RUNNING"]; ok && v.Job.State == "RUNNING" {
		d.RunningSince = time.UnixMilli(ms).UTC()
	}
	return d
}

// start begins performing plan; started is false when the plan changes
// nothing or cannot start (the job is not running).
func (a *actuator) start(plan Plan, now time.Time) (Event, bool) {
	cur := a.running()
	slots := plan.SlotsPerTaskManager
	if slots <= 0 {
		slots = a.slotsPerTM
	}
	maxP := map[string]int{}
	for _, v := range a.job.View().Job.Vertices {
		maxP[v.ID] = v.MaxParallelism
	}
	to := map[string]int{}
	for id, p := range cur {
		to[id] = p
		if q, ok := plan.Parallelism[id]; ok && q > 0 {
			// Flink refuses more subtasks than key groups.
			if maxP[id] > 0 {
				q = min(q, maxP[id])
			}
			to[id] = q
		}
	}
	mem := a.job.TaskManagerMemory()
	if plan.Memory != nil && *plan.Memory == mem {
		plan.Memory = nil
	}
	if maps.Equal(to, cur) && slots == a.slotsPerTM && plan.Memory == nil {
		return Event{}, false
	}
	v := a.job.View()
	if v.Job.State != "RUNNING" {
		return Event{}, false
	}
	a.plan = Plan{Parallelism: to, SlotsPerTaskManager: slots, Memory: plan.Memory, Reason: plan.Reason}
	a.from, a.decidedAt, a.jobID = cur, now, v.Job.ID
	a.fromMem, a.fromSlots, a.savepoint = mem, a.slotsPerTM, ""
	ev := Event{From: cur, To: to, Reason: plan.Reason, Memory: plan.Memory != nil}
	if slots == a.slotsPerTM && plan.Memory == nil && v.Scheduler == "adaptive" && atLeast118(v.FlinkVersion) {
		req, err := a.job.ResourceRequirements(v.Job.ID)
		if err == nil {
			for id, p := range to {
				b := req[id]
				req[id] = sim.Bounds{LowerBound: min(p, max(b.LowerBound, 1)), UpperBound: p}
			}
			if err := a.job.UpdateResourceRequirements(v.Job.ID, req); err == nil {
				a.phase, a.inPlace, a.submittedAt = restarting, true, now
				ev.InPlace = true
				return ev, true
			}
		}
	}
	trigger, err := a.job.TriggerSavepoint(sim.SavepointRequest{JobID: v.Job.ID, TargetDirectory: "s3://bench/savepoints",
		Stop: true, FormatType: "CANONICAL"})
	if err != nil {
		return Event{}, false
	}
	a.phase, a.inPlace, a.trigger = savepointing, false, trigger
	return ev, true
}

// step advances a rescale; it returns the finished rescale, if one ended.
func (a *actuator) step(now time.Time) *Rescale {
	switch a.phase {
	case savepointing:
		st, err := a.job.SavepointStatus(a.jobID, a.trigger)
		if err != nil {
			return a.fail(now)
		}
		if st.Status != "COMPLETED" {
			return nil
		}
		if st.FailureCause != "" {
			return a.fail(now) // the job keeps running its old parallelism
		}
		// No TaskManager count: Flink starts what the slots need.
		sub := sim.Submission{
			DefaultParallelism: maxOf(a.plan.Parallelism), Overrides: a.plan.Parallelism,
			SlotsPerTaskManager: a.plan.SlotsPerTaskManager, SavepointPath: st.Location, Memory: a.plan.Memory,
		}
		if err := a.job.Submit(sub); err != nil {
			return a.fail(now)
		}
		a.slotsPerTM = sub.SlotsPerTaskManager
		a.phase, a.savepoint, a.submittedAt, a.jobID = restarting, st.Location, now, a.job.View().Job.ID
	case restarting:
		v := a.job.View()
		if v.Job.State != "RUNNING" {
			if v.Job.FailureCause != "" && now.Sub(a.submittedAt) >= RollbackAfter {
				return a.rollback(now, v)
			}
			return nil
		}
		for _, x := range v.Job.Vertices {
			if x.Parallelism != a.plan.Parallelism[x.ID] {
				return nil
			}
		}
		down := now.Sub(a.decidedAt)
		if ms, ok := v.Job.Timestamps["RUNNING"]; ok {
			if t := time.UnixMilli(ms); t.After(a.decidedAt) {
				down = t.Sub(a.decidedAt)
			}
		}
		a.phase = idle
		return &Rescale{DecidedAt: a.decidedAt, CompletedAt: now, Downtime: down, From: a.from, To: a.plan.Parallelism, InPlace: a.inPlace}
	}
	return nil
}

// rollback puts back the layout the job ran before a rescale whose job
// keeps failing: the old resource requirements in place, or the failing
// job's cluster deleted and the old parallelism, slots and memory
// restored from the savepoint the new job started from. The rescale
// failed; the job runs again after its restart.
func (a *actuator) rollback(now time.Time, v sim.View) *Rescale {
	if a.inPlace {
		req := map[string]sim.Bounds{}
		for id, p := range a.from {
			req[id] = sim.Bounds{LowerBound: 1, UpperBound: p}
		}
		if err := a.job.UpdateResourceRequirements(v.Job.ID, req); err != nil {
			return nil // tried again at the next step
		}
		return a.fail(now)
	}
	if err := a.job.Abort(v.Job.ID); err != nil {
		return nil
	}
	mem := a.fromMem
	sub := sim.Submission{DefaultParallelism: maxOf(a.from), Overrides: a.from, SlotsPerTaskManager: a.fromSlots,
		SavepointPath: a.savepoint, Memory: &mem}
	if err := a.job.Submit(sub); err != nil {
		return nil
	}
	a.slotsPerTM = a.fromSlots
	return a.fail(now)
}

func (a *actuator) fail(now time.Time) *Rescale {
	a.phase = idle
	return &Rescale{DecidedAt: a.decidedAt, CompletedAt: now, From: a.from, To: a.plan.Parallelism, Failed: true}
}

func maxOf(m map[string]int) int {
	n := 1
	for _, p := range m {
		n = max(n, p)
	}
	return n
}

// atLeast118 reports a Flink version ("1.18", "1.20", "2.1") ≥ 1.18.
func atLeast118(v string) bool {
	major, minor, _ := strings.Cut(v, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(strings.SplitN(minor, ".", 2)[0])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > 1 || mi >= 18
}
