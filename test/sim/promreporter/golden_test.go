package promreporter

import (
	"github.com/flinkscale/flinkscale/scaling/assign"

	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refEGID is the execution graph id of the reference's example lines; the
// fixture's own is ExecutionGraphID(fxJobID).
const refEGID = "7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f"

// Example lines from shared/reference/flink-rest-and-metrics.md §3, verbatim
// but for the execution graph id.
var referenceLines = []string{
	`# HELP flink_taskmanager_job_task_busyTimeMsPerSecond busyTimeMsPerSecond (scope: taskmanager_job_task)`,
	`# TYPE flink_taskmanager_job_task_busyTimeMsPerSecond gauge`,
	`flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="90bea66de1c231edf33913ecd54406c1",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_90bea66de1c231edf33913ecd54406c1_1_0",host="10_244_1_17",task_name="Window_TumblingEventTimeWindows_60000______Sink:_Print",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="1",} 734.0`,
	`flink_taskmanager_job_task_backPressuredTimeMsPerSecond{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="cbc357ccb763df2852fee8c4fc7d55f2",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",} 412.0`,
	`flink_taskmanager_job_task_operator_numRecordsOutPerSecond{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="cbc357ccb763df2852fee8c4fc7d55f2",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",operator_id="cbc357ccb763df2852fee8c4fc7d55f2",operator_name="Source:_Kafka_Source",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",} 15234.55`,
	`flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset{task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",task_attempt_num="0",tm_id="orders_agg_taskmanager_1_1",partition="3",topic="orders_v1",job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="cbc357ccb763df2852fee8c4fc7d55f2",operator_id="cbc357ccb763df2852fee8c4fc7d55f2",operator_name="Source:_Kafka_Source",task_name="Source:_Kafka_Source____Map",job_name="orders_agg",subtask_index="0",} 4.5231007E7`,
}

// The "{…same labels…}" lines of the reference, filled in.
var placeholderLines = []string{
	`flink_taskmanager_job_task_idleTimeMsPerSecond{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="90bea66de1c231edf33913ecd54406c1",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_90bea66de1c231edf33913ecd54406c1_1_0",host="10_244_1_17",task_name="Window_TumblingEventTimeWindows_60000______Sink:_Print",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="1",} 266.0`,
	`flink_taskmanager_job_task_isBackPressured{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="cbc357ccb763df2852fee8c4fc7d55f2",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",} 1.0`,
	`flink_taskmanager_job_task_numRecordsInPerSecond{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="90bea66de1c231edf33913ecd54406c1",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_90bea66de1c231edf33913ecd54406c1_1_0",host="10_244_1_17",task_name="Window_TumblingEventTimeWindows_60000______Sink:_Print",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="1",} 15234.55`,
	`flink_taskmanager_job_task_numRecordsOut{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="cbc357ccb763df2852fee8c4fc7d55f2",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",} 1.2345678E7`,
	`flink_taskmanager_job_task_operator_pendingRecords{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",task_id="cbc357ccb763df2852fee8c4fc7d55f2",task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",operator_id="cbc357ccb763df2852fee8c4fc7d55f2",operator_name="Source:_Kafka_Source",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",} 48210.0`,
}

// The reference's JobManager job lines list the labels as job_name, host,
// job_id. Flink's HashMap of those three variables iterates job_id, host,
// job_name (see hashmap.go and TestLabelOrders); the renderer follows Flink,
// so these lines are compared with their labels in that order.
var referenceJobManagerLines = []string{
	`flink_jobmanager_job_lastCheckpointDuration{job_name="orders_agg",host="orders_agg_jobmanager",job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",} 1834.0`,
	`flink_jobmanager_job_lastCheckpointSize{job_name="orders_agg",host="orders_agg_jobmanager",job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",} 5.24288E7`,
	`flink_jobmanager_job_numberOfCompletedCheckpoints{job_name="orders_agg",host="orders_agg_jobmanager",job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",} 42.0`,
}

func outputLines(b []byte) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		m[l] = true
	}
	return m
}

func TestGoldenTaskManagerLines(t *testing.T) {
	out := outputLines(TaskManager(fixture(), fxTM1))
	egid := ExecutionGraphID(fxJobID)
	for _, l := range append(append([]string{}, referenceLines...), placeholderLines...) {
		want := strings.ReplaceAll(l, refEGID, egid)
		assert.True(t, out[want], "missing line\n%s", want)
	}
}

func TestGoldenHelpAndTypeOrder(t *testing.T) {
	out := string(TaskManager(fixture(), fxTM1))
	egid := ExecutionGraphID(fxJobID)
	// The source subtask 0's busy time, with the labels of the reference's
	// backPressuredTimeMsPerSecond line.
	source := strings.ReplaceAll(referenceLines[3], "backPressuredTimeMsPerSecond", "busyTimeMsPerSecond")
	source = strings.TrimSuffix(source, " 412.0") + " 188.0"
	// HELP, TYPE, then the family's samples: vertices in topological order,
	// so the source subtask before the window subtask.
	want := strings.Join([]string{
		referenceLines[0],
		referenceLines[1],
		strings.ReplaceAll(source, refEGID, egid),
		strings.ReplaceAll(referenceLines[2], refEGID, egid),
	}, "\n") + "\n"
	assert.Contains(t, out, want)
}

func TestGoldenJobManagerLines(t *testing.T) {
	out := outputLines(JobManager(fixture()))
	for _, l := range referenceJobManagerLines {
		want := reorderLabels(t, l, []string{"job_id", "host", "job_name"})
		assert.True(t, out[want], "missing line\n%s", want)
	}
	assert.True(t, out[`flink_jobmanager_taskSlotsTotal{host="orders_agg_jobmanager",} 4.0`])
	assert.True(t, out[`# HELP flink_jobmanager_job_lastCheckpointSize lastCheckpointSize (scope: jobmanager_job)`])
}

// reorderLabels rewrites a sample line with its labels in the given order.
func reorderLabels(t *testing.T, line string, order []string) string {
	t.Helper()
	open, end := strings.IndexByte(line, '{'), strings.LastIndex(line, ",}")
	require.True(t, open > 0 && end > open, line)
	byName := map[string]string{}
	for _, kv := range strings.Split(line[open+1:end], ",") {
		k, _, ok := strings.Cut(kv, "=")
		require.True(t, ok, kv)
		byName[k] = kv
	}
	require.Len(t, byName, len(order))
	var b strings.Builder
	b.WriteString(line[:open+1])
	for _, k := range order {
		b.WriteString(byName[k])
		b.WriteByte(',')
	}
	b.WriteString(line[end+1:])
	return b.String()
}

func TestLabelOrders(t *testing.T) {
	labelNames := func(line string) []string {
		var names []string
		open := strings.IndexByte(line, '{')
		for _, kv := range strings.Split(strings.TrimSuffix(line[open+1:strings.LastIndex(line, "}")], ","), ",") {
			k, _, _ := strings.Cut(kv, "=")
			names = append(names, k)
		}
		return names
	}
	task, op, kafka := labelNames(referenceLines[3]), labelNames(referenceLines[4]), labelNames(referenceLines[5])

	m := func(names ...string) []string {
		var got []string
		vm := newVarMap()
		for _, n := range names {
			vm.put("<"+n+">", "x")
		}
		vm.each(func(k, _ string) { got = append(got, k[1:len(k)-1]) })
		return got
	}
	tmVars := childVars(nil, "<host>", "h", "<tm_id>", "t")
	jobVars := childVars(tmVars, "<job_id>", "j", "<job_name>", "n")
	taskVars := childVars(jobVars, "<task_id>", "v", "<task_name>", "n", "<task_attempt_id>", "a", "<task_attempt_num>", "0", "<subtask_index>", "0")
	opVars := childVars(taskVars, "<operator_id>", "o", "<operator_name>", "n")
	topic := childVars(childVars(childVars(opVars)), "<topic>", "t")
	part := childVars(childVars(topic), "<partition>", "0")
	names := func(vm *varMap) []string {
		var got []string
		vm.each(func(k, _ string) { got = append(got, k[1:len(k)-1]) })
		return got
	}
	assert.Equal(t, task, names(taskVars))
	assert.Equal(t, op, names(opVars))
	assert.Equal(t, kafka, names(part))
	assert.Equal(t, 32, part.capacity)
	assert.Equal(t, []string{"host", "tm_id"}, names(tmVars))
	assert.Equal(t, []string{"job_id", "host", "job_name"}, names(childVars(childVars(nil, "<host>", "h"), "<job_id>", "j", "<job_name>", "n")))
	// The reference's job_name, host, job_id is what a 4-bucket table gives
	// (for instance new HashMap<>(map) of three entries on JDK 19+), not the
	// 16-bucket table AbstractMetricGroup builds.
	small := &varMap{capacity: 4}
	for _, k := range []string{"<job_id>", "<job_name>", "<host>"} {
		small.put(k, "x")
	}
	assert.Equal(t, []string{"job_name", "host", "job_id"}, names(small))
	// Order within a bucket is insertion order.
	assert.Equal(t, []string{"task_id", "task_attempt_id"}, m("task_id", "task_attempt_id"))
	assert.Equal(t, []string{"task_attempt_id", "task_id"}, m("task_attempt_id", "task_id"))
}

func TestJavaStringHash(t *testing.T) {
	// Values of java.lang.String.hashCode.
	assert.Equal(t, int32(0), assign.JavaStringHashCode(""))
	assert.Equal(t, int32(97), assign.JavaStringHashCode("a"))
	assert.Equal(t, int32(99162322), assign.JavaStringHashCode("hello"))
	assert.Equal(t, int32(-1008770331), assign.JavaStringHashCode("orders")) // reference §5
	assert.Equal(t, int32(-147182656), assign.JavaStringHashCode("user-42")) // reference §5
	assert.Equal(t, int32(0x0316bf45), assign.JavaStringHashCode("<job_id>"))
	// Supplementary characters hash as two UTF-16 units.
	assert.Equal(t, int32(31*0xD83D+0xDE00), assign.JavaStringHashCode("😀"))
}
