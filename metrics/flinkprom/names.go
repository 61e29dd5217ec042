package flinkprom

import "github.com/flinkscale/flinkscale/metrics"

// Metric family names as Flink's PrometheusReporter exports them.
const (
	prefixTask     = "flink_taskmanager_job_task_"
	prefixOperator = "flink_taskmanager_job_task_operator_"
	prefixJM       = "flink_jobmanager_"
	prefixJMJob    = "flink_jobmanager_job_"
	familyOffsets  = prefixOperator + "KafkaSourceReader_topic_partition_"
)

// Flink metric names, also used in Missing entries ("<vertex id>: <name>").
const (
	mBusy           = "busyTimeMsPerSecond"
	mBackPressured  = "backPressuredTimeMsPerSecond"
	mRecordsIn      = "numRecordsIn"
	mRecordsOut     = "numRecordsOut"
	mRecordsInRate  = "numRecordsInPerSecond"
	mRecordsOutRate = "numRecordsOutPerSecond"
	mPending        = "pendingRecords"
	mCurrentOffset  = "currentOffset"
	mCommitted      = "committedOffset"
	mPartitions     = "partitions"

	mCheckpointDuration = "lastCheckpointDuration"
	mCheckpointSize     = "lastCheckpointSize"
	mCompleted          = "numberOfCompletedCheckpoints"
	mFailed             = "numberOfFailedCheckpoints"
	mInProgress         = "numberOfInProgressCheckpoints"
	mRestarts           = "numRestarts"

	// The resource manager's gauges (jobmanager scope, no job label).
	mSlotsTotal     = "taskSlotsTotal"
	mSlotsAvailable = "taskSlotsAvailable"
)

// Labels of Flink's scope variables.
const (
	lJobID        = "job_id"
	lJobName      = "job_name"
	lTaskID       = "task_id"
	lTaskName     = "task_name"
	lSubtask      = "subtask_index"
	lAttempt      = "task_attempt_num"
	lTMID         = "tm_id"
	lOperatorID   = "operator_id"
	lOperatorName = "operator_name"
	lTopic        = "topic"
	lPartition    = "partition"
)

// PromSanitize writes a string as Flink's PrometheusReporter writes label
// values and name parts: every character outside [a-zA-Z0-9:_] becomes '_'
// (per UTF-16 unit in Java; here per byte of the UTF-8 encoding, so a
// non-ASCII character may give more underscores than Flink's).
func PromSanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// SameTopic tells whether a partition owner's topic as a collector
// writes it (from this package: the reporter's label, Prometheus-
// sanitized; from metrics/flink: the REST spelling metrics.SanitizedTopic
// gives) can be the Kafka topic kafkaTopic (or another spelling of it).
// Both are compared in metrics.CanonicalTopic form: REST replaces ':',
// which Prometheus keeps, so neither sanitizing is a subset of the other,
// but Kafka topics have no ':'. The match is lossy ("orders-v1",
// "orders.v1" and "orders_v1" all match "orders_v1"), so two Kafka topics
// may match the same label.
func SameTopic(promTopic, kafkaTopic string) bool {
	return metrics.CanonicalTopic(promTopic) == metrics.CanonicalTopic(kafkaTopic)
}
