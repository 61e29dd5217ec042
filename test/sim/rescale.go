package sim

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ResourceRequirements implements Cluster (GET
// /jobs/:jobid/resource-requirements).
func (j *Job) ResourceRequirements(jobID string) (map[string]Bounds, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	r, err := j.job(jobID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Bounds, len(r.requirement))
	for id, b := range r.requirement {
		out[id] = b
	}
	return out, nil
}

// TaskManagerTimeout is how long an idle TaskManager lives before Flink's
// active resource manager (native Kubernetes) releases it: the default of
// resourcemanager.taskmanager-timeout.
const TaskManagerTimeout = 30 * time.Second

// UpdateResourceRequirements implements Cluster (PUT
// /jobs/:jobid/resource-requirements) with the adaptive scheduler's
// validation. When an upper bound changes a vertex's parallelism, the job
// restarts its tasks from the latest checkpoint at the new parallelism (the
// slots are available: the active resource manager starts TaskManagers;
// those a scale-down leaves idle go TaskManagerTimeout after the restart).
// On a Pool the job gets at most the slots free plus those it holds; in
// reactive mode the update is rejected, as Flink rejects it.
func (j *Job) UpdateResourceRequirements(jobID string, req map[string]Bounds) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen++
	r, err := j.job(jobID)
	if err != nil {
		return err
	}
	if j.spec.Scheduler != "adaptive" {
		return fmt.Errorf("%w: The resource requirements update is only expected to work with the AdaptiveScheduler.", ErrUnsupported) //nolint:staticcheck // Flink's message, verbatim
	}
	if len(req) == 0 {
		return fmt.Errorf("%w: Request body does not specify resource requirements.", ErrBadRequest) //nolint:staticcheck // Flink's message, verbatim
	}
	var unknown []string
	for id := range req {
		if j.g.byID[id] == nil {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%w: The request contains unknown job vertices %v.", ErrBadRequest, unknown) //nolint:staticcheck // Flink's message, verbatim
	}
	next := map[string]Bounds{}
	for _, v := range j.g.vertices {
		b, ok := req[v.id]
		if !ok {
			return fmt.Errorf("%w: The request is incomplete, missing job vertex [%s] resource requirements.", ErrBadRequest, v.id) //nolint:staticcheck // Flink's message, verbatim
		}
		if b.LowerBound == -1 {
			b.LowerBound = 1
		}
		if b.UpperBound == -1 {
			b.UpperBound = r.maxP[v.id]
		}
		if b.LowerBound < 1 || b.LowerBound > b.UpperBound || b.UpperBound > r.maxP[v.id] {
			return fmt.Errorf("%w: Invalid parallelism bounds [%d, %d] for job vertex [%s] (max parallelism %d).", //nolint:staticcheck // Flink's message, verbatim
				ErrBadRequest, b.LowerBound, b.UpperBound, v.id, r.maxP[v.id])
		}
		next[v.id] = b
	}
	if j.reactive() {
		// AdaptiveScheduler.updateJobResourceRequirements, after the
		// JobMaster validated the request.
		return fmt.Errorf("%w: Cannot change the parallelism of a job running in reactive mode.", ErrUnsupported) //nolint:staticcheck // Flink's message, verbatim
	}
	if r.state == "RESTARTING" && r.restartKind == "rescale" {
		return fmt.Errorf("%w: Another update to the job [%s] resource requirements is in progress.", ErrConflict, jobID) //nolint:staticcheck // Flink's message, verbatim
	}
	if r.state != "RUNNING" && r.state != "CREATED" && r.state != "RESTARTING" {
		return fmt.Errorf("%w: job %s is %s", ErrNotRunning, jobID, r.state)
	}
	r.requirement = next
	r.pendingRescale = nil
	changed := false
	for id, b := range next {
		if b.UpperBound != r.par[id] {
			changed = true
		}
	}
	if j.pool != nil {
		// What the slots allow: nothing changes when that is what the
		// job runs at, or when they are too few for the lower bounds
		// (the job rescales when slots come: scaleUpToPool).
		par := r.poolParallelism(j, next)
		changed = par != nil && (r.waiting || !maps.Equal(par, r.par))
	}
	if !changed {
		return nil
	}
	if synchronizedRescale(j.spec.FlinkVersion) && r.state == "RUNNING" {
		// Flink 2: the job keeps running until a checkpoint completes
		// after the cooldown (or the trigger's maximum delay passes),
		// then restarts from that checkpoint.
		earliest := j.now
		if since, ok := r.timestamps["RUNNING"]; ok {
			earliest = maxTime(earliest, time.UnixMilli(since).Add(rescaleCooldown))
		}
		r.pendingRescale = &pendingRescale{next: next, earliest: earliest,
			deadline: earliest.Add(rescaleTriggerMaxDelay * j.spec.Checkpoints.Interval)}
		return nil
	}
	j.rescale(r, next)
	return nil
}

// rescaleCooldown is the default of Flink 2's
// jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling: no
// rescale starts sooner after the job (re)started running.
const rescaleCooldown = 30 * time.Second

// rescaleTriggerMaxDelay is how many checkpoint intervals Flink 2 waits for
// a checkpoint before it rescales anyway: the default of
// jobmanager.adaptive-scheduler.rescale-trigger.max-delay, the interval ×
// (rescale-trigger.max-checkpoint-failures (2) + 1).
const rescaleTriggerMaxDelay = 3

// pendingRescale is a Flink 2 rescale waiting for its trigger.
type pendingRescale struct {
	next         map[string]Bounds
	earliest     time.Time // the cooldown's end
	deadline     time.Time
	checkpointed bool // a checkpoint completed since earliest
}

// synchronizedRescale tells whether a Flink line synchronizes in-place
// rescales with checkpoints (FLIP-461, Flink 2.0): the adaptive scheduler
// rescales once the next checkpoint completes, so that the restart replays
// as little as possible. (The real-Flink testbed measured it on Flink 2.2:
// a rescale requested at 4:00 ran 3 to 12 s later, when the checkpoint in
// progress completed.)
func synchronizedRescale(version string) bool {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 2
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// triggerRescale starts a pending Flink 2 rescale when its checkpoint has
// completed or its maximum delay has passed.
func (r *deployment) triggerRescale(j *Job) {
	p := r.pendingRescale
	if p == nil || r.state != "RUNNING" || j.now.Before(p.earliest) || !p.checkpointed && j.now.Before(p.deadline) {
		return
	}
	r.pendingRescale = nil
	j.rescale(r, p.next)
}

// inPlaceTaskManagers is what a job holds after an in-place rescale from
// held TaskManagers to one that needs need of them and uses slots slots.
// A scale-up gets what it needs. A scale-down releases only TaskManagers
// left without a slot in use, and Flink's adaptive scheduler spreads the
// slots it keeps over the TaskManagers it has: on real Flink 1.20.3 a
// keyed job going from 8 slots on 2 TaskManagers of 4 to 4 and then 3
// slots kept both (`flinkscale bench --real`, real-step-down, 2026-12-05),
// so a TaskManager goes only when there are fewer slots than TaskManagers.
func inPlaceTaskManagers(held, need, slots int) int {
	return max(need, min(held, slots))
}

// rescale restarts the job's tasks at the parallelism next asks for, from
// the latest checkpoint. On a pool the job gets what the slots free and
// those it holds allow (determineParallelism); when that is what it runs
// at, or less than next's lower bounds need, it keeps running as it is (as
// Flink's Executing state does when it cannot rescale).
func (j *Job) rescale(r *deployment, next map[string]Bounds) {
	wait := j.spec.Restart.Time + j.restoreTime()
	if j.pool != nil {
		par := r.poolParallelism(j, next)
		if par == nil || maps.Equal(par, r.par) && !r.waiting {
			return
		}
		r.requirement = next // what deploy places (next is the requirement already)
	} else {
		oldTMs := r.tms
		for id, b := range next {
			r.par[id] = b.UpperBound
		}
		slots := r.slotsNeeded(j.g)
		needed := (slots + r.slotsPerTM - 1) / r.slotsPerTM
		r.tms = max(r.tms, needed)
		// A scale-down may leave TaskManagers idle: the active resource
		// manager releases them TaskManagerTimeout after the job runs
		// again.
		r.releaseAt, r.releaseTo = time.Time{}, 0
		if keep := inPlaceTaskManagers(r.tms, needed, slots); keep < r.tms {
			r.releaseTo = keep
		}
		if r.tms > oldTMs {
			wait += j.spec.Restart.TaskManagerStartup
		}
	}
	r.numRescales++
	r.setState(j, "RESTARTING")
	r.restartKind = "rescale"
	r.readyAt = j.now.Add(wait)
	r.deploy(j, func() { r.rewind(j) })
}
