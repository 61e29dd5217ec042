// Package flinkprom collects a Flink job's per-vertex metrics from
// Prometheus instead of Flink's REST API, in two ways:
//
//   - Scraper reads the PrometheusReporter endpoints (metrics.reporter.prom,
//     port 9249) of the JobManager and of every TaskManager directly and
//     aggregates the samples per job vertex;
//   - PromQL asks a Prometheus server that already scrapes them, with
//     instant queries rendered from overridable templates (DefaultTemplates).
//
// Both fill only the metric parts of metrics.FlinkSample: JobID, JobName,
// the vertices' ID, Name (the task_name label, Prometheus-sanitized) and
// metric fields, the checkpoint counters, and the cluster's task slots
// (the JobManager's taskSlotsTotal and taskSlotsAvailable). What
// Prometheus cannot tell, the job graph's edges (Inputs), Parallelism,
// MaxParallelism, slot sharing groups, the job State, RunningSince and the
// checkpoint interval and timeout, is left to the REST collector
// (metrics/flink); Merge combines the two samples.
//
// In a sample from this package, VertexSample.Parallelism is not the job
// graph's parallelism but the number of distinct subtasks that reported
// (subtask_index values seen, or PromQL's count by task_id). Merge compares
// it with the REST parallelism to find vertices whose subtasks were only
// partly reported (a TaskManager scrape failed, or Prometheus marked its
// series stale) and never uses their aggregates.
//
// Names follow Flink's PrometheusReporter (see
// shared/reference/flink-rest-and-metrics.md §3): "flink_" + logical scope
// + "_" + metric name; labels job_id, job_name, task_id (the vertex id),
// task_name, subtask_index, task_attempt_num, tm_id, and for operator
// metrics operator_id and operator_name. Label values are sanitized:
// every character outside [a-zA-Z0-9:_] is replaced by '_', which differs
// from what the REST API replaces (' ', '.', ':' and ','; so "orders-v1"
// is "orders_v1" here and stays "orders-v1" there): see PromSanitize,
// SameTopic and metrics.CanonicalTopic for matching Kafka topic names.
//
// The scraper parses an exposition one metric family at a time, so that a
// family that does not parse costs that family only: it is listed in the
// sample's Dropped, and what it costs (the metric of the subtasks that
// target reports) in Missing. See Scrape.
package flinkprom
