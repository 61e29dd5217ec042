// Package promreporter renders a sim.View the way Flink's PrometheusReporter
// (flink-metrics-prometheus, on Prometheus simpleclient 0.8.1, text format
// 0.0.4) serves it from each process: the JobManager and every
// TaskManager.
//
// What is faithful:
//
//   - Names: "flink_" + logical scope joined with '_' + "_" + the metric name
//     with every character outside [a-zA-Z0-9:_] replaced by '_'. User groups
//     add their name to the scope; a key/value group (addGroup(k, v)) adds only
//     k and the label k="v" (KafkaSourceReader.topic.<t>.partition.<p>).
//   - HELP "<metric name> (scope: <logical scope>)", TYPE gauge for Counter,
//     Gauge and Meter alike (a Meter exports its rate, a Boolean 1.0/0.0).
//   - Labels: all scope variables without '<' '>', values sanitized like
//     names, in java.util.HashMap iteration order (see hashmap.go). The
//     orders come out as:
//     task: job_id, task_id, task_attempt_id, host, task_name,
//     task_attempt_num, job_name, tm_id, subtask_index;
//     operator: job_id, task_id, task_attempt_id, host, operator_id,
//     operator_name, task_name, task_attempt_num, job_name, tm_id,
//     subtask_index;
//     KafkaSourceReader topic/partition: task_attempt_id, host,
//     task_attempt_num, tm_id, partition, topic, job_id, task_id,
//     operator_id, operator_name, task_name, job_name, subtask_index;
//     jobmanager_job: job_id, host, job_name; taskmanager: host, tm_id;
//     jobmanager: host.
//     The first three are the reference's example orders. Its jobmanager_job
//     lines show job_name, host, job_id, which is what a 4-bucket table would
//     give; AbstractMetricGroup's 16-bucket HashMap gives job_id, host,
//     job_name, and that is what is rendered.
//   - Samples: simpleclient's write004, with a comma after the last label
//     ({a="x",b="y",}) and values in Java's Double.toString ("734.0",
//     "1.2345678E7", "NaN", "+Inf").
//   - task_attempt_id is <executionGraphId>_<vertexId>_<subtask>_<attempt>;
//     the execution graph id is derived from the job id (ExecutionGraphID).
//   - Values typed long in Flink (counters, Gauge<Long>) go through a Java
//     (long) cast: fractions are truncated, NaN becomes 0.
//   - Registration follows the processes' lifecycles: task and operator
//     metrics only for vertices whose tasks exist (not CREATED, SCHEDULED,
//     FINISHED, CANCELED or FAILED) of a job that has tasks; pendingRecords
//     only once registered (non-nil); jobmanager_job metrics only while the
//     job is not globally terminal (its JobMaster is gone after).
//   - lastCheckpointExternalPath is a Gauge<String>, which the reporter
//     exports as 0.0.
//
// What is synthetic or chosen:
//
//   - Family order is arbitrary in Flink (a HashSet of collectors); here it
//     is the order of first registration: TaskManager gauges, then per
//     subtask (vertices in topological order, subtasks by index) the task
//     metrics, then the source operator's. Samples follow the same order.
//   - The TaskManager Status.JVM gauges are not in sim.View; they are
//     derived from it (see taskManagerGauges).
//   - isBackPressured is derived: backPressuredTimeMsPerSecond > 0.
//   - KafkaSourceReader.KafkaConsumer.records-lag-max is not rendered: the
//     View has no partition end offsets to derive it from.
package promreporter

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// ContentType is what simpleclient 0.8.1's HTTPServer answers with.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// JobManagerProcess is the Handler process name of the JobManager.
const JobManagerProcess = "jobmanager"

// TaskManager renders the exposition of the TaskManager tmID: its
// Status.JVM gauges (when the View lists the TaskManager) and the task and
// operator metrics of the subtasks deployed on it.
func TaskManager(v sim.View, tmID string) []byte {
	var b bytes.Buffer
	taskManagerExposition(v, tmID).write(&b, nil)
	return b.Bytes()
}

// JobManager renders the JobManager's exposition: the jobmanager scope
// (slots, TaskManagers, running jobs) and the job's jobmanager_job scope
// (checkpoints, restarts, rescales, uptime) while the job is not terminal.
func JobManager(v sim.View) []byte {
	var b bytes.Buffer
	jobManagerExposition(v).write(&b, nil)
	return b.Bytes()
}

// taskMetricsRegistered tells whether a vertex's tasks exist on the
// TaskManagers (a Task registers its metric group when it is deployed and
// closes it when it ends); an empty status counts as running.
func taskMetricsRegistered(status string) bool {
	switch status {
	case "CREATED", "SCHEDULED", "FINISHED", "CANCELED", "FAILED":
		return false
	}
	return true
}

// jobGloballyTerminal: the JobMaster and its job metric group are gone.
func jobGloballyTerminal(state string) bool {
	switch state {
	case "FINISHED", "CANCELED", "FAILED", "SUSPENDED":
		return true
	}
	return false
}

// jobHasTasks: no tasks exist before scheduling or after the end.
func jobHasTasks(state string) bool {
	switch state {
	case "INITIALIZING", "CREATED":
		return false
	}
	return !jobGloballyTerminal(state)
}

// ExecutionGraphID is the stable, simulated ExecutionGraphID (32 hex
// characters) of a job: the first half of task_attempt_id.
func ExecutionGraphID(jobID string) string {
	sum := sha256.Sum256([]byte("flinkscale/sim/execution-graph/" + jobID))
	return hex.EncodeToString(sum[:16])
}

// AttemptID is ExecutionAttemptID.toString():
// <executionGraphId>_<vertexId>_<subtaskIndex>_<attemptNumber>.
func AttemptID(jobID, vertexID string, subtask, attempt int) string {
	return ExecutionGraphID(jobID) + "_" + vertexID + "_" + strconv.Itoa(subtask) + "_" + strconv.Itoa(attempt)
}

func findTaskManager(v sim.View, tmID string) (sim.TaskManagerView, bool) {
	for _, tm := range v.TaskManagers {
		if tm.ID == tmID {
			return tm, true
		}
	}
	return sim.TaskManagerView{}, false
}

// runsOn reports whether tmID is a process of the View: listed as a
// TaskManager or hosting a subtask.
func runsOn(v sim.View, tmID string) bool {
	if _, ok := findTaskManager(v, tmID); ok {
		return true
	}
	for _, vx := range v.Job.Vertices {
		for _, s := range vx.Subtasks {
			if s.TaskManagerID == tmID {
				return true
			}
		}
	}
	return false
}

func taskManagerExposition(v sim.View, tmID string) *exposition {
	e := newExposition()
	tm, listed := findTaskManager(v, tmID)

	type placed struct {
		vx *sim.VertexView
		st *sim.SubtaskView
	}
	var subtasks []placed
	if jobHasTasks(v.Job.State) {
		for i := range v.Job.Vertices {
			vx := &v.Job.Vertices[i]
			if !taskMetricsRegistered(vx.Status) {
				continue
			}
			for j := range vx.Subtasks {
				if vx.Subtasks[j].TaskManagerID == tmID {
					subtasks = append(subtasks, placed{vx, &vx.Subtasks[j]})
				}
			}
		}
	}

	if listed {
		busy := make([]float64, 0, len(subtasks))
		for _, p := range subtasks {
			busy = append(busy, p.st.BusyTimeMsPerSecond)
		}
		tmVars := childVars(nil, "<host>", tm.Host, "<tm_id>", tmID)
		g := taskManagerGauges(tm, busy)
		e.add(scopeTaskManager+"_Status_JVM_CPU", "Load", tmVars, g.cpuLoad)
		e.add(scopeTaskManager+"_Status_JVM_Memory_Heap", "Used", tmVars, g.heapUsed)
		e.add(scopeTaskManager+"_Status_JVM_Memory_Heap", "Committed", tmVars, g.heapCommitted)
		e.add(scopeTaskManager+"_Status_JVM_Memory_Heap", "Max", tmVars, g.heapMax)
	}

	for _, p := range subtasks {
		host := p.st.Host
		if host == "" {
			host = tm.Host
		}
		tmVars := childVars(nil, "<host>", host, "<tm_id>", tmID)
		jobVars := childVars(tmVars, "<job_id>", v.Job.ID, "<job_name>", v.Job.Name)
		addSubtask(e, v.Job.ID, jobVars, p.vx, p.st)
	}
	return e
}

// addSubtask registers one subtask's task metrics and, for a source, its
// head operator's metrics.
func addSubtask(e *exposition, jobID string, jobVars *varMap, vx *sim.VertexView, s *sim.SubtaskView) {
	task := childVars(jobVars,
		"<task_id>", vx.ID,
		"<task_name>", vx.Name,
		"<task_attempt_id>", AttemptID(jobID, vx.ID, s.Index, s.Attempt),
		"<task_attempt_num>", strconv.Itoa(s.Attempt),
		"<subtask_index>", strconv.Itoa(s.Index))

	// TaskIOMetricGroup: counters and meters, then the time gauges.
	e.add(scopeTask, "numRecordsIn", task, javaLong(s.NumRecordsIn))
	e.add(scopeTask, "numRecordsOut", task, javaLong(s.NumRecordsOut))
	e.add(scopeTask, "numRecordsInPerSecond", task, s.NumRecordsInPerSecond)
	e.add(scopeTask, "numRecordsOutPerSecond", task, s.NumRecordsOutPerSecond)
	e.add(scopeTask, "busyTimeMsPerSecond", task, s.BusyTimeMsPerSecond) // Gauge<Double>
	e.add(scopeTask, "idleTimeMsPerSecond", task, javaLong(s.IdleTimeMsPerSecond))
	e.add(scopeTask, "backPressuredTimeMsPerSecond", task, javaLong(s.BackPressuredTimeMsPerSecond))
	e.add(scopeTask, "softBackPressuredTimeMsPerSecond", task, javaLong(s.SoftBackPressuredTimeMsPerSecond))
	e.add(scopeTask, "hardBackPressuredTimeMsPerSecond", task, javaLong(s.HardBackPressuredTimeMsPerSecond))
	e.add(scopeTask, "accumulateBusyTimeMs", task, s.AccumulatedBusyTimeMs) // Double: NaN when disabled
	e.add(scopeTask, "accumulateIdleTimeMs", task, javaLong(s.AccumulatedIdleTimeMs))
	e.add(scopeTask, "accumulateBackPressuredTimeMs", task, javaLong(s.AccumulatedBackPressuredMs))
	e.add(scopeTask, "isBackPressured", task, boolGauge(javaLong(s.BackPressuredTimeMsPerSecond) > 0))

	if !vx.IsSource {
		return
	}
	op := childVars(task,
		"<operator_id>", vx.ID, // the head operator's id is the vertex id
		"<operator_name>", truncateOperatorName(headOperatorName(vx)))
	e.add(scopeOperator, "numRecordsIn", op, javaLong(s.SourceNumRecordsIn))
	e.add(scopeOperator, "numRecordsOut", op, javaLong(s.SourceNumRecordsOut))
	e.add(scopeOperator, "numRecordsInPerSecond", op, s.SourceNumRecordsInPerSecond)
	e.add(scopeOperator, "numRecordsOutPerSecond", op, s.SourceNumRecordsOutPerSecond)
	if s.PendingRecords != nil { // registered lazily, after the first fetch
		e.add(scopeOperator, "pendingRecords", op, javaLong(*s.PendingRecords))
	}

	// KafkaSourceReaderMetrics: addGroup("KafkaSourceReader")
	// .addGroup("topic", t).addGroup("partition", p); each group copies its
	// parent's variables into a new map, which can change their order.
	reader := childVars(op)
	const scopeKafka = scopeOperator + "_KafkaSourceReader_topic_partition"
	for _, p := range s.Partitions {
		topic := childVars(childVars(reader), "<topic>", p.Topic)
		part := childVars(childVars(topic), "<partition>", strconv.Itoa(p.Partition))
		e.add(scopeKafka, "currentOffset", part, javaLong(float64(p.CurrentOffset)))
		e.add(scopeKafka, "committedOffset", part, javaLong(float64(p.CommittedOffset)))
	}
}

// headOperatorName is the View's OperatorName, or else the vertex name up to
// the first chaining arrow.
func headOperatorName(vx *sim.VertexView) string {
	if vx.OperatorName != "" {
		return vx.OperatorName
	}
	name, _, _ := strings.Cut(vx.Name, " -> ")
	return name
}

// jvmGauges are the synthetic TaskManager Status.JVM values.
type jvmGauges struct {
	cpuLoad, heapUsed, heapCommitted, heapMax float64
}

// defaultHeapMax is used when the View gives no heap size: 512 MiB.
const defaultHeapMax = 512 << 20

// taskManagerGauges derives plausible Status.JVM gauges from the View (none
// of them is simulated):
//
//   - CPU.Load (OperatingSystemMXBean.getProcessCpuLoad, 0..1 of the cores
//     the JVM sees): 0.02 cores of framework overhead plus one core per
//     task thread at its busy fraction, divided by CPUCores (or the slot
//     count, or 1), capped at 1;
//   - Memory.Heap.Max: the View's FreeMemory, which /taskmanagers fills with
//     the maximum JVM heap (HardwareDescription), or 512 MiB;
//   - Memory.Heap.Used: Max × (0.2 + 0.5 × CPU load), a long;
//   - Memory.Heap.Committed: Max (a fixed-size heap, -Xms = -Xmx).
func taskManagerGauges(tm sim.TaskManagerView, busyMsPerSecond []float64) jvmGauges {
	cores := tm.CPUCores
	if !(cores > 0) || math.IsInf(cores, 0) {
		cores = float64(tm.SlotsNumber)
	}
	if cores <= 0 {
		cores = 1
	}
	used := 0.02
	for _, b := range busyMsPerSecond {
		if b > 0 { // NaN (not measured) counts as idle
			used += min(b, 1000) / 1000
		}
	}
	load := min(used/cores, 1)
	heapMax := float64(tm.FreeMemory)
	if heapMax <= 0 {
		heapMax = defaultHeapMax
	}
	return jvmGauges{
		cpuLoad:       load,
		heapUsed:      javaLong(heapMax * (0.2 + 0.5*load)),
		heapCommitted: heapMax,
		heapMax:       heapMax,
	}
}

func jobManagerExposition(v sim.View) *exposition {
	e := newExposition()
	jm := childVars(nil, "<host>", v.JobManagerHost)

	slots, free := 0, 0
	for _, tm := range v.TaskManagers {
		slots += tm.SlotsNumber
		free += tm.FreeSlots
	}
	running := v.Job.ID != "" && !jobGloballyTerminal(v.Job.State)
	// ResourceManager / SlotManager and Dispatcher gauges.
	e.add(scopeJobManager, "taskSlotsTotal", jm, float64(slots))
	e.add(scopeJobManager, "taskSlotsAvailable", jm, float64(free))
	e.add(scopeJobManager, "numRegisteredTaskManagers", jm, float64(len(v.TaskManagers)))
	e.add(scopeJobManager, "numRunningJobs", jm, boolGauge(running))
	if !running {
		return e
	}

	j := v.Job
	job := childVars(jm, "<job_id>", j.ID, "<job_name>", j.Name)
	e.add(scopeJMJob, "uptime", job, float64(uptime(v)))
	e.add(scopeJMJob, "numRestarts", job, float64(j.NumRestarts))
	e.add(scopeJMJob, "numRescales", job, float64(j.NumRescales))

	// CheckpointStatsTracker's gauges; -1 (and "n/a") until known.
	c := j.Checkpoints
	e.add(scopeJMJob, "totalNumberOfCheckpoints", job, float64(c.Total))
	e.add(scopeJMJob, "numberOfInProgressCheckpoints", job, float64(c.InProgress))
	e.add(scopeJMJob, "numberOfCompletedCheckpoints", job, float64(c.Completed))
	e.add(scopeJMJob, "numberOfFailedCheckpoints", job, float64(c.Failed))
	restore := int64(-1)
	if c.LatestRestored != nil {
		restore = c.LatestRestored.RestoreTimestamp
	}
	e.add(scopeJMJob, "lastCheckpointRestoreTimestamp", job, float64(restore))
	size, fullSize, duration := int64(-1), int64(-1), int64(-1)
	if lc := c.LatestCompleted; lc != nil {
		size, fullSize, duration = lc.CheckpointedSize, lc.StateSizeBytes, lc.EndToEndDurationMs
	}
	e.add(scopeJMJob, "lastCheckpointSize", job, float64(size))
	e.add(scopeJMJob, "lastCheckpointFullSize", job, float64(fullSize))
	e.add(scopeJMJob, "lastCheckpointDuration", job, float64(duration))
	// A Gauge<String>: the reporter exports non-numeric values as 0.
	e.add(scopeJMJob, "lastCheckpointExternalPath", job, 0)
	return e
}

// uptime is Flink's UpTimeGauge: ms since the job entered RUNNING while it
// runs, 0 in other non-terminal states.
func uptime(v sim.View) int64 {
	if v.Job.State != "RUNNING" {
		return 0
	}
	since, ok := v.Job.Timestamps["RUNNING"]
	if !ok {
		since = v.Job.StartTime
	}
	return max(v.Now.UnixMilli()-since, 0)
}
