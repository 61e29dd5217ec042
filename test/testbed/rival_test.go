package testbed

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/rival-1.15.0.log holds lines of a real run of
// flink-autoscaler-standalone 1.15.0 (`flinkscale bench --real`): its start,
// two ScalingReport events and one evaluation within target.
func TestReadRivalLog(t *testing.T) {
	entries, err := ReadRivalLog("testdata/rival-1.15.0.log")
	require.NoError(t, err)
	at := logTime(t)
	src, keyed, sink := "712a6f476cd6ee71f3f0d459a5814a97", "df85b03322cf860d36bf7bbdbc498ff0", "9325f30f8c374edd52441089d38b2d6b"
	assert.Equal(t, []RivalEntry{
		{At: at("2026-12-05 05:38:52.696"), Outcome: RivalScaling, From: map[string]int{src: 1, keyed: 2}, To: map[string]int{src: 8, keyed: 4}},
		{At: at("2026-12-05 05:41:47.707"), Outcome: RivalWithinTarget},
		{At: at("2026-12-05 05:41:47.707"), Outcome: RivalAtTarget},
		{At: at("2026-12-05 05:42:07.393"), Outcome: RivalScaling, From: map[string]int{sink: 1, keyed: 4}, To: map[string]int{sink: 2, keyed: 8}},
	}, entries)
}

// The lines the 1.15.0 source logs for a delayed scale-down and a source
// catching up (JobVertexScaler, ScalingMetricEvaluator), in the testbed's
// log4j layout; anything else is skipped.
func TestReadRivalLogDelaysAndBacklog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rival.log")
	require.NoError(t, os.WriteFile(p, []byte(
		"2026-12-05 06:01:02,003 INFO  org.apache.flink.autoscaler.JobVertexScaler [] - The scale down of df85b03322cf860d36bf7bbdbc498ff0 is delayed by PT6M.\n"+
			"2026-12-05 06:01:12,004 INFO  org.apache.flink.autoscaler.ScalingMetricEvaluator [] - Currently processing backlog at source 712a6f476cd6ee71f3f0d459a5814a97\n"+
			"not a log line\n"+
			"2026-12-05 06:01:22,005 INFO  org.apache.flink.autoscaler.JobAutoScalerImpl [] - Cleaning up autoscaling meta data\n"), 0o644))
	entries, err := ReadRivalLog(p)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, RivalDelayed, entries[0].Outcome)
	assert.Equal(t, "df85b03322cf860d36bf7bbdbc498ff0", entries[0].Vertex)
	assert.Equal(t, RivalBacklog, entries[1].Outcome)
	assert.Equal(t, "712a6f476cd6ee71f3f0d459a5814a97", entries[1].Vertex)

	_, err = ReadRivalLog(filepath.Join(t.TempDir(), "missing.log"))
	assert.Error(t, err)
}

func TestRivalJarNamesTheWayToBuildIt(t *testing.T) {
	t.Setenv(RivalJarEnv, "")
	_, err := RivalJar(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make rival-jar OPERATOR_SRC=")
	jar := filepath.Join(t.TempDir(), "rival.jar")
	require.NoError(t, os.WriteFile(jar, []byte("PK"), 0o644))
	t.Setenv(RivalJarEnv, jar)
	got, err := RivalJar(t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, jar, got)
}

// Each DEBUG line of JobAutoScalerImpl is one look of the control loop at a
// job; INFO lines and other classes are not. Each call reads only what the
// log gained, a line still being written included once it ends.
func TestRivalTicks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rival.log")
	require.NoError(t, os.WriteFile(p, []byte(
		"2026-12-05 06:00:00,100 DEBUG org.apache.flink.autoscaler.JobAutoScalerImpl [] - Not ready for scaling\n"+
			"org.apache.flink.autoscaler.exceptions.NotReadyException: ...\n"+
			"\tat org.apache.flink.autoscaler.ScalingMetricCollector.updateMetrics(ScalingMetricCollector.java:1)\n"+
			"2026-12-05 06:00:10,200 DEBUG org.apache.flink.autoscaler.JobAutoScalerImpl [] - Collected metrics: {...}\n"+
			"2026-12-05 06:00:10,300 INFO  org.apache.flink.autoscaler.ScalingExecutor [] - All vertex processing rates are within target.\n"+
			"2026-12-05 06:00:20,400 DEBUG org.apache.flink.autoscaler.JobAutoScal"), 0o644))
	at := logTime(t)
	ticks := NewRivalTicks(p)
	got, err := ticks.New()
	require.NoError(t, err)
	assert.Equal(t, []time.Time{at("2026-12-05 06:00:00.100"), at("2026-12-05 06:00:10.200")}, got, "the unfinished line waits")
	got, err = ticks.New()
	require.NoError(t, err)
	assert.Empty(t, got, "nothing new")

	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("erImpl [] - Collected metrics: {...}\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got, err = ticks.New()
	require.NoError(t, err)
	assert.Equal(t, []time.Time{at("2026-12-05 06:00:20.400")}, got)

	_, err = NewRivalTicks(filepath.Join(t.TempDir(), "missing.log")).New()
	assert.Error(t, err)
}

// logTime parses the rival log's stamps, written with a dot for the test's
// readability.
func logTime(t *testing.T) func(string) time.Time {
	return func(s string) time.Time {
		tt, err := time.ParseInLocation("2006-01-02 15:04:05.000", s, time.Local)
		require.NoError(t, err)
		return tt
	}
}
