package sim

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Pool is a fixed set of TaskManagers: a standalone cluster's, whose
// TaskManagers a Kubernetes Deployment runs. Jobs that use it (UsePool)
// take their slots from it instead of having TaskManagers provisioned for
// them, as Flink's standalone resource manager hands registered slots to
// the jobs that declare a need for them. Several jobs sharing a pool are a
// session cluster (Session advances them together).
//
// A pool has no clock of its own: its time is the latest virtual time of
// the jobs using it, so jobs sharing a pool must move together.
type Pool struct {
	mu        sync.Mutex
	slotsEach int
	startup   time.Duration
	now       time.Time
	tms       []*poolTM // oldest first
	nextSeq   int
	name      string // the first job's cluster name: TaskManager ids derive from it
	jobs      []*Job
	jobIDs    map[*Job]string // each job's current job id
	// gen counts the changes to the pool, for the generations of its
	// jobs' views (Job.Generation).
	gen uint64
}

// poolTM is one TaskManager of a pool.
type poolTM struct {
	seq        int       // 0-based: its id and host derive from it
	registerAt time.Time // when it registers with the resource manager
	slots      []poolSlot
}

// poolSlot is one slot: free, or held by a job.
type poolSlot struct {
	job   *Job
	jobID string
}

// NewPool is a cluster of taskManagers TaskManagers of slotsEach slots,
// registered already. A TaskManager added later (SetTaskManagers)
// registers startup after the pool's time.
func NewPool(taskManagers, slotsEach int, startup time.Duration) *Pool {
	p := &Pool{slotsEach: max(slotsEach, 1), startup: startup, jobIDs: map[*Job]string{}}
	for range max(taskManagers, 0) {
		p.addTM(time.Time{})
	}
	return p
}

func (p *Pool) addTM(registerAt time.Time) {
	p.tms = append(p.tms, &poolTM{seq: p.nextSeq, registerAt: registerAt, slots: make([]poolSlot, p.slotsEach)})
	p.nextSeq++
}

// SetTaskManagers is what changing the replicas of the TaskManager
// Deployment does: new TaskManagers register startup later in the jobs'
// virtual time; removed ones (the newest first, starting ones before
// registered ones) go at once, and every job that had slots on them fails
// over: it restarts from its latest checkpoint with the slots it still
// gets.
func (p *Pool) SetTaskManagers(n int) {
	n = max(n, 0)
	p.mu.Lock()
	p.gen++
	for len(p.tms) < n {
		p.addTM(p.now.Add(p.startup))
	}
	var hit []*Job
	for len(p.tms) > n {
		tm := p.tms[len(p.tms)-1]
		p.tms = p.tms[:len(p.tms)-1]
		for _, s := range tm.slots {
			if s.job != nil && !slices.Contains(hit, s.job) {
				hit = append(hit, s.job)
			}
		}
	}
	p.mu.Unlock()
	// A job locks itself, then the pool: tell the jobs once the pool is
	// unlocked.
	for _, j := range hit {
		j.slotsLost()
	}
}

// TaskManagers is the TaskManagers registered now and the slots of each.
func (p *Pool) TaskManagers() (registered, slotsEach int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.registered()), p.slotsEach
}

// Slots is the slots of the registered TaskManagers, and those of them no
// job holds.
func (p *Pool) Slots() (total, free int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tm := range p.registered() {
		total += len(tm.slots)
		for _, s := range tm.slots {
			if s.job == nil {
				free++
			}
		}
	}
	return total, free
}

// registered is the TaskManagers registered at the pool's time.
func (p *Pool) registered() []*poolTM {
	var out []*poolTM
	for _, tm := range p.tms {
		if !p.now.Before(tm.registerAt) {
			out = append(out, tm)
		}
	}
	return out
}

// join adds a job to the pool.
func (p *Pool) join(j *Job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs = append(p.jobs, j)
	if j.now.After(p.now) {
		p.now = j.now
	}
	if p.name == "" {
		p.name = j.clusterName()
	}
}

// advance moves the pool's time to now when a job gets there: TaskManagers
// whose start-up is over register.
func (p *Pool) advance(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !now.After(p.now) {
		return
	}
	before := len(p.registered())
	p.now = now
	if len(p.registered()) != before {
		p.gen++
	}
}

// claim records j's new job id; a session cluster runs each job id once
// (Flink's DuplicateJobSubmissionException).
func (p *Pool) claim(j *Job, jobID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for other, id := range p.jobIDs {
		if other != j && id == jobID {
			return fmt.Errorf("%w: Job has already been submitted.", ErrConflict) //nolint:staticcheck // Flink's message, verbatim
		}
	}
	p.jobIDs[j] = jobID
	p.gen++
	return nil
}

// available is what j could hold: the free slots of the registered
// TaskManagers plus those j holds.
func (p *Pool) available(j *Job) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, tm := range p.registered() {
		for _, s := range tm.slots {
			if s.job == nil || s.job == j {
				n++
			}
		}
	}
	return n
}

// hold makes j hold n slots (n ≤ available(j)): it keeps the slots it has
// on the oldest TaskManagers and takes free ones from the oldest
// TaskManagers on, as the standalone resource manager hands out registered
// slots. It returns the TaskManager (seq) of each slot held, in order.
func (p *Pool) hold(j *Job, jobID string, n int) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	kept := 0
	for _, tm := range p.tms {
		for i := range tm.slots {
			if tm.slots[i].job != j {
				continue
			}
			if kept < n {
				tm.slots[i].jobID = jobID
				kept++
			} else {
				tm.slots[i] = poolSlot{}
			}
		}
	}
	for _, tm := range p.registered() {
		for i := range tm.slots {
			if kept < n && tm.slots[i].job == nil {
				tm.slots[i] = poolSlot{job: j, jobID: jobID}
				kept++
			}
		}
	}
	var seqs []int
	for _, tm := range p.tms {
		for _, s := range tm.slots {
			if s.job == j {
				seqs = append(seqs, tm.seq)
			}
		}
	}
	return seqs
}

// generation is the pool's change count.
func (p *Pool) generation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// taskManagerID is the id of TaskManager seq, as a standalone cluster's
// Deployment names its pods' TaskManagers.
func (p *Pool) taskManagerID(seq int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s-taskmanager-1-%d", p.name, seq+1)
}

// poolTMView is what a view shows of one registered TaskManager.
type poolTMView struct {
	seq, slots int
	id         string
	jobIDs     []string // the job of each slot in use
}

func (p *Pool) views() []poolTMView {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []poolTMView
	for _, tm := range p.registered() {
		v := poolTMView{seq: tm.seq, slots: len(tm.slots), id: fmt.Sprintf("%s-taskmanager-1-%d", p.name, tm.seq+1)}
		for _, s := range tm.slots {
			if s.job != nil {
				v.jobIDs = append(v.jobIDs, s.jobID)
			}
		}
		out = append(out, v)
	}
	return out
}

// UsePool makes the job a standalone cluster's (or, with other jobs on the
// same pool, a session cluster's): it takes its slots from p instead of
// having TaskManagers started for it, and its view shows p's TaskManagers.
// Call it before the first Submit.
func (j *Job) UsePool(p *Pool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.run != nil {
		panic(fmt.Sprintf("sim: job %q: UsePool after Submit", j.spec.Name))
	}
	j.gen++
	j.pool = p
	p.join(j)
}

// Flink's waits for slots, at their defaults.
const (
	// SlotRequestTimeout is slot.request.timeout: the default scheduler
	// fails a job whose slots do not come within it.
	SlotRequestTimeout = 5 * time.Minute
	// ResourceWaitTimeout is jobmanager.adaptive-scheduler.resource-wait-timeout:
	// the adaptive scheduler fails a job that does not get the slots its
	// lower bounds need within it (reactive mode waits for ever).
	ResourceWaitTimeout = 5 * time.Minute
	// ScalingIntervalMin is jobmanager.adaptive-scheduler.scaling-interval.min
	// (Flink 1.19, 1.20; executing.cooldown-after-rescaling in 2.x): an
	// adaptive job scales up to new slots no sooner after it (re)started
	// running. Flink also waits for the resources to stabilize
	// (resource-stabilization-timeout); the simulator does not: it scales
	// up once the new slots are registered and this interval has passed.
	ScalingIntervalMin = 30 * time.Second
)

// The causes of a job that timed out waiting for slots, as Flink reports
// them.
const (
	slotRequestTimeoutCause  = "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Slot request bulk is not fulfillable! Could not allocate the required slot within slot request timeout"
	resourceWaitTimeoutCause = "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Could not acquire the minimum required resources."
)

// reactive tells whether the job runs in reactive mode.
func (j *Job) reactive() bool { return j.spec.SchedulerMode == SchedulerModeReactive }

// determineParallelism is the parallelism Flink's adaptive scheduler gives
// a job with the requirements req on slots slots (nil: fewer slots than its
// lower bounds need). It follows SlotSharingSlotAllocator.determineParallelism
// of Flink 1.18–1.20 (FLINK-30895's even distribution, FLINK-31476's lower
// bounds, FLINK-33960's group minimum): a slot-sharing group needs the
// largest lower bound of its vertices and can use up to the largest upper
// bound; the groups, narrowest range (upper − lower) first, each take their
// minimum plus an even share of the slots the remaining groups do not need
// for their minimums, capped at their upper bound, so what a narrow group
// leaves goes to the wider ones; a vertex runs at min(its upper bound, its
// group's parallelism).
func determineParallelism(g *graph, req map[string]Bounds, slots int) map[string]int {
	type group struct {
		name            string
		maxLower, maxUp int
	}
	var groups []*group
	byName := map[string]*group{}
	for _, v := range g.vertices {
		gr := byName[v.group]
		if gr == nil {
			gr = &group{name: v.group}
			byName[v.group] = gr
			groups = append(groups, gr)
		}
		gr.maxLower = max(gr.maxLower, req[v.id].LowerBound)
		gr.maxUp = max(gr.maxUp, req[v.id].UpperBound)
	}
	minRequired := 0
	for _, gr := range groups {
		minRequired += gr.maxLower
	}
	if minRequired > slots {
		return nil
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return (a.maxUp - a.maxLower) - (b.maxUp - b.maxLower) })
	groupPar := map[string]int{}
	unassigned, unassignedGroups, minRemaining := slots, len(groups), minRequired
	for _, gr := range groups {
		share := (unassigned - minRemaining) / unassignedGroups
		p := gr.maxLower + min(gr.maxUp-gr.maxLower, share)
		groupPar[gr.name] = p
		minRemaining -= gr.maxLower
		unassigned -= p
		unassignedGroups--
	}
	par := map[string]int{}
	for _, v := range g.vertices {
		par[v.id] = min(req[v.id].UpperBound, groupPar[v.group])
	}
	return par
}

// poolParallelism is the parallelism the deployment can run at on the
// slots free in its pool plus those it holds: the adaptive scheduler's
// determineParallelism for req, or for the default scheduler its own
// parallelism if every slot it needs is there (nil: it must wait).
func (r *deployment) poolParallelism(j *Job, req map[string]Bounds) map[string]int {
	avail := j.pool.available(j)
	if j.spec.Scheduler == "adaptive" {
		return determineParallelism(j.g, req, avail)
	}
	if r.slotsNeeded(j.g) > avail {
		return nil
	}
	return maps.Clone(r.par)
}

// takeSlots makes the job hold the slots its parallelism needs.
func (r *deployment) takeSlots(j *Job) {
	r.slotTM = j.pool.hold(j, r.jobID, r.slotsNeeded(j.g))
}

// releaseSlots gives the job's slots back to the pool.
func (r *deployment) releaseSlots(j *Job) {
	j.pool.hold(j, r.jobID, 0)
	r.slotTM = nil
}

// deploy gives the deployment its parallelism and slots and prepares its
// tasks: setup assigns the sources' splits for the parallelism (a fresh
// start, a restore, a rewind to the latest checkpoint). On a pool, the
// deployment gets what the free slots and those it holds allow; when that
// is not enough it holds nothing and waits (waitForSlots). readyAt must be
// set: it says how long the deployment takes once it has its slots.
func (r *deployment) deploy(j *Job, setup func()) {
	r.setup, r.waiting = setup, false
	if j.pool != nil {
		if par := r.poolParallelism(j, r.requirement); par != nil {
			r.par = par
			r.takeSlots(j)
		} else {
			r.releaseSlots(j)
			r.waiting, r.waitSince, r.waitDelay = true, j.now, r.readyAt.Sub(j.now)
		}
	}
	setup()
	r.attempt++
	r.newTasks(j)
}

// waitForSlots retries a deployment waiting for slots: it deploys once the
// pool has them, or fails when Flink's wait is over (the default
// scheduler's slot request timeout, the adaptive scheduler's resource wait
// timeout; reactive mode waits for ever).
func (r *deployment) waitForSlots(j *Job) {
	if par := r.poolParallelism(j, r.requirement); par != nil {
		changed := !maps.Equal(par, r.par)
		r.par = par
		r.takeSlots(j)
		r.waiting = false
		r.readyAt = j.now.Add(r.waitDelay)
		if changed {
			r.setup()
		}
		r.newTasks(j)
		return
	}
	timeout, cause := SlotRequestTimeout, slotRequestTimeoutCause
	if j.spec.Scheduler == "adaptive" {
		timeout, cause = ResourceWaitTimeout, resourceWaitTimeoutCause
	}
	if j.reactive() || j.now.Before(r.waitSince.Add(timeout)) {
		return
	}
	r.waiting = false
	r.failureCause = cause
	r.setState(j, "FAILED")
	r.endTime = j.now
}

// scaleUpToPool rescales an adaptive job that runs below its upper bounds
// when the pool has slots for more subtasks (Flink's Executing state on new
// resources: a larger cumulative parallelism than the current one), once
// ScalingIntervalMin has passed since it last started running. On Flink 2
// the rescale then waits for a checkpoint, as requested ones do.
func (r *deployment) scaleUpToPool(j *Job) {
	if j.pool == nil || j.spec.Scheduler != "adaptive" || r.state != "RUNNING" || r.pendingRescale != nil {
		return
	}
	if j.now.Before(time.UnixMilli(r.timestamps["RUNNING"]).Add(ScalingIntervalMin)) {
		return
	}
	par := r.poolParallelism(j, r.requirement)
	if par == nil || cumulative(par) <= cumulative(r.par) {
		return
	}
	if synchronizedRescale(j.spec.FlinkVersion) {
		r.pendingRescale = &pendingRescale{next: r.requirement, earliest: j.now,
			deadline: j.now.Add(rescaleTriggerMaxDelay * j.spec.Checkpoints.Interval)}
		return
	}
	j.rescale(r, r.requirement)
}

func cumulative(par map[string]int) int {
	n := 0
	for _, p := range par {
		n += p
	}
	return n
}

// slotsLost tells the job that TaskManagers holding its slots went: a
// deployment that had them fails over.
func (j *Job) slotsLost() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen++
	r := j.run
	if r == nil || terminal(r.state) || r.waiting {
		return
	}
	j.failover("TaskManager removed")
}
