package sim

import (
	"fmt"
	"math"
	"strings"
)

var (
	_ Cluster  = (*Job)(nil)
	_ Deployer = (*Job)(nil)
)

// View implements Cluster: a consistent copy of the cluster now.
func (j *Job) View() View {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := View{
		Now: j.now, FlinkVersion: j.spec.FlinkVersion, FlinkCommit: "f1e2d3c", Scheduler: j.spec.Scheduler,
		JobManagerHost: j.clusterName() + "-jobmanager",
		JobManagerConfig: map[string]string{
			"jobmanager.scheduler":                     j.spec.Scheduler,
			"taskmanager.numberOfTaskSlots":            fmt.Sprint(j.spec.TaskManager.Slots),
			"execution.checkpointing.interval":         fmt.Sprintf("%d ms", j.spec.Checkpoints.Interval.Milliseconds()),
			"execution.checkpointing.timeout":          fmt.Sprintf("%d ms", j.spec.Checkpoints.Timeout.Milliseconds()),
			"metrics.reporter.prom.factory.class":      "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
			"metrics.reporter.prom.port":               "9249",
			"kubernetes.cluster-id":                    j.clusterName(),
			"state.savepoints.dir":                     "s3://flink/savepoints",
			"execution.checkpointing.dir":              "s3://flink/checkpoints",
			"pipeline.jobvertex-parallelism-overrides": "",
		},
	}
	if j.reactive() {
		v.JobManagerConfig["scheduler-mode"] = SchedulerModeReactive
	}
	// The cluster's configuration holds the TaskManagers' keys too.
	for k, val := range j.spec.TaskManager.FlinkConfiguration {
		v.JobManagerConfig[k] = val
	}
	if j.spec.StateBackend != "" {
		v.JobManagerConfig["state.backend.type"] = strings.ToLower(j.spec.StateBackend)
	}
	r := j.run
	if r == nil {
		v.Job = JobView{State: "INITIALIZING", Timestamps: map[string]int64{}, EndTime: -1}
		v.TaskManagers = j.poolTaskManagerViews()
		return v
	}
	if r.slotsPerTM > 0 {
		v.JobManagerConfig["taskmanager.numberOfTaskSlots"] = fmt.Sprint(r.slotsPerTM)
	}
	var overrides []string
	for _, gv := range j.g.vertices {
		overrides = append(overrides, fmt.Sprintf("%s:%d", gv.id, r.par[gv.id]))
	}
	v.JobManagerConfig["pipeline.jobvertex-parallelism-overrides"] = strings.Join(overrides, ",")
	jv := JobView{
		ID: r.jobID, Name: j.spec.Name, State: r.state, Timestamps: map[string]int64{},
		StartTime: ms(r.startTime), EndTime: -1, NumRestarts: r.numRestarts, NumRescales: r.numRescales,
		FailureCause: r.failureCause,
	}
	if !r.endTime.IsZero() {
		jv.EndTime = ms(r.endTime)
	}
	for s, t := range r.timestamps {
		jv.Timestamps[s] = t
	}
	running := r.state == "RUNNING"
	for _, gv := range j.g.vertices {
		p := r.par[gv.id]
		jv.JobParallelism = max(jv.JobParallelism, p)
		jv.MaxParallelism = max(jv.MaxParallelism, r.maxP[gv.id])
		vv := VertexView{
			ID: gv.id, Name: gv.spec.Name, OperatorName: headOperator(gv.spec.Name), Parallelism: p,
			MaxParallelism: r.maxP[gv.id], SlotSharingGroupID: groupID(gv.group), IsSource: gv.isSource(),
			Status: vertexStatus(r.state), StartTime: ms(r.attemptAt),
		}
		for _, e := range gv.ins {
			vv.Inputs = append(vv.Inputs, EdgeView{ID: e.from.id, Ship: e.ship})
		}
		if running || r.state == "FINISHED" || r.state == "CANCELED" {
			for k, t := range r.tasks[gv.id] {
				vv.Subtasks = append(vv.Subtasks, j.subtaskView(gv, k, t))
			}
		}
		jv.Vertices = append(jv.Vertices, vv)
	}
	jv.Checkpoints = r.checkpointsView()
	v.Job = jv
	if j.pool != nil {
		v.TaskManagers = j.poolTaskManagerViews()
		return v
	}
	// Slots in use: slot-sharing groups fill slots from the first
	// TaskManager on.
	need := r.slotsNeeded(j.g)
	for i := range r.tms {
		used := min(r.slotsPerTM, max(0, need-i*r.slotsPerTM))
		if r.state != "RUNNING" {
			used = 0
		}
		v.TaskManagers = append(v.TaskManagers, j.taskManagerView(i, j.taskManagerID(i), r.slotsPerTM, used))
	}
	return v
}

// poolTaskManagerViews is the registered TaskManagers of the job's pool,
// each slot a job holds in use (nil without a pool).
func (j *Job) poolTaskManagerViews() []TaskManagerView {
	if j.pool == nil {
		return nil
	}
	var out []TaskManagerView
	for _, tm := range j.pool.views() {
		v := j.taskManagerView(tm.seq, tm.id, tm.slots, len(tm.jobIDs))
		v.SlotJobIDs = tm.jobIDs
		out = append(out, v)
	}
	return out
}

func vertexStatus(jobState string) string {
	switch jobState {
	case "RUNNING":
		return "RUNNING"
	case "FINISHED":
		return "FINISHED"
	case "CANCELED", "CANCELLING":
		return "CANCELED"
	case "FAILED", "FAILING":
		return "FAILED"
	case "RESTARTING":
		return "CANCELING"
	default:
		return "CREATED"
	}
}

func (j *Job) clusterName() string {
	if j.name == "" {
		j.name = strings.ToLower(strings.NewReplacer(" ", "-", "_", "-", ".", "-").Replace(j.spec.Name))
	}
	return j.name
}

func (j *Job) taskManagerID(i int) string {
	for len(j.tmIDs) <= i {
		j.tmIDs = append(j.tmIDs, fmt.Sprintf("%s-taskmanager-1-%d", j.clusterName(), len(j.tmIDs)+1))
	}
	return j.tmIDs[i]
}

// subtaskTaskManagerID is the id of the TaskManager a subtask runs on.
func (j *Job) subtaskTaskManagerID(i int) string {
	if j.pool != nil {
		return j.pool.taskManagerID(i)
	}
	return j.taskManagerID(i)
}

func tmHost(i int) string { return fmt.Sprintf("10.244.%d.%d", 1+i/200, 10+i%200) }

func (j *Job) subtaskView(gv *gvertex, k int, t *task) SubtaskView {
	r := j.run
	s := SubtaskView{
		Index: k, Attempt: r.attempt - 1, TaskManagerID: j.subtaskTaskManagerID(t.tm), Host: tmHost(t.tm),
		IdleTimeMsPerSecond:              t.mIdle.rate,
		SoftBackPressuredTimeMsPerSecond: t.mSoft.rate,
		HardBackPressuredTimeMsPerSecond: t.mHard.rate,
		AccumulatedBusyTimeMs:            t.busyMs,
		AccumulatedIdleTimeMs:            t.idleMs,
		AccumulatedBackPressuredMs:       t.softMs + t.hardMs,
		NumRecordsIn:                     t.in,
		NumRecordsOut:                    t.out,
		NumRecordsInPerSecond:            t.mIn.rate,
		NumRecordsOutPerSecond:           t.mOut.rate,
	}
	s.BackPressuredTimeMsPerSecond = s.SoftBackPressuredTimeMsPerSecond + s.HardBackPressuredTimeMsPerSecond
	// Flink derives busy time from the idle and backpressured TimerGauges
	// (averages over up to 60 s of 5-second updates): 1000 ms/s before the
	// first update.
	s.BusyTimeMsPerSecond = 1000 - math.Min(1000, math.Max(0, s.IdleTimeMsPerSecond+s.BackPressuredTimeMsPerSecond))
	if !gv.isSource() {
		return s
	}
	s.SourceNumRecordsIn, s.SourceNumRecordsOut = t.srcIn, t.srcIn
	s.SourceNumRecordsInPerSecond, s.SourceNumRecordsOutPerSecond = t.mSrcIn.rate, t.mSrcIn.rate
	s.NumRecordsIn, s.NumRecordsInPerSecond = 0, 0 // FLIP-27: the task reads no network input
	committed := map[TopicPartition]int64{}
	if c := r.ckpt.lastCompleted; c != nil {
		committed = c.positions
	}
	pending := 0.0
	for _, tp := range r.readers[gv.id][k] {
		c, ok := committed[tp]
		if !ok {
			c = -1
		}
		s.Partitions = append(s.Partitions, PartitionView{Topic: tp.Topic, Partition: int(tp.Partition),
			CurrentOffset: r.positions[tp], CommittedOffset: c})
		pending += float64(j.end[tp] - r.positions[tp])
	}
	if t.pendingRegistered {
		s.PendingRecords = &pending
	}
	return s
}

func (r *deployment) checkpointsView() CheckpointsView {
	c := CheckpointsView{
		Total: r.ckpt.total, InProgress: len(r.ckpt.pending), Completed: r.ckpt.completed, Failed: r.ckpt.failed,
		History: append([]CheckpointStat(nil), r.ckpt.history...),
	}
	for _, p := range r.ckpt.pending {
		c.History = append([]CheckpointStat{p.stat}, c.History...)
	}
	if len(c.History) > historySize {
		c.History = c.History[:historySize]
	}
	copyStat := func(s *CheckpointStat) *CheckpointStat {
		if s == nil {
			return nil
		}
		x := *s
		return &x
	}
	c.LatestCompleted, c.LatestSavepoint, c.LatestFailed = copyStat(r.ckpt.latestCompleted), copyStat(r.ckpt.latestSavepoint), copyStat(r.ckpt.latestFailed)
	if r.restored != nil {
		c.Restored = 1
		x := *r.restored
		c.LatestRestored = &x
	}
	return c
}

// taskManagerView is TaskManager i (its host derives from i) with slots
// slots, used of them in use.
func (j *Job) taskManagerView(i int, id string, slots, used int) TaskManagerView {
	mem := j.mem.ProcessBytes
	host := tmHost(i)
	u := j.taskManagerUsage(used)
	return TaskManagerView{
		ID: id, Path: fmt.Sprintf("pekko.tcp://flink@%s:6122/user/rpc/taskmanager_0", host),
		DataPort: 6121, JMXPort: -1, TimeSinceLastHeartbeat: ms(j.now), SlotsNumber: slots, FreeSlots: slots - used,
		CPUCores: j.spec.TaskManager.CPU, PhysicalMemory: mem, FreeMemory: mem / 2, ManagedMemory: j.mem.ManagedBytes, Host: host,
		Memory: j.mem, HeapUsed: u.heapUsed, ManagedUsed: u.managedUsed, MetaspaceUsed: u.metaspaceUsed,
		GCTimeMsPerSecond: u.gcMsPerSecond, NetworkSegmentsUsed: u.segmentsUsed,
	}
}
