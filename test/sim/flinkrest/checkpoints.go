package flinkrest

import (
	"net/http"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// ---- GET /jobs/:jobid/checkpoints ----

func (h *handler) checkpoints(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	cp := job.Checkpoints
	counts := omap{
		{"restored", cp.Restored},
		{"total", cp.Total},
		{"in_progress", cp.InProgress},
		{"completed", cp.Completed},
		{"failed", cp.Failed},
	}
	history := make([]omap, 0, len(cp.History))
	for _, c := range cp.History {
		history = append(history, checkpointStatistics(req.view, c))
	}
	return ok(omap{
		{"counts", counts},
		{"summary", checkpointSummary(cp.History)},
		{"latest", omap{
			{"completed", checkpointOrNull(req.view, cp.LatestCompleted)},
			{"savepoint", checkpointOrNull(req.view, cp.LatestSavepoint)},
			{"failed", checkpointOrNull(req.view, cp.LatestFailed)},
			{"restored", restoredOrNull(cp.LatestRestored)},
		}},
		{"history", history},
	})
}

func checkpointOrNull(v sim.View, c *sim.CheckpointStat) any {
	if c == nil {
		return nil
	}
	return checkpointStatistics(v, *c)
}

func restoredOrNull(r *sim.RestoredCheckpoint) any {
	if r == nil {
		return nil
	}
	return omap{
		{"id", r.ID},
		{"restore_timestamp", r.RestoreTimestamp},
		{"is_savepoint", r.IsSavepoint},
		{"external_path", nullIfEmpty(r.ExternalPath)},
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkpointStatistics is one CheckpointStatistics, its "className" type id
// first (Jackson's @JsonTypeInfo property), then the common fields, then the
// subtype's. The overview lists no per-task statistics: "tasks" is {}.
func checkpointStatistics(v sim.View, c sim.CheckpointStat) omap {
	status := c.Status
	if status == "" {
		status = "COMPLETED"
	}
	className := map[string]string{"COMPLETED": "completed", "FAILED": "failed", "IN_PROGRESS": "in_progress"}[status]
	cpType := c.CheckpointType
	if cpType == "" {
		cpType = "CHECKPOINT"
		if c.IsSavepoint {
			cpType = "SAVEPOINT"
		}
	}
	var savepointFormat any // null for checkpoints
	if c.IsSavepoint {
		savepointFormat = "CANONICAL"
	}
	duration := c.EndToEndDurationMs
	if status == "IN_PROGRESS" && duration <= 0 {
		duration = max(c.LatestAckTimestamp-c.TriggerTimestamp, 0)
	}
	m := omap{
		{"className", className},
		{"id", c.ID},
		{"status", status},
		{"is_savepoint", c.IsSavepoint},
		{"savepointFormat", savepointFormat},
		{"trigger_timestamp", c.TriggerTimestamp},
		{"latest_ack_timestamp", c.LatestAckTimestamp},
		{"checkpointed_size", c.CheckpointedSize},
		{"state_size", c.StateSizeBytes},
		{"end_to_end_duration", duration},
		{"alignment_buffered", c.AlignmentBuffered},
		{"processed_data", c.ProcessedData},
		{"persisted_data", c.PersistedData},
		{"num_subtasks", c.NumSubtasks},
		{"num_acknowledged_subtasks", c.NumAcknowledged},
		{"checkpoint_type", cpType},
		{"tasks", omap{}},
	}
	switch status {
	case "COMPLETED":
		m = append(m, kv{"external_path", nullIfEmpty(c.ExternalPath)}, kv{"discarded", false})
	case "FAILED":
		m = append(m, kv{"failure_timestamp", c.FailureTimestamp}, kv{"failure_message", nullIfEmpty(c.FailureMessage)})
	}
	return m
}

// checkpointSummary is CheckpointStatisticsSummary over the completed
// checkpoints (savepoints included): min/max/avg as longs (avg is the
// integer mean, 0 without data) and quantiles as doubles ("NaN" without
// data), from Commons Math's Percentile as Flink's histogram computes them.
func checkpointSummary(history []sim.CheckpointStat) omap {
	var checkpointed, state, duration, alignment, processed, persisted []int64
	for _, c := range history {
		if c.Status != "COMPLETED" && c.Status != "" {
			continue
		}
		checkpointed = append(checkpointed, c.CheckpointedSize)
		state = append(state, c.StateSizeBytes)
		duration = append(duration, c.EndToEndDurationMs)
		alignment = append(alignment, c.AlignmentBuffered)
		processed = append(processed, c.ProcessedData)
		persisted = append(persisted, c.PersistedData)
	}
	return omap{
		{"checkpointed_size", statsSummary(checkpointed)},
		{"state_size", statsSummary(state)},
		{"end_to_end_duration", statsSummary(duration)},
		{"alignment_buffered", statsSummary(alignment)},
		{"processed_data", statsSummary(processed)},
		{"persisted_data", statsSummary(persisted)},
	}
}

// describe is what Flink's statistics summaries start from: min, max, sum
// and the (integer) average of longs, and the values as doubles for the
// percentiles.
func describe(vals []int64) (minV, maxV, sum, avg int64, fs []float64) {
	fs = make([]float64, len(vals))
	for i, x := range vals {
		if i == 0 || x < minV {
			minV = x
		}
		if i == 0 || x > maxV {
			maxV = x
		}
		sum += x
		fs[i] = float64(x)
	}
	if len(vals) > 0 {
		avg = sum / int64(len(vals))
	}
	return minV, maxV, sum, avg, fs
}

func statsSummary(vals []int64) omap {
	minV, maxV, _, avg, fs := describe(vals)
	return omap{
		{"min", minV},
		{"max", maxV},
		{"avg", avg},
		{"p50", jdouble(percentile(fs, 50))},
		{"p90", jdouble(percentile(fs, 90))},
		{"p95", jdouble(percentile(fs, 95))},
		{"p99", jdouble(percentile(fs, 99))},
		{"p999", jdouble(percentile(fs, 99.9))},
	}
}

// ---- GET /jobs/:jobid/checkpoints/config ----

func (h *handler) checkpointConfig(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	conf := req.view.JobManagerConfig
	interval := configMillis(conf, "execution.checkpointing.interval", 0)
	if interval <= 0 {
		return errorResponse(http.StatusNotFound, "Checkpointing is not enabled for this job ("+job.ID+").")
	}
	mode := strings.ToLower(conf["execution.checkpointing.mode"])
	if mode == "" {
		mode = "exactly_once"
	}
	retentionKey := "execution.checkpointing.externalized-checkpoint-retention"
	retention := conf[retentionKey]
	if retention == "" {
		retention = "NO_EXTERNALIZED_CHECKPOINTS"
	}
	backend := "HashMapStateBackend"
	switch strings.ToLower(firstNonEmpty(conf["state.backend.type"], conf["state.backend"])) {
	case "rocksdb":
		backend = "EmbeddedRocksDBStateBackend"
	case "forst":
		backend = "ForStStateBackend"
	}
	storage := "JobManagerCheckpointStorage"
	if req.ver.checkpointDir(conf) != "" {
		storage = "FileSystemCheckpointStorage"
	}
	unalignedKey := "execution.checkpointing.unaligned"
	if req.ver.atLeast(2, 0) {
		unalignedKey = "execution.checkpointing.unaligned.enabled"
	}
	// ProcessingMode has its own serializer: lower-case names.
	return ok(omap{
		{"mode", mode},
		{"interval", interval},
		{"timeout", configMillis(conf, "execution.checkpointing.timeout", 600_000)},
		{"min_pause", configMillis(conf, "execution.checkpointing.min-pause", 0)},
		{"max_concurrent", configInt(conf, "execution.checkpointing.max-concurrent-checkpoints", 1)},
		{"externalization", omap{
			{"enabled", retention != "NO_EXTERNALIZED_CHECKPOINTS"},
			{"delete_on_cancellation", retention == "DELETE_ON_CANCELLATION"},
		}},
		{"state_backend", backend},
		{"checkpoint_storage", storage},
		{"unaligned_checkpoints", configBool(conf, unalignedKey, false)},
		{"tolerable_failed_checkpoints", configInt(conf, "execution.checkpointing.tolerable-failed-checkpoints", 0)},
		{"aligned_checkpoint_timeout", configMillis(conf, "execution.checkpointing.aligned-checkpoint-timeout", 0)},
		{"checkpoints_after_tasks_finish", true},
		{"state_changelog_enabled", configBool(conf, "state.changelog.enabled", false)},
		{"changelog_periodic_materialization_interval", configMillis(conf, "state.changelog.periodic-materialize.interval", 600_000)},
		{"changelog_storage", firstNonEmpty(conf["state.changelog.storage"], "memory")},
	})
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
