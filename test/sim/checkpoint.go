package sim

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// historySize is web.checkpoints.history's default.
const historySize = 10

// checkpointState is a deployment's checkpoint coordinator.
type checkpointState struct {
	nextAt                   time.Time
	nextID                   int64
	pending                  []*pendingCheckpoint
	history                  []CheckpointStat // newest first
	completed, failed, total int
	lastCompleted            *snapshotData
	latestCompleted          *CheckpointStat
	latestSavepoint          *CheckpointStat
	latestFailed             *CheckpointStat
	maxBp                    float64 // the most backpressured subtask's share, last step
}

type pendingCheckpoint struct {
	stat     CheckpointStat
	snap     *snapshotData
	doneAt   time.Time
	failWith string // set: fails at doneAt with this message
	trigger  *trigger
}

// trigger is a savepoint request and its status.
type trigger struct {
	id      string
	jobID   string
	req     SavepointRequest
	status  SavepointStatus
	pending *pendingCheckpoint
}

// checkpointDuration predicts how long a checkpoint takes now: a base,
// the state written at the storage throughput, the time its barrier takes
// to pass the records queued ahead of it, and the alignment delay that
// alignmentFactor adds under backpressure.
func (j *Job) checkpointDuration() time.Duration {
	c := j.spec.Checkpoints
	d := c.Base
	if c.Throughput > 0 {
		state := 0.0
		for _, v := range j.g.vertices {
			state += v.spec.StateBytes
		}
		d += time.Duration(state / c.Throughput * float64(time.Second))
	}
	d += j.barrierDelay()
	d += time.Duration(c.AlignmentFactor * j.run.ckpt.maxBp * float64(c.Interval))
	return d
}

// barrierDelay is how long a checkpoint barrier takes to reach the sinks:
// an aligned barrier never overtakes records, so at each vertex it waits
// for the records queued ahead of it, its fullest subtask's queue at that
// subtask's capacity, after the slowest of its inputs' barriers. (The
// real-Flink testbed's fidelity run measured checkpoints of 7 to 13 s
// behind a saturated vertex's in-flight records, where the simulator
// said 100 ms.)
func (j *Job) barrierDelay() time.Duration {
	r := j.run
	at := make(map[*gvertex]float64, len(j.g.vertices))
	last := 0.0
	for _, v := range j.g.vertices { // topological order
		t := 0.0
		for _, e := range v.ins {
			t = max(t, at[e.from])
		}
		wait := 0.0
		for _, st := range r.tasks[v.id] {
			if st.capacity > 0 {
				wait = max(wait, st.queue/st.capacity)
			}
		}
		at[v] = t + wait
		last = max(last, at[v])
	}
	return time.Duration(last * float64(time.Second))
}

func (j *Job) stateSize() int64 {
	s := 0.0
	for _, v := range j.g.vertices {
		s += v.spec.StateBytes
	}
	return int64(s)
}

// checkpoints triggers a periodic checkpoint when one is due and none is in
// progress (max concurrent checkpoints 1).
func (r *deployment) checkpoints(j *Job) {
	if j.now.Before(r.ckpt.nextAt) {
		return
	}
	for _, p := range r.ckpt.pending {
		if p.trigger == nil {
			return
		}
	}
	p := r.startCheckpoint(j, "CHECKPOINT", nil)
	if d := j.checkpointDuration(); d > j.spec.Checkpoints.Timeout {
		p.doneAt = p.doneAt.Add(j.spec.Checkpoints.Timeout - d)
		p.failWith = "Checkpoint expired before completing."
	}
	r.ckpt.nextAt = j.now.Add(j.spec.Checkpoints.Interval)
}

// startCheckpoint snapshots the source positions at the barrier and
// schedules the completion.
func (r *deployment) startCheckpoint(j *Job, kind string, t *trigger) *pendingCheckpoint {
	id := r.ckpt.nextID
	r.ckpt.nextID++
	r.ckpt.total++
	snap := &snapshotData{id: id, savepoint: kind != "CHECKPOINT", positions: map[TopicPartition]int64{},
		readers: map[string][][]TopicPartition{}, maxP: r.maxP, at: j.now}
	for tp, pos := range r.positions {
		snap.positions[tp] = pos
	}
	for id, rs := range r.readers {
		snap.readers[id] = append([][]TopicPartition(nil), rs...)
	}
	subtasks := 0
	for _, ts := range r.tasks {
		subtasks += len(ts)
	}
	size := j.stateSize()
	p := &pendingCheckpoint{
		stat: CheckpointStat{ID: id, Status: "IN_PROGRESS", IsSavepoint: kind != "CHECKPOINT", TriggerTimestamp: ms(j.now),
			StateSizeBytes: size, CheckpointedSize: size, NumSubtasks: subtasks, CheckpointType: kind},
		snap: snap, doneAt: j.now.Add(j.checkpointDuration()), trigger: t,
	}
	// Checkpoints are full, as the hashmap state backend (Flink's default)
	// writes them: the checkpointed size, Flink's lastCheckpointSize, is
	// the state size (the testbed measured 8.01 MiB for 8 MiB of keyed
	// state, where the simulator said a tenth).
	if kind != "CHECKPOINT" {
		if j.faults[FaultSavepoint] > 0 {
			j.faults[FaultSavepoint]--
			p.failWith = "Checkpoint was declined (task failure)."
		}
	}
	r.ckpt.pending = append(r.ckpt.pending, p)
	return p
}

// progressTriggers completes or fails pending checkpoints whose time has
// come. A stop-with-savepoint also waits for the buffers to drain: its
// barrier passes every record read before it.
func (r *deployment) progressTriggers(j *Job) {
	var still []*pendingCheckpoint
	for _, p := range r.ckpt.pending {
		if j.now.Before(p.doneAt) || (p.failWith == "" && p.trigger != nil && p.trigger.req.Stop && r.inFlight() > 1e-6) {
			still = append(still, p)
			continue
		}
		if p.failWith != "" {
			r.failCheckpoint(j, p, p.failWith)
			continue
		}
		r.completeCheckpoint(j, p)
	}
	r.ckpt.pending = still
	if terminal(r.state) {
		r.ckpt.abort(j, "The job has finished.")
	}
}

func (r *deployment) inFlight() float64 {
	s := 0.0
	for _, ts := range r.tasks {
		for _, t := range ts {
			s += t.queue
		}
	}
	return s
}

func (r *deployment) completeCheckpoint(j *Job, p *pendingCheckpoint) {
	st := p.stat
	st.Status = "COMPLETED"
	st.LatestAckTimestamp = ms(j.now)
	st.EndToEndDurationMs = j.now.Sub(time.UnixMilli(st.TriggerTimestamp)).Milliseconds()
	st.NumAcknowledged = st.NumSubtasks
	r.ckpt.completed++
	if p.trigger == nil {
		st.ExternalPath = fmt.Sprintf("s3://flink/checkpoints/%s/chk-%d", r.jobID, st.ID)
		r.ckpt.lastCompleted = p.snap
		r.commit(j, p.snap)
		if pr := r.pendingRescale; pr != nil && !j.now.Before(pr.earliest) {
			pr.checkpointed = true
		}
		r.record(st)
		r.ckpt.latestCompleted = &st
		return
	}
	t := p.trigger
	dir := strings.TrimSuffix(t.req.TargetDirectory, "/")
	if dir == "" {
		dir = "s3://flink/savepoints"
	}
	st.ExternalPath = fmt.Sprintf("%s/savepoint-%s-%s", dir, r.jobID[:6], j.randomHex(6))
	p.snap.path = st.ExternalPath
	j.savepoints[st.ExternalPath] = p.snap
	r.record(st)
	r.ckpt.latestSavepoint = &st
	r.ckpt.latestCompleted = &st
	t.status = SavepointStatus{Status: "COMPLETED", Location: st.ExternalPath}
	switch {
	case t.req.Stop:
		// A synchronous savepoint notifies completion, so the sources
		// commit; then the job finishes.
		r.commit(j, p.snap)
		r.stopping = nil
		r.setState(j, "FINISHED")
		r.endTime = j.now
	case t.req.Cancel:
		r.setState(j, "CANCELED")
		r.endTime = j.now
	}
}

func (r *deployment) failCheckpoint(j *Job, p *pendingCheckpoint, msg string) {
	st := p.stat
	st.Status = "FAILED"
	st.FailureTimestamp = ms(j.now)
	st.FailureMessage = msg
	st.EndToEndDurationMs = j.now.Sub(time.UnixMilli(st.TriggerTimestamp)).Milliseconds()
	r.ckpt.failed++
	r.record(st)
	r.ckpt.latestFailed = &st
	if t := p.trigger; t != nil {
		t.status = SavepointStatus{Status: "COMPLETED", FailureClass: "java.util.concurrent.CompletionException",
			FailureCause: "org.apache.flink.runtime.checkpoint.CheckpointException: " + msg}
		if t.req.Stop {
			r.stopping = nil // the sources resume: the job keeps running
		}
	}
}

// abort fails every pending checkpoint (the job stops or restarts).
func (c *checkpointState) abort(j *Job, msg string) {
	for _, p := range c.pending {
		j.run.failCheckpoint(j, p, msg)
	}
	c.pending = nil
}

func (r *deployment) record(st CheckpointStat) {
	r.ckpt.history = append([]CheckpointStat{st}, r.ckpt.history...)
	if len(r.ckpt.history) > historySize {
		r.ckpt.history = r.ckpt.history[:historySize]
	}
}

// commit writes the snapshot's source positions to the consumer group, as
// KafkaSource does when a checkpoint completes.
func (r *deployment) commit(j *Job, snap *snapshotData) {
	if len(snap.positions) == 0 {
		return
	}
	j.flush() // a committed offset never passes the brokers' end offset
	if err := j.kafka.Commit(context.Background(), j.spec.ConsumerGroup, snap.positions); err != nil && j.err == nil {
		j.err = fmt.Errorf("committing offsets of checkpoint %d: %w", snap.id, err)
		return
	}
	// The brokers may drop what every reader is past: it keeps a long run's
	// memory bounded (end and committed offsets are untouched).
	if err := j.kafka.Trim(context.Background(), snap.positions); err != nil && j.err == nil {
		j.err = fmt.Errorf("trimming the topics below checkpoint %d: %w", snap.id, err)
	}
}

// TriggerSavepoint implements Cluster.
func (j *Job) TriggerSavepoint(req SavepointRequest) (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen++
	r, err := j.job(req.JobID)
	if err != nil {
		return "", err
	}
	if req.TriggerID != "" {
		if t, ok := j.triggers[req.TriggerID]; ok {
			return t.id, nil
		}
	}
	if r.state != "RUNNING" {
		return "", fmt.Errorf("%w: job %s is %s", ErrNotRunning, r.jobID, r.state)
	}
	if r.stopping != nil {
		return "", fmt.Errorf("%w: job %s is already stopping with a savepoint", ErrConflict, r.jobID)
	}
	id := req.TriggerID
	if id == "" {
		id = j.randomHex(16)
	}
	t := &trigger{id: id, jobID: r.jobID, req: req, status: SavepointStatus{Status: "IN_PROGRESS"}}
	kind := "SAVEPOINT"
	if req.Stop {
		kind = "SYNC_SAVEPOINT"
		r.stopping = t
	}
	t.pending = r.startCheckpoint(j, kind, t)
	j.triggers[id] = t
	return id, nil
}

// SavepointStatus implements Cluster.
func (j *Job) SavepointStatus(jobID, triggerID string) (SavepointStatus, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.triggers[triggerID]
	if !ok || t.jobID != jobID {
		return SavepointStatus{}, fmt.Errorf("%w: there is no savepoint operation with triggerId=%s for job %s", ErrNotFound, triggerID, jobID)
	}
	return t.status, nil
}

// job returns the deployment with the given id.
func (j *Job) job(jobID string) (*deployment, error) {
	if j.run == nil || j.run.jobID != jobID {
		return nil, fmt.Errorf("%w: Job %s not found", ErrNotFound, jobID)
	}
	return j.run, nil
}
