package flinkrest

import (
	"strconv"
	"strings"
)

// version is a Flink major.minor; every 2.x renders alike.
type version struct{ major, minor int }

func parseVersion(s string) version {
	parts := strings.SplitN(s, ".", 3)
	v := version{major: 1, minor: 20}
	if len(parts) >= 1 {
		if n, err := strconv.Atoi(parts[0]); err == nil {
			v.major = n
		}
	}
	if len(parts) >= 2 {
		if n, err := strconv.Atoi(parts[1]); err == nil {
			v.minor = n
		}
	}
	return v
}

func (v version) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

// hasEndpoint: subtask "endpoint" (FLINK-33147, 1.19).
func (v version) hasEndpoint() bool { return v.atLeast(1, 19) }

// hasHost: subtask "host", deprecated in 1.19, removed in 2.0 (FLINK-36355).
func (v version) hasHost() bool { return !v.atLeast(2, 0) }

// hasJobType: JobDetailsInfo "job-type" (1.20).
func (v version) hasJobType() bool { return v.atLeast(1, 20) }

// hasSlotSharingGroup: vertices[].slotSharingGroupId (1.20).
func (v version) hasSlotSharingGroup() bool { return v.atLeast(1, 20) }

// hasSkew: agg=skew (FLINK-34025, 1.20).
func (v version) hasSkew() bool { return v.atLeast(1, 20) }

// hasPendingOperators: "pending-operators" in job details and overview (2.0).
func (v version) hasPendingOperators() bool { return v.atLeast(2, 0) }

// hasExecutionMode: execution-config "execution-mode" (removed in 2.0).
func (v version) hasExecutionMode() bool { return !v.atLeast(2, 0) }

// hasLegacyMemorySegments: TaskManager metrics memorySegmentsAvailable/Total
// (removed in 2.0).
func (v version) hasLegacyMemorySegments() bool { return !v.atLeast(2, 0) }

// hasFullRestarts: the deprecated fullRestarts job gauge (removed in 2.0).
func (v version) hasFullRestarts() bool { return !v.atLeast(2, 0) }

// savepointDirKey is the default savepoint directory's config key.
func (v version) savepointDirKey() string {
	if v.atLeast(2, 0) {
		return "execution.checkpointing.savepoint-dir"
	}
	return "state.savepoints.dir"
}

// savepointDir is the configured default savepoint directory, under the
// version's key or the other era's.
func (v version) savepointDir(conf map[string]string) string {
	return firstNonEmpty(conf[v.savepointDirKey()], conf["state.savepoints.dir"], conf["execution.checkpointing.savepoint-dir"])
}

// checkpointDir is the configured checkpoint directory (1.x key
// state.checkpoints.dir, 2.x execution.checkpointing.dir).
func (v version) checkpointDir(conf map[string]string) string {
	return firstNonEmpty(conf["execution.checkpointing.dir"], conf["state.checkpoints.dir"])
}

// flinkVersionString is the full version /overview and /config report:
// View.FlinkVersion as is when it names a patch release, else ".0" added.
func flinkVersionString(s string) string {
	if strings.Count(s, ".") >= 2 {
		return s
	}
	return s + ".0"
}
