package flinkprom

// Query names: the keys of Templates.
const (
	// QSubtasks counts the subtasks reporting per vertex; it becomes the
	// sample's VertexSample.Parallelism (reported subtasks, see Merge) and
	// the vertex list.
	QSubtasks = "subtasks"
	// QBusyMax, QBusyAvg: busyTimeMsPerSecond over subtasks.
	QBusyMax = "busy_max"
	QBusyAvg = "busy_avg"
	// QBackPressuredMax, QBackPressuredAvg: backPressuredTimeMsPerSecond.
	QBackPressuredMax = "backpressured_max"
	QBackPressuredAvg = "backpressured_avg"
	// QRecordsInRateHead is the head operator's numRecordsInPerSecond
	// (operator_id == task_id): for a FLIP-27 source the only real input;
	// for other vertices equal to the task's. QRecordsInRateTask is the
	// task's, used for vertices QRecordsInRateHead does not return.
	QRecordsInRateHead = "records_in_rate_head"
	QRecordsInRateTask = "records_in_rate_task"
	// QRecordsOutRate is the task's numRecordsOutPerSecond;
	// QRecordsOutRateSource the source operators' (operator_name
	// "Source: …"), which a source vertex's output falls back to where
	// the task's is absent, or 0 while the source operators' is not (see
	// Collect).
	QRecordsOutRate       = "records_out_rate"
	QRecordsOutRateSource = "records_out_rate_source"
	// QRecordsInHead, QRecordsInTask, QRecordsOut, QRecordsOutSource: the
	// counters, likewise.
	QRecordsInHead    = "records_in_head"
	QRecordsInTask    = "records_in_task"
	QRecordsOut       = "records_out"
	QRecordsOutSource = "records_out_source"
	// QPendingRecords: pendingRecords summed over a source's subtasks.
	QPendingRecords = "pending_records"
	// QCurrentOffset, QCommittedOffset: one series per (task_id,
	// subtask_index, topic, partition).
	QCurrentOffset   = "current_offset"
	QCommittedOffset = "committed_offset"
	// JobManager gauges: one series (by job_id, job_name).
	QCheckpointDuration   = "checkpoint_duration"
	QCheckpointSize       = "checkpoint_size"
	QCheckpointsCompleted = "checkpoints_completed"
	QCheckpointsFailed    = "checkpoints_failed"
	QCheckpointsInProg    = "checkpoints_in_progress"
	QRestarts             = "restarts"
	// QSlotsTotal, QSlotsAvailable: the resource manager's task slots of
	// the job's cluster, one value each. The JobManager's gauges have no
	// job label: the defaults pick the JobManager (label host) that
	// reports the job's numRestarts. Optional: a failure or an empty
	// result leaves the slots unknown and is not a gap.
	QSlotsTotal     = "slots_total"
	QSlotsAvailable = "slots_available"
)

// Templates maps a query name (Q…) to a Go text/template of a PromQL
// instant query. The template data has .JobID (the job id, 32 hex) and
// .Window (PromQL.Window as a PromQL duration, e.g. "1m"), for overrides
// such as `max by (task_id) (max_over_time(…[{{.Window}}]))`. A name
// absent from PromQL.Templates uses the default; an empty template skips
// the query (its fields stay nil, and are named in Missing).
//
// Each query must return an instant vector whose series carry the labels
// the default keeps: task_id for per-vertex queries (plus subtask_index,
// topic and partition for the offsets), nothing required for the
// JobManager's (job_id and job_name are read when present).
type Templates map[string]string

// defaultTemplates is the table of default queries. Flink exports every
// counter, gauge and meter as a Prometheus gauge (a meter as its 60 s
// rate), so the defaults aggregate the latest values and use no range:
//
//	name                  query
//	subtasks              count by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="…"})
//	busy_max              max by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="…"})
//	busy_avg              avg by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="…"})
//	backpressured_max     max by (task_id) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond{job_id="…"})
//	backpressured_avg     avg by (task_id) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond{job_id="…"})
//	records_in_rate_head  sum by (task_id) (head operator's flink_taskmanager_job_task_operator_numRecordsInPerSecond)
//	records_in_rate_task  sum by (task_id) (flink_taskmanager_job_task_numRecordsInPerSecond{job_id="…"})
//	records_out_rate      sum by (task_id) (flink_taskmanager_job_task_numRecordsOutPerSecond{job_id="…"})
//	records_out_rate_source sum by (task_id) (flink_taskmanager_job_task_operator_numRecordsOutPerSecond{job_id="…",operator_name=~"Source:.*"})
//	records_in_head       sum by (task_id) (head operator's flink_taskmanager_job_task_operator_numRecordsIn)
//	records_in_task       sum by (task_id) (flink_taskmanager_job_task_numRecordsIn{job_id="…"})
//	records_out           sum by (task_id) (flink_taskmanager_job_task_numRecordsOut{job_id="…"})
//	records_out_source    sum by (task_id) (flink_taskmanager_job_task_operator_numRecordsOut{job_id="…",operator_name=~"Source:.*"})
//	pending_records       sum by (task_id) (flink_taskmanager_job_task_operator_pendingRecords{job_id="…"})
//	current_offset        max by (task_id, subtask_index, topic, partition) (…KafkaSourceReader_topic_partition_currentOffset{job_id="…"})
//	committed_offset      max by (task_id, subtask_index, topic, partition) (…KafkaSourceReader_topic_partition_committedOffset{job_id="…"})
//	checkpoint_duration   max by (job_id, job_name) (flink_jobmanager_job_lastCheckpointDuration{job_id="…"})
//	checkpoint_size       max by (job_id, job_name) (flink_jobmanager_job_lastCheckpointSize{job_id="…"})
//	checkpoints_completed max by (job_id, job_name) (flink_jobmanager_job_numberOfCompletedCheckpoints{job_id="…"})
//	checkpoints_failed    max by (job_id, job_name) (flink_jobmanager_job_numberOfFailedCheckpoints{job_id="…"})
//	checkpoints_in_progress max by (job_id, job_name) (flink_jobmanager_job_numberOfInProgressCheckpoints{job_id="…"})
//	restarts              max by (job_id, job_name) (flink_jobmanager_job_numRestarts{job_id="…"})
//	slots_total           max(flink_jobmanager_taskSlotsTotal and on (host) flink_jobmanager_job_numRestarts{job_id="…"})
//	slots_available       max(flink_jobmanager_taskSlotsAvailable and on (host) flink_jobmanager_job_numRestarts{job_id="…"})
//
// PromQL cannot compare two labels of a series, so "the head operator"
// (operator_id == task_id) is selected by matching the series against a
// copy of themselves whose operator_id is replaced by their task_id
// (label_replace), with the many-to-many "and" set operator. A source
// operator is told by its name: Flink names every source "Source: …"
// (sanitized "Source:_…"). Its sums stand in for a vertex's output only
// where the task's is absent, or 0 while theirs is not (see
// PromQL.Collect).
var defaultTemplates = Templates{
	QSubtasks:             `count by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="{{.JobID}}"})`,
	QBusyMax:              `max by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="{{.JobID}}"})`,
	QBusyAvg:              `avg by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="{{.JobID}}"})`,
	QBackPressuredMax:     `max by (task_id) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond{job_id="{{.JobID}}"})`,
	QBackPressuredAvg:     `avg by (task_id) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond{job_id="{{.JobID}}"})`,
	QRecordsInRateHead:    headOperator("numRecordsInPerSecond"),
	QRecordsInRateTask:    `sum by (task_id) (flink_taskmanager_job_task_numRecordsInPerSecond{job_id="{{.JobID}}"})`,
	QRecordsOutRate:       `sum by (task_id) (flink_taskmanager_job_task_numRecordsOutPerSecond{job_id="{{.JobID}}"})`,
	QRecordsOutRateSource: sourceOperators("numRecordsOutPerSecond"),
	QRecordsInHead:        headOperator("numRecordsIn"),
	QRecordsInTask:        `sum by (task_id) (flink_taskmanager_job_task_numRecordsIn{job_id="{{.JobID}}"})`,
	QRecordsOut:           `sum by (task_id) (flink_taskmanager_job_task_numRecordsOut{job_id="{{.JobID}}"})`,
	QRecordsOutSource:     sourceOperators("numRecordsOut"),
	QPendingRecords:       `sum by (task_id) (flink_taskmanager_job_task_operator_pendingRecords{job_id="{{.JobID}}"})`,
	QCurrentOffset:        `max by (task_id, subtask_index, topic, partition) (flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset{job_id="{{.JobID}}"})`,
	QCommittedOffset:      `max by (task_id, subtask_index, topic, partition) (flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_committedOffset{job_id="{{.JobID}}"})`,

	QCheckpointDuration:   `max by (job_id, job_name) (flink_jobmanager_job_lastCheckpointDuration{job_id="{{.JobID}}"})`,
	QCheckpointSize:       `max by (job_id, job_name) (flink_jobmanager_job_lastCheckpointSize{job_id="{{.JobID}}"})`,
	QCheckpointsCompleted: `max by (job_id, job_name) (flink_jobmanager_job_numberOfCompletedCheckpoints{job_id="{{.JobID}}"})`,
	QCheckpointsFailed:    `max by (job_id, job_name) (flink_jobmanager_job_numberOfFailedCheckpoints{job_id="{{.JobID}}"})`,
	QCheckpointsInProg:    `max by (job_id, job_name) (flink_jobmanager_job_numberOfInProgressCheckpoints{job_id="{{.JobID}}"})`,
	QRestarts:             `max by (job_id, job_name) (flink_jobmanager_job_numRestarts{job_id="{{.JobID}}"})`,

	QSlotsTotal:     jobsJobManager("taskSlotsTotal"),
	QSlotsAvailable: jobsJobManager("taskSlotsAvailable"),
}

// jobsJobManager reads a JobManager-scope gauge (which has no job label) of
// the JobManager that reports the job: the one whose host label its job
// metrics share.
func jobsJobManager(metric string) string {
	return `max(flink_jobmanager_` + metric + ` and on (host) flink_jobmanager_job_numRestarts{job_id="{{.JobID}}"})`
}

// headOperator sums an operator metric of the head operators per vertex.
func headOperator(metric string) string {
	sel := `flink_taskmanager_job_task_operator_` + metric + `{job_id="{{.JobID}}"}`
	return `sum by (task_id) (` + sel +
		` and on (task_id, subtask_index, operator_id) label_replace(` + sel + `, "operator_id", "$1", "task_id", "(.*)"))`
}

// sourceOperators sums an operator metric of the source operators per
// vertex.
func sourceOperators(metric string) string {
	return `sum by (task_id) (flink_taskmanager_job_task_operator_` + metric + `{job_id="{{.JobID}}",operator_name=~"Source:.*"})`
}

// DefaultTemplates returns a copy of the default query templates, by query
// name (see Templates and the Q… constants), for documentation or as a
// base for overrides.
func DefaultTemplates() Templates {
	out := make(Templates, len(defaultTemplates))
	for k, v := range defaultTemplates {
		out[k] = v
	}
	return out
}
