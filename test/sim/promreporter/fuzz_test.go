package promreporter

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

var sanitizedValue = regexp.MustCompile(`^[a-zA-Z0-9:_]*$`)

// fuzzView is a one-source job on one TaskManager with fuzzed names and
// values; the second partition's topic may sanitize to the first's.
func fuzzView(jobName, vertexName, opName, host, topic, topic2, tmID, jmHost string,
	value, rate float64, offset int64, partition int, attempt uint8) sim.View {
	pending := value
	return sim.View{
		Now:            time.UnixMilli(1_776_000_000_000),
		JobManagerHost: jmHost,
		TaskManagers:   []sim.TaskManagerView{{ID: tmID, Host: host, SlotsNumber: 1, CPUCores: rate, FreeMemory: offset}},
		Job: sim.JobView{
			ID: "3f2a9c1e8b7d4f60a1b2c3d4e5f60718", Name: jobName, State: "RUNNING",
			Timestamps:  map[string]int64{"RUNNING": offset},
			NumRestarts: int(attempt),
			Checkpoints: sim.CheckpointsView{
				Total: int(attempt), LatestCompleted: &sim.CheckpointStat{EndToEndDurationMs: offset, StateSizeBytes: offset, CheckpointedSize: -offset},
			},
			Vertices: []sim.VertexView{{
				ID: "cbc357ccb763df2852fee8c4fc7d55f2", Name: vertexName, OperatorName: opName, IsSource: true,
				Subtasks: []sim.SubtaskView{{
					Index: int(attempt) % 7, Attempt: int(attempt), TaskManagerID: tmID, Host: host,
					BusyTimeMsPerSecond: value, IdleTimeMsPerSecond: value, BackPressuredTimeMsPerSecond: value,
					AccumulatedBusyTimeMs: value, NumRecordsIn: value, NumRecordsInPerSecond: rate,
					SourceNumRecordsOut: value, SourceNumRecordsInPerSecond: rate,
					PendingRecords: &pending,
					Partitions: []sim.PartitionView{
						{Topic: topic, Partition: partition, CurrentOffset: offset, CommittedOffset: -1},
						{Topic: topic2, Partition: partition, CurrentOffset: offset / 2, CommittedOffset: offset},
					},
				}},
			}},
		},
	}
}

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

// checkParsedLabels checks that no series repeats and every label value is
// sanitized; it returns the samples by name as label maps with values.
func checkParsedLabels(t *testing.T, mfs map[string]*dto.MetricFamily) map[string][]series {
	out := map[string][]series{}
	for name, mf := range mfs {
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				require.Regexp(t, sanitizedValue, l.GetValue(), "%s %s", name, l.GetName())
				labels[l.GetName()] = l.GetValue()
			}
			k := seriesKey(name, labels)
			require.False(t, seen[k], "duplicate series %s", k)
			seen[k] = true
			out[name] = append(out[name], series{name, labels, m.GetGauge().GetValue()})
		}
	}
	return out
}

func FuzzExposition(f *testing.F) {
	f.Add("orders-agg", "Source: Kafka Source -> Map", "Source: Kafka Source", "10.244.1.17", "orders.v1", "orders-v1",
		"orders-agg-taskmanager-1-1", "orders-agg-jobmanager", 734.0, 15234.55, int64(45231007), 3, uint8(0))
	f.Add("a\"b\\c\nd}{,=", "ünïcödé 😀 -> x", strings.Repeat("é", 79)+"😀", "", "", "", "", "",
		math.NaN(), math.Inf(1), int64(-1), -3, uint8(255))
	f.Add("# HELP x", "\xff\xfe", "\x00", " ", "topic with spaces", "topic\twith\ttabs", "tm id", "jm\rhost",
		math.Inf(-1), 1e-300, int64(math.MaxInt64), math.MaxInt32, uint8(7))
	f.Fuzz(func(t *testing.T, jobName, vertexName, opName, host, topic, topic2, tmID, jmHost string,
		value, rate float64, offset int64, partition int, attempt uint8) {
		v := fuzzView(jobName, vertexName, opName, host, topic, topic2, tmID, jmHost, value, rate, offset, partition, attempt)

		tm := checkParsedLabels(t, parse(t, TaskManager(v, tmID)))
		busy := tm["flink_taskmanager_job_task_busyTimeMsPerSecond"]
		require.Len(t, busy, 1)
		require.True(t, sameFloat(value, busy[0].value), "busy %v → %v", value, busy[0].value)
		require.Equal(t, sanitize(jobName), busy[0].labels["job_name"])
		require.Equal(t, sanitize(vertexName), busy[0].labels["task_name"])
		require.Equal(t, sanitize(host), busy[0].labels["host"])
		require.Equal(t, sanitize(tmID), busy[0].labels["tm_id"])
		require.Equal(t, strconv.Itoa(int(attempt)), busy[0].labels["task_attempt_num"])

		in := tm["flink_taskmanager_job_task_numRecordsIn"]
		require.Len(t, in, 1)
		require.Equal(t, javaLong(value), in[0].value)
		require.False(t, math.IsNaN(in[0].value)) // a counter is never NaN

		opRate := tm["flink_taskmanager_job_task_operator_numRecordsInPerSecond"]
		require.Len(t, opRate, 1)
		require.True(t, sameFloat(rate, opRate[0].value), "rate %v → %v", rate, opRate[0].value)
		wantOp := opName
		if wantOp == "" {
			wantOp, _, _ = strings.Cut(vertexName, " -> ")
		}
		require.Equal(t, sanitize(truncateOperatorName(wantOp)), opRate[0].labels["operator_name"])

		cur := tm["flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset"]
		if sanitize(topic) == sanitize(topic2) {
			require.Len(t, cur, 1) // the second gauge replaced the first
			require.Equal(t, float64(offset/2), cur[0].value)
		} else {
			require.Len(t, cur, 2)
			for _, s := range cur {
				require.Equal(t, sanitize(strconv.Itoa(partition)), s.labels["partition"])
				if s.labels["topic"] == sanitize(topic) {
					require.Equal(t, float64(offset), s.value)
				}
			}
		}

		for name, ss := range tm {
			if strings.HasPrefix(name, "flink_taskmanager_Status_JVM_CPU") {
				require.True(t, ss[0].value >= 0 && ss[0].value <= 1, "cpu load %v", ss[0].value)
			}
		}

		jm := checkParsedLabels(t, parse(t, JobManager(v)))
		dur := jm["flink_jobmanager_job_lastCheckpointDuration"]
		require.Len(t, dur, 1)
		require.Equal(t, float64(offset), dur[0].value)
		require.Equal(t, sanitize(jmHost), dur[0].labels["host"])
	})
}
