package sim

import (
	"context"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// deployment is one submitted job: its parallelism, tasks, source positions
// and checkpoint state. A restart from a savepoint makes a new deployment; a
// failover or an in-place rescale restarts the tasks of the same one.
type deployment struct {
	jobID      string
	state      string
	timestamps map[string]int64
	startTime  time.Time
	endTime    time.Time
	// readyAt is when the job (or its restarted tasks) runs again.
	readyAt     time.Time
	failOnReady bool
	restartKind string // "", "failover", "rescale"

	par        map[string]int // vertex id → parallelism
	maxP       map[string]int
	slotsPerTM int
	tms        int
	// releaseAt is when TaskManagers left idle by an in-place scale-down
	// are released (zero: none waiting), down to releaseTo.
	releaseAt   time.Time
	releaseTo   int
	tasks       map[string][]*task            // vertex id → subtasks
	readers     map[string][][]TopicPartition // source vertex id → each reader's splits
	positions   map[TopicPartition]int64      // next offset each partition is read from
	partCarry   map[TopicPartition]float64    // fraction of a record read
	routes      map[*gedge]route              // how records cross each edge
	requirement map[string]Bounds             // adaptive scheduler's requirements

	ckpt        checkpointState
	restored    *RestoredCheckpoint
	numRestarts int
	numRescales int
	attempt     int
	attemptAt   time.Time // when the current task attempt started
	nextMeter   time.Time
	stopping    *trigger // a stop-with-savepoint in progress: sources are stopped
	// pendingRescale is a Flink 2 in-place rescale waiting for a
	// checkpoint (FLIP-461).
	pendingRescale *pendingRescale

	// On a Pool: the TaskManager (seq) of each slot the job holds, in the
	// order its slot-sharing groups fill them; whether it waits for
	// slots, since when, and how long it takes to run once it has them;
	// setup redoes what depends on the parallelism (deploy).
	slotTM    []int
	waiting   bool
	waitSince time.Time
	waitDelay time.Duration
	setup     func()
	// failureCause is the root cause of a FAILED job, when it has one,
	// or of the last failed attempt of a job that keeps restarting.
	failureCause string
	// failedAttempts counts the attempts in a row that failed to deploy
	// (the restart strategy's backoff grows with it); netUsed caches the
	// network segments a TaskManager with n busy slots uses at the
	// deployment's parallelism (memory.go).
	failedAttempts int
	netUsed        map[int]int64
}

// task is one subtask.
type task struct {
	queue, bufCap float64
	capacity      float64 // records/s at 100 % busy, scalability included
	tm            int
	// Cumulative since the attempt started.
	in, out, srcIn                 float64
	busyMs, idleMs, softMs, hardMs float64
	mIn, mOut, mSrcIn              meter
	mIdle, mSoft, mHard            meter
	pendingRegistered              bool
}

// snapshotData is what a savepoint or checkpoint holds for the simulation:
// the source positions and each reader's splits (operator list state), and
// the key-group count each vertex was running with.
type snapshotData struct {
	id        int64
	path      string
	savepoint bool
	positions map[TopicPartition]int64
	readers   map[string][][]TopicPartition
	maxP      map[string]int
	at        time.Time
}

// Submit deploys the job, restoring from a savepoint when one is named. The
// previous deployment must be terminal.
func (j *Job) Submit(s Submission) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen++
	if r := j.run; r != nil && !terminal(r.state) {
		return fmt.Errorf("%w: job %s is %s; only a terminal job can be replaced", ErrConflict, r.jobID, r.state)
	}
	if j.reactive() && j.pool == nil {
		return fmt.Errorf("%w: reactive mode runs on a standalone cluster only: the job needs a Pool (UsePool)", ErrBadRequest)
	}
	var snap *snapshotData
	if s.SavepointPath != "" {
		snap = j.savepoints[s.SavepointPath]
		if snap == nil {
			return fmt.Errorf("%w: no savepoint at %s", ErrBadRequest, s.SavepointPath)
		}
	}
	par := map[string]int{}
	maxP := map[string]int{}
	for _, v := range j.g.vertices {
		p := v.spec.Parallelism
		if s.DefaultParallelism > 0 {
			p = s.DefaultParallelism
		}
		if o, ok := s.Overrides[v.id]; ok {
			p = o
		}
		mp := v.maxP
		if snap != nil && snap.maxP[v.id] > 0 {
			mp = snap.maxP[v.id] // key groups are fixed by the state
		}
		if p < 1 || p > mp {
			return fmt.Errorf("%w: vertex %s: parallelism %d outside [1, %d]", ErrBadRequest, v.id, p, mp)
		}
		par[v.id], maxP[v.id] = p, mp
	}
	for id := range s.Overrides {
		if j.g.byID[id] == nil && !s.AllowNonRestoredState {
			return fmt.Errorf("%w: override for unknown vertex %s", ErrBadRequest, id)
		}
	}
	jobID := s.JobID
	if jobID == "" {
		jobID = j.randomHex(16)
	}
	spt := s.SlotsPerTaskManager
	if spt < 1 {
		spt = j.spec.TaskManager.Slots
	}
	if j.pool != nil {
		if err := j.pool.claim(j, jobID); err != nil {
			return err
		}
		_, spt = j.pool.TaskManagers()
	} else if s.Memory != nil {
		j.mem = *s.Memory
	}
	r := &deployment{
		jobID: jobID, state: "INITIALIZING", timestamps: map[string]int64{"INITIALIZING": ms(j.now)},
		startTime: j.now, par: par, maxP: maxP, slotsPerTM: spt,
		positions: map[TopicPartition]int64{}, partCarry: map[TopicPartition]float64{},
	}
	r.readyAt = j.now.Add(j.spec.Restart.Time)
	if !s.Session && j.pool == nil {
		r.readyAt = r.readyAt.Add(j.spec.Restart.TaskManagerStartup)
	}
	if s.SavepointPath != "" {
		r.readyAt = r.readyAt.Add(j.restoreTime())
	}
	if j.faults[FaultRestart] > 0 {
		j.faults[FaultRestart]--
		r.failOnReady = true
	}
	if j.pool == nil {
		r.tms = max(s.TaskManagers, (r.slotsNeeded(j.g)+spt-1)/spt)
	} else {
		// The adaptive scheduler's requirements are the submitted
		// parallelism as upper bounds; reactive mode's are every
		// vertex's max parallelism (ReactiveModeUtils).
		r.requirement = map[string]Bounds{}
		for _, v := range j.g.vertices {
			upper := par[v.id]
			if j.reactive() {
				upper = maxP[v.id]
			}
			r.requirement[v.id] = Bounds{LowerBound: 1, UpperBound: upper}
		}
	}
	setup := r.startFresh
	r.ckpt.nextID = 1
	if snap != nil {
		setup = func(j *Job) { r.restoreFrom(j, snap, false) }
		r.restored = &RestoredCheckpoint{ID: snap.id, RestoreTimestamp: ms(j.now), IsSavepoint: snap.savepoint, ExternalPath: snap.path}
		r.ckpt.nextID = snap.id + 1
	}
	j.run = r
	r.deploy(j, func() { setup(j) })
	return nil
}

// TaskManagers is what the job's cluster runs now: its TaskManagers and the
// slots of each (0, 0 before the first submission; on a Pool, the pool's
// registered TaskManagers). These are what Flink
// holds, whatever an autoscaler's plan counted: a submission gets as many
// as the job's slot-sharing groups need, an in-place scale-up more, and a
// scale-down releases only TaskManagers left idle, TaskManagerTimeout after
// the job runs again.
func (j *Job) TaskManagers() (count, slotsEach int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pool != nil {
		return j.pool.TaskManagers()
	}
	if j.run == nil {
		return 0, 0
	}
	return j.run.tms, j.run.slotsPerTM
}

// Parallelism is the current deployment's parallelism per vertex id, as
// View reports it (nil before the first submission), without rendering a
// view.
func (j *Job) Parallelism() map[string]int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.run == nil {
		return nil
	}
	return maps.Clone(j.run.par)
}

// restoreTime is how long loading the state takes on a restart.
func (j *Job) restoreTime() time.Duration {
	if t := j.spec.Restart.RestoreBytesPerSecond; t > 0 {
		return time.Duration(float64(j.stateSize()) / t * float64(time.Second))
	}
	return 0
}

func terminal(state string) bool {
	return state == "FINISHED" || state == "CANCELED" || state == "FAILED"
}

// slotsNeeded is Σ over slot-sharing groups of the widest vertex.
func (r *deployment) slotsNeeded(g *graph) int {
	widest := map[string]int{}
	for _, v := range g.vertices {
		widest[v.group] = max(widest[v.group], r.par[v.id])
	}
	n := 0
	for _, w := range widest {
		n += w
	}
	return n
}

// startFresh assigns partitions as the KafkaSource enumerator does on a
// fresh start and reads from the group's committed offsets (else the
// earliest), as OffsetsInitializer.committedOffsets(EARLIEST) does.
func (r *deployment) startFresh(j *Job) {
	committed, err := j.kafka.Committed(context.Background(), j.spec.ConsumerGroup)
	if err != nil {
		j.err = fmt.Errorf("reading committed offsets: %w", err)
	}
	r.readers = map[string][][]TopicPartition{}
	for _, v := range j.g.vertices {
		if !v.isSource() {
			continue
		}
		var tps []TopicPartition
		for _, t := range v.topics {
			tps = append(tps, j.tps[t]...)
		}
		for _, tp := range tps {
			r.positions[tp] = committed[tp]
		}
		readers := assign.FreshAssignment(toAssign(tps), r.par[v.id])
		r.readers[v.id] = make([][]TopicPartition, len(readers))
		for i, rd := range readers {
			r.readers[v.id][i] = fromAssign(rd)
		}
	}
}

// restoreFrom takes source positions from a snapshot and spreads each
// source's splits over its new readers with the round-robin restore rule.
func (r *deployment) restoreFrom(j *Job, snap *snapshotData, replay bool) {
	r.readers = map[string][][]TopicPartition{}
	for _, v := range j.g.vertices {
		if !v.isSource() {
			continue
		}
		if len(snap.readers[v.id]) == r.par[v.id] {
			// Same parallelism: each subtask gets its own state back.
			r.readers[v.id] = append([][]TopicPartition(nil), snap.readers[v.id]...)
			continue
		}
		old := make([][]assign.TopicPartition, len(snap.readers[v.id]))
		for i, rd := range snap.readers[v.id] {
			old[i] = toAssign(rd)
		}
		readers := assign.RestoreAssignment(old, r.par[v.id])
		r.readers[v.id] = make([][]TopicPartition, len(readers))
		for i, rd := range readers {
			r.readers[v.id][i] = fromAssign(rd)
		}
	}
	for tp, pos := range snap.positions {
		if cur, ok := r.positions[tp]; replay && ok && cur > pos {
			j.reprocessed += cur - pos
		}
		r.positions[tp] = pos
	}
	r.partCarry = map[TopicPartition]float64{}
}

// newTasks creates the subtasks of every vertex (counters start at zero,
// buffers empty), places them in slots and TaskManagers, and prepares the
// routes between them: the tasks of a new attempt (deploy).
func (r *deployment) newTasks(j *Job) {
	r.attemptAt = j.now
	r.nextMeter = j.now.Add(meterUpdateSeconds * time.Second)
	r.tasks = map[string][]*task{}
	r.netUsed = nil
	// Slot-sharing groups take consecutive slot ranges in order of first
	// appearance; subtask k of a vertex sits in slot base+k of its group.
	base, next := map[string]int{}, 0
	for _, v := range j.g.vertices {
		if _, ok := base[v.group]; !ok {
			base[v.group] = next
			w := 0
			for _, u := range j.g.vertices {
				if u.group == v.group {
					w = max(w, r.par[u.id])
				}
			}
			next += w
		}
	}
	for _, v := range j.g.vertices {
		p := r.par[v.id]
		c := v.spec.Capacity / (1 + v.spec.USL.Sigma*float64(p-1) + v.spec.USL.Kappa*float64(p)*float64(p-1))
		c *= math.Min(1, j.spec.TaskManager.CPU/float64(r.slotsPerTM)) // slots share the cores
		ts := make([]*task, p)
		for k := range ts {
			slot := base[v.group] + k
			tm := slot / r.slotsPerTM
			if j.pool != nil {
				tm = -1 // no slot yet: waiting for one
				if slot < len(r.slotTM) {
					tm = r.slotTM[slot]
				}
			}
			ts[k] = &task{capacity: c, bufCap: j.spec.BufferSeconds * c, tm: tm}
		}
		r.tasks[v.id] = ts
	}
	r.routes = map[*gedge]route{}
	for _, v := range j.g.vertices {
		for _, e := range v.ins {
			r.routes[e] = makeRoute(e, r.par[e.from.id], r.par[v.id])
		}
	}
	if j.spec.RecordBytes > 0 {
		for _, v := range j.g.vertices {
			for k, t := range r.tasks[v.id] {
				t.bufCap = r.networkBuffers(v, k) * networkSegmentBytes / j.spec.RecordBytes
			}
		}
	}
	if r.requirement == nil {
		r.requirement = map[string]Bounds{}
		for _, v := range j.g.vertices {
			r.requirement[v.id] = Bounds{LowerBound: 1, UpperBound: r.par[v.id]}
		}
	}
}

// transitions moves the deployment through its states as time passes.
func (r *deployment) transitions(j *Job) {
	if r.state == "INITIALIZING" && !j.now.Before(r.startTime.Add(time.Second)) {
		r.setState(j, "CREATED")
	}
	if r.waiting && !terminal(r.state) {
		r.waitForSlots(j)
	}
	if (r.state == "CREATED" || r.state == "RESTARTING") && !r.waiting && !j.now.Before(r.readyAt) {
		if r.failOnReady {
			r.failOnReady = false
			r.setState(j, "FAILED")
			r.endTime = j.now
			return
		}
		if cause := j.networkFailure(r); cause != "" {
			r.failAttempt(j, cause)
			return
		}
		r.failedAttempts, r.failureCause = 0, ""
		r.setState(j, "RUNNING")
		r.startMeters(j)
		r.restartKind = ""
		if r.releaseTo > 0 {
			r.releaseAt = j.now.Add(TaskManagerTimeout)
		}
		if r.ckpt.nextAt.IsZero() || r.ckpt.nextAt.Before(j.now) {
			r.ckpt.nextAt = j.now.Add(j.spec.Checkpoints.Interval)
		}
	}
	if !r.releaseAt.IsZero() && !j.now.Before(r.releaseAt) {
		r.tms = max(r.releaseTo, (r.slotsNeeded(j.g)+r.slotsPerTM-1)/r.slotsPerTM)
		r.releaseAt, r.releaseTo = time.Time{}, 0
	}
	r.progressTriggers(j)
	r.triggerRescale(j)
	r.scaleUpToPool(j)
}

// setState enters a job status; a job that ends gives its slots back to
// its pool.
func (r *deployment) setState(j *Job, s string) {
	r.state = s
	r.timestamps[s] = ms(j.now)
	if terminal(s) && j.pool != nil {
		r.releaseSlots(j)
	}
}

// failover restarts the tasks from the latest completed checkpoint after a
// fault, at the same parallelism (Flink's restart strategy). On a pool the
// TaskManagers run already; the job gets what the slots left allow (the
// adaptive scheduler) or waits for the slots its parallelism needs (the
// default scheduler).
func (j *Job) failover(cause string) {
	r := j.run
	r.numRestarts++
	r.setState(j, "RESTARTING")
	r.restartKind = "failover"
	r.pendingRescale = nil
	startup := j.spec.Restart.TaskManagerStartup
	if j.pool != nil {
		startup = 0
	}
	r.readyAt = j.now.Add(j.spec.Restart.Time + startup + j.restoreTime())
	r.deploy(j, func() { r.rewind(j) })
	_ = cause
}

// rewind moves the sources back to the latest completed checkpoint (or the
// snapshot the job was restored from); buffered records are dropped and will
// be read again.
func (r *deployment) rewind(j *Job) {
	snap := r.ckpt.lastCompleted
	if snap == nil && r.restored != nil {
		snap = j.savepoints[r.restored.ExternalPath]
	}
	if snap == nil {
		committed, _ := j.kafka.Committed(context.Background(), j.spec.ConsumerGroup)
		snap = &snapshotData{positions: map[TopicPartition]int64{}, readers: r.readers, maxP: r.maxP}
		for tp := range r.positions {
			snap.positions[tp] = committed[tp]
		}
	}
	r.restoreFrom(j, snap, true)
	r.ckpt.abort(j, "The job is restarting.")
}
