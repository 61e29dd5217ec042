package promreporter

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// parse reads an exposition with expfmt. In prometheus/common v0.66 the zero
// TextParser panics ("Invalid name validation scheme requested: unset"); a
// parser needs a validation scheme.
func parse(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err, "exposition:\n%s", b)
	return mfs
}

// series is one expected sample, labels as a set.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

func seriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&b, "|%s=%s", k, labels[k])
	}
	return b.String()
}

func clone(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func trunc(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Trunc(x)
}

// expectTaskManager lists, independently of the renderer, the task and
// operator samples a TaskManager must serve (not its synthetic JVM gauges).
func expectTaskManager(v sim.View, tm string) []series {
	var out []series
	egid := ExecutionGraphID(v.Job.ID)
	for _, vx := range v.Job.Vertices {
		for _, s := range vx.Subtasks {
			if s.TaskManagerID != tm {
				continue
			}
			task := map[string]string{
				"job_id":           sanitize(v.Job.ID),
				"job_name":         sanitize(v.Job.Name),
				"host":             sanitize(s.Host),
				"tm_id":            sanitize(tm),
				"task_id":          vx.ID,
				"task_name":        sanitize(vx.Name),
				"task_attempt_id":  fmt.Sprintf("%s_%s_%d_%d", egid, vx.ID, s.Index, s.Attempt),
				"task_attempt_num": strconv.Itoa(s.Attempt),
				"subtask_index":    strconv.Itoa(s.Index),
			}
			add := func(name string, labels map[string]string, value float64) {
				out = append(out, series{name, labels, value})
			}
			const tp = "flink_taskmanager_job_task_"
			add(tp+"busyTimeMsPerSecond", task, s.BusyTimeMsPerSecond)
			add(tp+"idleTimeMsPerSecond", task, trunc(s.IdleTimeMsPerSecond))
			add(tp+"backPressuredTimeMsPerSecond", task, trunc(s.BackPressuredTimeMsPerSecond))
			add(tp+"softBackPressuredTimeMsPerSecond", task, trunc(s.SoftBackPressuredTimeMsPerSecond))
			add(tp+"hardBackPressuredTimeMsPerSecond", task, trunc(s.HardBackPressuredTimeMsPerSecond))
			add(tp+"accumulateBusyTimeMs", task, s.AccumulatedBusyTimeMs)
			add(tp+"accumulateIdleTimeMs", task, trunc(s.AccumulatedIdleTimeMs))
			add(tp+"accumulateBackPressuredTimeMs", task, trunc(s.AccumulatedBackPressuredMs))
			bp := 0.0
			if trunc(s.BackPressuredTimeMsPerSecond) > 0 {
				bp = 1
			}
			add(tp+"isBackPressured", task, bp)
			add(tp+"numRecordsIn", task, trunc(s.NumRecordsIn))
			add(tp+"numRecordsOut", task, trunc(s.NumRecordsOut))
			add(tp+"numRecordsInPerSecond", task, s.NumRecordsInPerSecond)
			add(tp+"numRecordsOutPerSecond", task, s.NumRecordsOutPerSecond)
			if !vx.IsSource {
				continue
			}
			op := clone(task, "operator_id", vx.ID, "operator_name", sanitize(vx.OperatorName))
			const opp = tp + "operator_"
			add(opp+"numRecordsIn", op, trunc(s.SourceNumRecordsIn))
			add(opp+"numRecordsOut", op, trunc(s.SourceNumRecordsOut))
			add(opp+"numRecordsInPerSecond", op, s.SourceNumRecordsInPerSecond)
			add(opp+"numRecordsOutPerSecond", op, s.SourceNumRecordsOutPerSecond)
			if s.PendingRecords != nil {
				add(opp+"pendingRecords", op, trunc(*s.PendingRecords))
			}
			for _, p := range s.Partitions {
				pl := clone(op, "topic", sanitize(p.Topic), "partition", strconv.Itoa(p.Partition))
				add(opp+"KafkaSourceReader_topic_partition_currentOffset", pl, float64(p.CurrentOffset))
				add(opp+"KafkaSourceReader_topic_partition_committedOffset", pl, float64(p.CommittedOffset))
			}
		}
	}
	return out
}

func expectJobManager(v sim.View) []series {
	jm := map[string]string{"host": sanitize(v.JobManagerHost)}
	job := clone(jm, "job_id", sanitize(v.Job.ID), "job_name", sanitize(v.Job.Name))
	c := v.Job.Checkpoints
	return []series{
		{"flink_jobmanager_taskSlotsTotal", jm, 4},
		{"flink_jobmanager_taskSlotsAvailable", jm, 1},
		{"flink_jobmanager_numRegisteredTaskManagers", jm, 2},
		{"flink_jobmanager_numRunningJobs", jm, 1},
		{"flink_jobmanager_job_uptime", job, float64(90 * 60 * 1000)},
		{"flink_jobmanager_job_numRestarts", job, 2},
		{"flink_jobmanager_job_numRescales", job, 1},
		{"flink_jobmanager_job_totalNumberOfCheckpoints", job, float64(c.Total)},
		{"flink_jobmanager_job_numberOfInProgressCheckpoints", job, float64(c.InProgress)},
		{"flink_jobmanager_job_numberOfCompletedCheckpoints", job, float64(c.Completed)},
		{"flink_jobmanager_job_numberOfFailedCheckpoints", job, float64(c.Failed)},
		{"flink_jobmanager_job_lastCheckpointRestoreTimestamp", job, float64(c.LatestRestored.RestoreTimestamp)},
		{"flink_jobmanager_job_lastCheckpointSize", job, 52428800},
		{"flink_jobmanager_job_lastCheckpointFullSize", job, 73400320},
		{"flink_jobmanager_job_lastCheckpointDuration", job, 1834},
		{"flink_jobmanager_job_lastCheckpointExternalPath", job, 0},
	}
}

// scopeOf returns a family's logical scope from its name.
func scopeOf(name string) string {
	for _, s := range []string{
		"taskmanager_job_task_operator_KafkaSourceReader_topic_partition",
		scopeOperator, scopeTask, "taskmanager_Status_JVM_Memory_Heap", "taskmanager_Status_JVM_CPU",
		scopeJMJob, scopeJobManager,
	} {
		if strings.HasPrefix(name, "flink_"+s+"_") {
			return s
		}
	}
	return ""
}

var labelOrder = map[string][]string{
	scopeTask:     {"job_id", "task_id", "task_attempt_id", "host", "task_name", "task_attempt_num", "job_name", "tm_id", "subtask_index"},
	scopeOperator: {"job_id", "task_id", "task_attempt_id", "host", "operator_id", "operator_name", "task_name", "task_attempt_num", "job_name", "tm_id", "subtask_index"},
	"taskmanager_job_task_operator_KafkaSourceReader_topic_partition": {"task_attempt_id", "host", "task_attempt_num", "tm_id", "partition", "topic", "job_id", "task_id", "operator_id", "operator_name", "task_name", "job_name", "subtask_index"},
	"taskmanager_Status_JVM_Memory_Heap":                              {"host", "tm_id"},
	"taskmanager_Status_JVM_CPU":                                      {"host", "tm_id"},
	scopeJMJob:                                                        {"job_id", "host", "job_name"},
	scopeJobManager:                                                   {"host"},
}

// checkRoundTrip parses an exposition and compares it with the expected
// samples: same set of series, values bit for bit (NaN for NaN), every
// family a gauge with Flink's HELP text, labels in the scope's order.
// Families named in extra may hold further samples (the synthetic gauges).
func checkRoundTrip(t *testing.T, out []byte, want []series, extra ...string) {
	t.Helper()
	mfs := parse(t, out)
	got := map[string]float64{}
	for name, mf := range mfs {
		scope := scopeOf(name)
		require.NotEmpty(t, scope, name)
		assert.Equal(t, dto.MetricType_GAUGE, mf.GetType(), name)
		metricName := strings.TrimPrefix(name, "flink_"+scope+"_")
		assert.Equal(t, metricName+" (scope: "+scope+")", mf.GetHelp(), name)
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			var order []string
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
				order = append(order, l.GetName())
			}
			assert.Equal(t, labelOrder[scope], order, name)
			k := seriesKey(name, labels)
			_, dup := got[k]
			assert.False(t, dup, "duplicate series %s", k)
			got[k] = m.GetGauge().GetValue()
		}
	}
	seen := map[string]bool{}
	for _, w := range want {
		k := seriesKey(w.name, w.labels)
		seen[k] = true
		v, ok := got[k]
		if !assert.True(t, ok, "missing %s", k) {
			continue
		}
		if math.IsNaN(w.value) {
			assert.True(t, math.IsNaN(v), "%s = %v, want NaN", k, v)
		} else {
			assert.Equal(t, math.Float64bits(w.value), math.Float64bits(v), "%s = %v, want %v", k, v, w.value)
		}
	}
	for k := range got {
		name, _, _ := strings.Cut(k, "|")
		if !seen[k] && !contains(extra, name) {
			t.Errorf("unexpected series %s", k)
		}
	}
}

var jvmFamilies = []string{
	"flink_taskmanager_Status_JVM_CPU_Load",
	"flink_taskmanager_Status_JVM_Memory_Heap_Used",
	"flink_taskmanager_Status_JVM_Memory_Heap_Committed",
	"flink_taskmanager_Status_JVM_Memory_Heap_Max",
}

func TestRoundTripTaskManagers(t *testing.T) {
	v := fixture()
	for _, tm := range []string{fxTM1, fxTM2} {
		t.Run(tm, func(t *testing.T) {
			checkRoundTrip(t, TaskManager(v, tm), expectTaskManager(v, tm), jvmFamilies...)
		})
	}
}

func TestRoundTripJobManager(t *testing.T) {
	v := fixture()
	checkRoundTrip(t, JobManager(v), expectJobManager(v))
}

func TestRoundTripSpecialValues(t *testing.T) {
	v := fixture()
	w := &v.Job.Vertices[1].Subtasks[0]
	w.BusyTimeMsPerSecond = math.NaN()
	w.AccumulatedBusyTimeMs = math.NaN()
	w.NumRecordsInPerSecond = math.Inf(1)
	w.NumRecordsOutPerSecond = math.Inf(-1)
	w.NumRecordsIn = 123456789012
	w.IdleTimeMsPerSecond = 999.9 // a Gauge<Long>: 999
	s := &v.Job.Vertices[0].Subtasks[1]
	s.SourceNumRecordsInPerSecond = 1e-4
	s.SourceNumRecordsOutPerSecond = math.Copysign(0, -1)
	s.Partitions[0].CurrentOffset = math.MaxInt64

	out := TaskManager(v, fxTM2)
	text := string(out)
	for _, suffix := range []string{`,} NaN`, `,} +Inf`, `,} -Inf`, `,} 1.23456789012E11`, `,} 999.0`, `,} 1.0E-4`, `,} -0.0`, `,} 9.223372036854776E18`} {
		assert.Contains(t, text, suffix+"\n")
	}
	checkRoundTrip(t, out, expectTaskManager(v, fxTM2), jvmFamilies...)
}

// Every line is a comment or a sample whose labels end with a comma.
func TestTrailingCommaEverywhere(t *testing.T) {
	v := fixture()
	for _, out := range [][]byte{TaskManager(v, fxTM1), TaskManager(v, fxTM2), JobManager(v)} {
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		require.NotEmpty(t, lines)
		for _, l := range lines {
			if strings.HasPrefix(l, "# ") {
				assert.Regexp(t, `^# (HELP flink_\w+ \w+ \(scope: \w+\)|TYPE flink_\w+ gauge)$`, l)
				continue
			}
			assert.Regexp(t, `^flink_\w+\{(\w+="[a-zA-Z0-9:_]*",)+\} \S+$`, l)
		}
	}
}
